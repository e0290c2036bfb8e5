//! Shared behaviour of [`JobStore`](crate::store::JobStore): jobs submitted, claimed by one
//! worker only and never beside a running job of their instance and entity, kept by a heartbeat,
//! taken over when it stops, ended only by their own worker; and the workers as listed.

use std::collections::BTreeSet;
use std::time::Duration;

use super::super::job_store::job_owner_who;
use super::super::job_store::{
    JOB_LEASE_SECS, JobEnd, JobKind, JobState, JobStore, MAX_ATTEMPTS, NewJob,
};
use super::super::{InstanceStore, RunKind, RunStatus, RunTrigger, StoreError, SyncStore};
use super::instance;
use crate::contract::manifest::Entity;

/// The job part with the instances its jobs belong to (a job needs its instance) and the runs
/// that end them.
pub trait JobsAndInstances: JobStore + InstanceStore + SyncStore {}
impl<T: JobStore + InstanceStore + SyncStore + ?Sized> JobsAndInstances for T {}

type Open<'a> = &'a dyn Fn() -> Box<dyn JobsAndInstances>;

/// Bytes no text column would keep as they are: a NUL, invalid UTF-8, a line break.
const PAYLOAD: &[u8] = b"{\"id\":\"K1\"}\n\x00\xff\xfe{\"id\":\"K2\"}\n";

fn push(instance: &str, entity: Entity) -> NewJob {
    NewJob {
        kind: JobKind::Push,
        instance: instance.into(),
        entity,
        trigger: RunTrigger::Api,
        payload: PAYLOAD.to_vec(),
        dry_run: false,
    }
}

fn submit(store: &dyn JobsAndInstances, instance: &str, entity: Entity) -> i64 {
    store.submit_job(&push(instance, entity)).unwrap()
}

fn done() -> JobEnd {
    JobEnd::Done {
        run: Some(42),
        outcome: "{\"created\":2}".into(),
    }
}

/// The id of the job `worker` claims now (for the whole lease), or None.
fn claim(store: &dyn JobsAndInstances, worker: &str) -> Option<i64> {
    store
        .claim_job(worker, JOB_LEASE_SECS)
        .unwrap()
        .map(|c| c.row.id)
}

pub fn a_job_is_submitted_claimed_and_finished_with_its_payload_intact(open: Open) {
    let (store, other) = (open(), open());
    store.create_instance(&instance("acme")).unwrap();
    let job = NewJob {
        trigger: RunTrigger::Console,
        dry_run: true,
        ..push("acme", Entity::Contact)
    };
    let id = store.submit_job(&job).unwrap();
    let queued = other.job(id).unwrap().expect("the job just submitted");
    assert_eq!(
        (
            queued.kind,
            queued.instance.as_str(),
            queued.entity,
            queued.trigger,
            queued.dry_run,
            queued.state,
            queued.attempts,
        ),
        (
            JobKind::Push,
            "acme",
            Entity::Contact,
            RunTrigger::Console,
            true,
            JobState::Queued,
            0
        )
    );
    assert_eq!(queued.worker, None);
    assert_eq!((queued.started_at, queued.finished_at), (None, None));
    assert!(!queued.submitted_at.is_empty());
    assert_eq!(store.job(id + 1000).unwrap(), None);

    let claimed = other
        .claim_job("w1", JOB_LEASE_SECS)
        .unwrap()
        .expect("a queued job");
    assert_eq!(claimed.payload, PAYLOAD, "the payload's bytes as submitted");
    assert_eq!(claimed.row.id, id);
    assert_eq!(claimed.row.state, JobState::Running);
    assert_eq!(claimed.row.attempts, 1);
    assert_eq!(claimed.row.worker.as_deref(), Some("w1"));
    assert!(claimed.row.started_at.is_some());
    assert_eq!(
        store.job(id).unwrap().unwrap(),
        claimed.row,
        "the claim answers the row as stored"
    );
    assert_eq!(claim(&*store, "w2"), None, "claimed once");

    assert!(
        !store.finish_job(id, "w2", &done()).unwrap(),
        "another worker's end is not written"
    );
    assert!(store.finish_job(id, "w1", &done()).unwrap());
    let ended = other.job(id).unwrap().unwrap();
    assert_eq!(ended.state, JobState::Done);
    assert_eq!(ended.run, Some(42));
    assert_eq!(ended.outcome.as_deref(), Some("{\"created\":2}"));
    assert_eq!(ended.error, None);
    assert!(ended.finished_at.is_some());
    assert!(
        !store.finish_job(id, "w1", &done()).unwrap(),
        "ended once: it is no longer running"
    );

    // A failure keeps its reason; the oldest due job is claimed first.
    store.create_instance(&instance("other")).unwrap();
    let first = submit(&*store, "acme", Entity::Account);
    let second = submit(&*store, "other", Entity::Account);
    assert_eq!(claim(&*other, "w1"), Some(first));
    let failed = JobEnd::Failed {
        run: None,
        error: "the payload is not NDJSON".into(),
    };
    assert!(other.finish_job(first, "w1", &failed).unwrap());
    let ended = store.job(first).unwrap().unwrap();
    assert_eq!(ended.state, JobState::Failed);
    assert_eq!(ended.error.as_deref(), Some("the payload is not NDJSON"));
    assert_eq!((ended.run, ended.outcome), (None, None));
    assert!(ended.finished_at.is_some());

    let newest: Vec<i64> = store.jobs(None, 10).unwrap().iter().map(|j| j.id).collect();
    assert_eq!(newest, [second, first, id], "newest first");
    let acme: Vec<i64> = store
        .jobs(Some("acme"), 10)
        .unwrap()
        .iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(acme, [first, id]);
    assert_eq!(store.jobs(Some("acme"), 1).unwrap().len(), 1);
    assert!(store.jobs(Some("nobody"), 10).unwrap().is_empty());
}

pub fn a_job_of_an_unknown_instance_is_refused_and_jobs_go_with_their_instance(open: Open) {
    let store = open();
    match store.submit_job(&push("nobody", Entity::Contact)) {
        Err(StoreError::NoInstance(name)) => assert_eq!(name, "nobody"),
        other => panic!("expected NoInstance(\"nobody\"), got {other:?}"),
    }
    assert!(store.jobs(None, 10).unwrap().is_empty(), "nothing queued");
    assert_eq!(claim(&*store, "w1"), None);

    store.create_instance(&instance("acme")).unwrap();
    let id = submit(&*store, "acme", Entity::Contact);
    open().delete_instance("acme").unwrap();
    assert_eq!(store.job(id).unwrap(), None, "its jobs went with it");
    assert_eq!(claim(&*store, "w1"), None);
}

/// Workers on separate handles, at once, share out the queue: each job goes to exactly one, and
/// a job waits while another of its instance and entity runs.
pub fn a_job_is_claimed_by_one_worker_and_never_beside_a_running_one_of_its_entity(open: Open) {
    let store = open();
    let mut pairs = Vec::new();
    for name in ["acme", "zenith"] {
        store.create_instance(&instance(name)).unwrap();
        for entity in Entity::DEPENDENCY_ORDER {
            pairs.push((name, entity, submit(&*store, name, entity)));
        }
    }
    let handles: Vec<_> = (0..4).map(|_| open()).collect();
    let claims: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let running: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(n, handle)| {
                scope.spawn(move || {
                    let worker = format!("w{n}");
                    std::iter::from_fn(|| claim(&**handle, &worker)).collect()
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let all: Vec<i64> = claims.iter().flatten().copied().collect();
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 14, "every job claimed once: {claims:?}");
    assert_eq!(distinct, pairs.iter().map(|p| p.2).collect());
    for (n, ids) in claims.iter().enumerate() {
        for id in ids {
            let row = store.job(*id).unwrap().unwrap();
            assert_eq!(row.state, JobState::Running);
            assert_eq!(row.worker, Some(format!("w{n}")), "job {id}");
            assert_eq!(row.attempts, 1);
        }
    }

    // Three more of a running pair, raced for: none starts beside the running one.
    let (name, entity, running) = pairs[3];
    let waiting: Vec<i64> = (0..3).map(|_| submit(&*store, name, entity)).collect();
    let raced: Vec<Option<i64>> = std::thread::scope(|scope| {
        let racers: Vec<_> = handles
            .iter()
            .map(|handle| scope.spawn(move || claim(&**handle, "racer")))
            .collect();
        racers.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(raced, [None; 4], "its entity runs");
    let holder = store.job(running).unwrap().unwrap().worker.unwrap();
    assert!(store.finish_job(running, &holder, &done()).unwrap());
    // Now exactly one of them, and the oldest, even racing: jobs of one entity start in the order
    // they were submitted.
    let raced: Vec<i64> = std::thread::scope(|scope| {
        let racers: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(n, handle)| scope.spawn(move || claim(&**handle, &format!("racer{n}"))))
            .collect();
        racers
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect()
    });
    assert_eq!(raced, [waiting[0]], "one at a time, the oldest first");
    let racer = store.job(raced[0]).unwrap().unwrap().worker.unwrap();
    let failed = JobEnd::Failed {
        run: None,
        error: "the remote refused the batch".into(),
    };
    assert!(store.finish_job(raced[0], &racer, &failed).unwrap());
    assert_eq!(claim(&*store, "last"), Some(waiting[1]), "the next oldest");
    assert_eq!(claim(&*store, "last"), None, "{} waits", waiting[2]);
}

/// A worker that stops heartbeating loses its job to the next claim; it can no longer end it, and
/// its heartbeat says so. A worker that heartbeats keeps its job past its first lease.
pub fn a_lapsed_lease_is_taken_over_and_its_old_worker_can_no_longer_end_it(open: Open) {
    let (store, other) = (open(), open());
    store.create_instance(&instance("acme")).unwrap();
    for worker in ["w-kept", "w-lost", "w-new"] {
        store.register_worker(worker, "host-1", 7, "1.0.0").unwrap();
    }
    let kept = submit(&*store, "acme", Entity::Account);
    let lost = submit(&*store, "acme", Entity::Contact);
    let waiting = submit(&*store, "acme", Entity::Product);
    // Leases of no time at all, lapsed a millisecond later; the kept one is renewed at once.
    let claimed =
        |s: &dyn JobsAndInstances, worker: &str| s.claim_job(worker, 0).unwrap().map(|c| c.row.id);
    assert_eq!(claimed(&*store, "w-kept"), Some(kept));
    assert_eq!(
        other.renew_jobs("w-kept", JOB_LEASE_SECS).unwrap(),
        [kept],
        "the jobs it holds"
    );
    assert_eq!(claimed(&*other, "w-lost"), Some(lost));
    std::thread::sleep(Duration::from_millis(20));

    // The lapsed job is queued again, due now, so the job waiting since before goes first.
    assert_eq!(claim(&*store, "w-new"), Some(waiting));
    let requeued = store.job(lost).unwrap().unwrap();
    assert_eq!(requeued.state, JobState::Queued);
    assert_eq!(
        requeued.error.as_deref(),
        Some("its worker w-lost stopped heartbeating; taken over")
    );
    assert_eq!(
        requeued.worker.as_deref(),
        Some("w-lost"),
        "the worker that ran it last"
    );
    assert_eq!(requeued.attempts, 1);
    assert_eq!(
        store.job(kept).unwrap().unwrap().state,
        JobState::Running,
        "renewed, so kept"
    );
    assert!(
        !other.finish_job(lost, "w-lost", &done()).unwrap(),
        "no longer its job"
    );
    assert_eq!(
        other.renew_jobs("w-lost", JOB_LEASE_SECS).unwrap(),
        Vec::<i64>::new()
    );

    let taken = other
        .claim_job("w-new", JOB_LEASE_SECS)
        .unwrap()
        .expect("the lapsed job");
    assert_eq!(taken.row.id, lost);
    assert_eq!(taken.row.attempts, 2, "a takeover counts");
    assert_eq!(taken.row.error, None);
    assert_eq!(taken.payload, PAYLOAD);
    assert!(!store.finish_job(lost, "w-lost", &done()).unwrap());
    assert_eq!(
        store.renew_jobs("w-new", JOB_LEASE_SECS).unwrap(),
        [lost, waiting]
    );
    assert!(store.finish_job(lost, "w-new", &done()).unwrap());
    assert!(store.finish_job(kept, "w-kept", &done()).unwrap());
    assert_eq!(store.job(lost).unwrap().unwrap().run, Some(42));
}

/// A job put off (its entity busy elsewhere) is queued again, due after its delay, and the
/// attempt is not counted.
pub fn a_job_put_off_is_queued_again_after_its_delay_without_counting_the_attempt(open: Open) {
    let (store, other) = (open(), open());
    store.create_instance(&instance("acme")).unwrap();
    let id = submit(&*store, "acme", Entity::Contact);
    assert_eq!(claim(&*store, "w1"), Some(id));
    let later = JobEnd::Later {
        delay_secs: 1,
        reason: "another run holds acme's contacts".into(),
    };
    assert!(!other.finish_job(id, "w2", &later).unwrap());
    assert!(other.finish_job(id, "w1", &later).unwrap());
    let put_off = store.job(id).unwrap().unwrap();
    assert_eq!(put_off.state, JobState::Queued);
    assert_eq!(put_off.attempts, 0, "not started after all");
    assert_eq!(
        put_off.error.as_deref(),
        Some("another run holds acme's contacts")
    );
    assert_eq!(put_off.finished_at, None);
    assert!(store.renew_jobs("w1", JOB_LEASE_SECS).unwrap().is_empty());
    assert!(
        !other.finish_job(id, "w1", &done()).unwrap(),
        "queued, so no one's"
    );
    assert_eq!(claim(&*other, "w2"), None, "not due yet");

    std::thread::sleep(Duration::from_millis(1_100));
    let again = other
        .claim_job("w2", JOB_LEASE_SECS)
        .unwrap()
        .expect("due after its delay");
    assert_eq!(again.row.id, id);
    assert_eq!(again.row.attempts, 1);
    assert_eq!(again.row.error, None);
    assert!(store.finish_job(id, "w2", &done()).unwrap());
}

/// A clean shutdown queues the worker's jobs again at once, for any worker to take.
pub fn a_stopped_worker_s_jobs_are_queued_again_at_once(open: Open) {
    let (store, other) = (open(), open());
    store.create_instance(&instance("acme")).unwrap();
    store.register_worker("w1", "host-1", 11, "1.0.0").unwrap();
    store.register_worker("w2", "host-2", 22, "1.0.0").unwrap();
    let first = submit(&*store, "acme", Entity::Account);
    let second = submit(&*store, "acme", Entity::Contact);
    let third = submit(&*store, "acme", Entity::Product);
    assert_eq!(claim(&*store, "w1"), Some(first));
    assert_eq!(claim(&*store, "w1"), Some(second));
    assert_eq!(claim(&*store, "w2"), Some(third));

    other.stop_worker("w1").unwrap();
    for id in [first, second] {
        let row = store.job(id).unwrap().unwrap();
        assert_eq!(row.state, JobState::Queued, "job {id}");
        assert_eq!(
            row.error.as_deref(),
            Some("its worker stopped; queued again")
        );
        assert_eq!(row.attempts, 1, "it did start");
        assert_eq!(row.worker.as_deref(), Some("w1"));
    }
    assert_eq!(
        store.job(third).unwrap().unwrap().state,
        JobState::Running,
        "another worker's job stays"
    );
    assert!(store.renew_jobs("w1", JOB_LEASE_SECS).unwrap().is_empty());
    assert!(!store.finish_job(first, "w1", &done()).unwrap());
    // Due at once, not after a lease.
    assert_eq!(claim(&*other, "w2"), Some(first));
    assert_eq!(claim(&*other, "w2"), Some(second));
    assert_eq!(store.job(second).unwrap().unwrap().attempts, 2);
    assert_eq!(
        store.renew_jobs("w2", JOB_LEASE_SECS).unwrap(),
        [first, second, third]
    );
    // Stopping a worker that holds nothing, or is unknown, changes nothing.
    store.stop_worker("w1").unwrap();
    store.stop_worker("nobody").unwrap();
    assert_eq!(store.renew_jobs("w2", 1).unwrap().len(), 3);
}

/// Workers are listed while they heartbeat or hold a job: alive, stopped, and what they hold.
pub fn workers_are_listed_alive_stopped_and_with_the_jobs_they_hold(open: Open) {
    let (store, other) = (open(), open());
    store.create_instance(&instance("acme")).unwrap();
    for (n, worker) in ["w-busy", "w-idle", "w-stopping"].into_iter().enumerate() {
        store
            .register_worker(worker, &format!("host-{n}"), 100 + n as i64, "1.0.0")
            .unwrap();
    }
    let first = submit(&*store, "acme", Entity::Account);
    let second = submit(&*store, "acme", Entity::Contact);
    assert_eq!(claim(&*store, "w-busy"), Some(first));
    assert_eq!(claim(&*store, "w-stopping"), Some(second));

    let listed = other.workers(60, 3600).unwrap();
    let ids: Vec<&str> = listed.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["w-busy", "w-idle", "w-stopping"], "by id");
    let idle = &listed[1];
    assert_eq!(
        (idle.host.as_str(), idle.pid, idle.version.as_str()),
        ("host-1", 101, "1.0.0")
    );
    assert!(!idle.started_at.is_empty());
    for worker in &listed {
        assert!(
            (0..5_000).contains(&worker.heartbeat_ago_ms),
            "{}: {} ms",
            worker.id,
            worker.heartbeat_ago_ms
        );
        assert!(worker.alive && !worker.stopped, "{worker:?}");
    }
    let held: Vec<i64> = listed.iter().map(|w| w.jobs_held).collect();
    assert_eq!(held, [1, 0, 1]);

    store.stop_worker("w-stopping").unwrap();
    assert_eq!(claim(&*other, "w-idle"), Some(second));
    let listed = other.workers(60, 3600).unwrap();
    let stopping = &listed[2];
    assert!(stopping.stopped && !stopping.alive, "{stopping:?}");
    assert_eq!(stopping.jobs_held, 0);
    assert_eq!(listed[1].jobs_held, 1, "w-idle took its job");

    // After a second without heartbeats: only who heartbeated since, or holds a job, is listed.
    store
        .register_worker("w-fresh", "host-3", 103, "1.0.0")
        .unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(
        other.renew_jobs("w-idle", JOB_LEASE_SECS).unwrap(),
        [second]
    );
    assert!(
        other
            .renew_jobs("w-fresh", JOB_LEASE_SECS)
            .unwrap()
            .is_empty()
    );
    let listed = store.workers(1, 1).unwrap();
    let ids: Vec<&str> = listed.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(
        ids,
        ["w-busy", "w-fresh", "w-idle"],
        "w-stopping neither heartbeats nor holds a job"
    );
    let busy = &listed[0];
    assert!(
        !busy.alive && !busy.stopped && busy.heartbeat_ago_ms >= 1_000,
        "holds a job without heartbeating: {busy:?}"
    );
    assert_eq!(busy.jobs_held, 1);
    assert!(listed[1].alive && listed[2].alive, "{listed:?}");

    // Starting again under the same id: not stopped, alive, its new details.
    other
        .register_worker("w-stopping", "host-9", 999, "1.1.0")
        .unwrap();
    let again = store
        .workers(1, 1)
        .unwrap()
        .into_iter()
        .find(|w| w.id == "w-stopping")
        .expect("heartbeated just now");
    assert!(again.alive && !again.stopped);
    assert_eq!(
        (again.host.as_str(), again.pid, again.version.as_str()),
        ("host-9", 999, "1.1.0")
    );
}

/// A job whose workers keep dying under it is failed after [`MAX_ATTEMPTS`] starts instead of
/// being taken over again: it may be what kills them.
pub fn a_job_that_outlives_its_workers_too_often_fails(open: Open) {
    let store = open();
    store.create_instance(&instance("acme")).unwrap();
    let id = submit(&*store, "acme", Entity::Account);
    for attempt in 1..=MAX_ATTEMPTS {
        // A lease of no time at all: lapsed as soon as the clock moves.
        let claimed = store
            .claim_job(&format!("doomed-{attempt}"), 0)
            .unwrap()
            .expect("taken over");
        assert_eq!((claimed.row.id, claimed.row.attempts), (id, attempt));
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(store.claim_job("next", JOB_LEASE_SECS).unwrap(), None);
    let row = store.job(id).unwrap().unwrap();
    assert_eq!(row.state, JobState::Failed, "{row:?}");
    let error = row.error.unwrap_or_default();
    assert!(
        error.contains("doomed-5") && error.contains("given up"),
        "{error}"
    );
}

pub fn a_queued_job_is_found_by_kind_instance_and_entity_until_it_runs(open: Open) {
    let store = open();
    store.create_instance(&instance("acme")).unwrap();
    let retry = |entity| NewJob {
        kind: JobKind::Retry,
        payload: Vec::new(),
        trigger: RunTrigger::Serve,
        ..push("acme", entity)
    };
    assert_eq!(
        store
            .queued_job(JobKind::Retry, "acme", Entity::Contact)
            .unwrap(),
        None
    );
    submit(store.as_ref(), "acme", Entity::Contact);
    let first = store.submit_job(&retry(Entity::Contact)).unwrap();
    let second = store.submit_job(&retry(Entity::Contact)).unwrap();
    store.submit_job(&retry(Entity::Account)).unwrap();
    let found = |kind, entity| store.queued_job(kind, "acme", entity).unwrap();
    assert_eq!(
        found(JobKind::Retry, Entity::Contact),
        Some(first),
        "the oldest"
    );
    assert_eq!(
        found(JobKind::Reconcile, Entity::Contact),
        None,
        "another kind"
    );
    assert_eq!(
        store
            .queued_job(JobKind::Retry, "other", Entity::Contact)
            .unwrap(),
        None,
        "another instance"
    );
    // The push is claimed first (submission order), then the first retry of contacts.
    let mut started = BTreeSet::new();
    while let Some(id) = claim(store.as_ref(), "w1") {
        started.insert(id);
        store.finish_job(id, "w1", &done()).unwrap();
        if started.contains(&first) {
            break;
        }
    }
    assert_eq!(
        found(JobKind::Retry, Entity::Contact),
        Some(second),
        "a running job is not queued"
    );
}

/// A run-lease owner of the first attempt of `job` held by `worker`, as a worker makes one.
fn job_owner(job: i64, worker: &str) -> String {
    format!("{}@host-1:7:00ff", job_owner_who(job, 1, worker))
}

pub fn a_job_whose_worker_stopped_after_its_run_ended_ends_with_the_run(open: Open) {
    let (store, other) = (open(), open());
    store.create_instance(&instance("acme")).unwrap();
    let start = |s: &dyn JobsAndInstances, owner: &str| {
        s.start_run(
            "acme",
            RunKind::Push,
            RunTrigger::Api,
            Some(Entity::Account),
            false,
            Some(owner),
        )
        .unwrap()
    };
    // Leases of no time at all: lapsed a moment later, as when the worker died.
    let claimed =
        |s: &dyn JobsAndInstances, worker: &str| s.claim_job(worker, 0).unwrap().map(|c| c.row.id);

    // Tied: only the first run of the attempt its holder runs.
    let finished = submit(&*store, "acme", Entity::Account);
    assert_eq!(claimed(&*store, "w1"), Some(finished));
    let stranger = start(&*other, &job_owner(finished, "w3"));
    let other_attempt = start(
        &*other,
        &format!("{}@host-1:7:00ff", job_owner_who(finished, 2, "w1")),
    );
    let run = start(&*store, &job_owner(finished, "w1"));
    let second = start(&*store, &job_owner(finished, "w1"));
    assert_eq!(other.job(finished).unwrap().unwrap().run, Some(run));
    for untied in [stranger, other_attempt, second] {
        other.finish_run(untied, RunStatus::Done, None, 0).unwrap();
    }
    // The run ends (its id map and cursors with it); the worker dies before it reports.
    other.finish_run(run, RunStatus::Done, None, 0).unwrap();
    assert_eq!(
        store.job(finished).unwrap().unwrap().state,
        JobState::Running
    );
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(claimed(&*other, "w2"), None, "nothing to run again");
    let ended = store.job(finished).unwrap().unwrap();
    assert_eq!(
        (ended.state, ended.run, ended.attempts),
        (JobState::Done, Some(run), 1)
    );
    assert!(
        ended
            .error
            .as_deref()
            .unwrap()
            .contains("stopped before reporting"),
        "{ended:?}"
    );

    // Its run not ended when it died: queued again, untied, and only the new holder's run counts.
    let again = submit(&*store, "acme", Entity::Contact);
    assert_eq!(claimed(&*store, "w1"), Some(again));
    let old = start(&*store, &job_owner(again, "w1"));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        other
            .claim_job("w2", JOB_LEASE_SECS)
            .unwrap()
            .map(|c| c.row.id),
        Some(again)
    );
    let taken = store.job(again).unwrap().unwrap();
    assert_eq!(
        (taken.run, taken.attempts),
        (None, 2),
        "untied at the takeover"
    );
    store.finish_run(old, RunStatus::Done, None, 0).unwrap();
    let new = start(
        &*other,
        &format!("{}@host-1:7:00ff", job_owner_who(again, 2, "w2")),
    );
    assert_eq!(store.job(again).unwrap().unwrap().run, Some(new));
    assert!(
        !store.finish_job(again, "w1", &done()).unwrap(),
        "not w1's any more"
    );
    assert!(other.finish_job(again, "w2", &done()).unwrap());

    // A clean stop after a failed run: the job fails with the run's reason, not queued again.
    let failed = submit(&*store, "acme", Entity::Product);
    assert_eq!(
        store
            .claim_job("w1", JOB_LEASE_SECS)
            .unwrap()
            .map(|c| c.row.id),
        Some(failed)
    );
    let run = start(&*store, &job_owner(failed, "w1"));
    store
        .finish_run(run, RunStatus::Failed, Some("the connector trapped"), 0)
        .unwrap();
    store.stop_worker("w1").unwrap();
    let ended = other.job(failed).unwrap().unwrap();
    assert_eq!(ended.state, JobState::Failed);
    assert_eq!(
        ended.error.as_deref(),
        Some("its run failed: the connector trapped")
    );
}

pub fn a_queued_job_is_cancelled_and_a_running_or_ended_one_is_not(open: Open) {
    use super::super::job_store::{CANCELLED, Cancel};
    let (store, other) = (open(), open());
    store.create_instance(&instance("acme")).unwrap();
    let running = submit(&*store, "acme", Entity::Account);
    let queued = submit(&*store, "acme", Entity::Contact);
    let behind = submit(&*store, "acme", Entity::Contact);
    assert_eq!(claim(&*store, "w1"), Some(running));
    assert_eq!(
        other.cancel_job(running).unwrap(),
        Cancel::NotQueued(JobState::Running)
    );
    assert_eq!(other.cancel_job(queued).unwrap(), Cancel::Cancelled);
    let cancelled = store.job(queued).unwrap().unwrap();
    assert_eq!(
        (cancelled.state, cancelled.error.as_deref()),
        (JobState::Failed, Some(CANCELLED))
    );
    assert_eq!(
        other.cancel_job(queued).unwrap(),
        Cancel::NotQueued(JobState::Failed)
    );
    assert_eq!(other.cancel_job(9_999).unwrap(), Cancel::NoSuchJob);
    // The job of its entity submitted after it no longer waits behind it.
    assert_eq!(claim(&*other, "w2"), Some(behind));
}
