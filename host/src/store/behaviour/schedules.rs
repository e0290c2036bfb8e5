//! Shared behaviour of [`ScheduleStore`](crate::store::schedule_store::ScheduleStore): schedules
//! claimed once, the change feed kept once and read in order, sinks claimed by one process.

use super::super::schedule_store::{
    Cadence, Job, NewFeedEntry, STUCK_AFTER_SECS, ScheduleRow, ScheduleStore,
};
use super::super::{InstanceStore, StoreError};
use super::instance;
use crate::contract::manifest::Entity;

/// Both parts a schedule or feed test needs (the instance is made first).
pub trait SchedulesAndInstances: ScheduleStore + InstanceStore {}
impl<T: ScheduleStore + InstanceStore + ?Sized> SchedulesAndInstances for T {}

type Open<'a> = &'a dyn Fn() -> Box<dyn SchedulesAndInstances>;

/// A store with the instance `acme`, and a second handle on it.
fn two_handles(
    open: Open,
) -> (
    Box<dyn SchedulesAndInstances>,
    Box<dyn SchedulesAndInstances>,
) {
    let (store, other) = (open(), open());
    store.create_instance(&instance("acme")).unwrap();
    (store, other)
}

fn entry(id: &str, version: &str, change: &str) -> NewFeedEntry {
    NewFeedEntry {
        entity: Entity::Contact,
        remote_id: id.into(),
        version: version.into(),
        change: change.into(),
        record: format!("{{\"id\":\"{id}\",\"v\":\"{version}\"}}"),
    }
}

fn no_instance<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NoInstance(_)))
}

pub fn schedules_are_set_replaced_listed_and_removed(open: Open) {
    let (store, other) = two_handles(open);
    store.create_instance(&instance("beta")).unwrap();
    let every = Cadence::Every { seconds: 300 };
    let daily = Cadence::Daily { minute: 90 };
    store
        .set_schedule("beta", Entity::Account, Job::Pull, every, 500)
        .unwrap();
    store
        .set_schedule("acme", Entity::Contact, Job::Retry, daily, 700)
        .unwrap();
    store
        .set_schedule("acme", Entity::Account, Job::Reconcile, every, 100)
        .unwrap();
    // A refused claim leaves a reason; setting the schedule again clears it.
    other
        .claim_due(100, &mut |_| Some("disabled".into()), &|_| 0, "t")
        .unwrap();
    store
        .set_schedule("acme", Entity::Account, Job::Reconcile, daily, 200)
        .unwrap();

    let listed = other.schedules(None).unwrap();
    let keys: Vec<(&str, Entity, Job)> = listed
        .iter()
        .map(|r| (r.instance.as_str(), r.entity, r.job))
        .collect();
    assert_eq!(
        keys,
        [
            ("acme", Entity::Account, Job::Reconcile),
            ("acme", Entity::Contact, Job::Retry),
            ("beta", Entity::Account, Job::Pull),
        ],
        "ordered by instance, entity, job"
    );
    let replaced = &listed[0];
    assert_eq!(
        (
            replaced.cadence,
            replaced.next_due,
            replaced.blocked.as_deref()
        ),
        (daily, 200, None),
        "replaced whole, its reason cleared"
    );
    assert_eq!(listed[2].cadence, every);
    assert_eq!(
        (
            listed[1].last_outcome.as_deref(),
            listed[1].last_started.as_deref()
        ),
        (None, None),
        "never run"
    );
    assert_eq!(other.schedules(Some("beta")).unwrap().len(), 1);

    assert!(
        other
            .remove_schedule("acme", Entity::Contact, Job::Retry)
            .unwrap()
    );
    assert!(
        !store
            .remove_schedule("acme", Entity::Contact, Job::Retry)
            .unwrap(),
        "removed once"
    );
    assert_eq!(store.schedules(Some("acme")).unwrap().len(), 1);
    assert!(no_instance(store.set_schedule(
        "nobody",
        Entity::Contact,
        Job::Pull,
        every,
        1
    )));
    assert!(no_instance(store.remove_schedule(
        "nobody",
        Entity::Contact,
        Job::Pull
    )));
    assert!(no_instance(store.schedules(Some("nobody"))));
    store.delete_instance("beta").unwrap();
    assert_eq!(
        other.schedules(None).unwrap().len(),
        1,
        "schedules go with their instance"
    );
}

/// Two schedulers on one store claim a due slot once; a running schedule is not claimed again
/// until it finishes (or is stuck); a run finishing late writes nothing over a newer claim.
pub fn a_due_schedule_is_claimed_once_and_not_while_it_runs(open: Open) {
    let (store, other) = two_handles(open);
    let every = Cadence::Every { seconds: 60 };
    store
        .set_schedule("acme", Entity::Contact, Job::Pull, every, 1_000)
        .unwrap();
    let claim = |s: &dyn SchedulesAndInstances, now: i64| {
        s.claim_due(
            now,
            &mut |_| None,
            &|_| now + 60,
            &crate::time::rfc3339(now),
        )
        .unwrap()
    };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| claim(store.as_ref(), 1_000));
        let b = scope.spawn(|| claim(other.as_ref(), 1_000));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.len() + b.len(), 1, "one claimer takes the slot");
    let claimed = a.into_iter().chain(b).next().unwrap();
    // Due again, but still running: not taken.
    assert!(claim(store.as_ref(), 1_100).is_empty());
    // Running past the stuck threshold: its slot is taken again.
    let stuck_at = 1_000 + STUCK_AFTER_SECS + 1;
    let retaken = claim(other.as_ref(), stuck_at);
    assert_eq!(retaken.len(), 1);
    // The first run finishing now must not overwrite the newer claim's state.
    store.finish_schedule(&claimed, None, "done", 5).unwrap();
    let row = &store.schedules(Some("acme")).unwrap()[0];
    assert_eq!(row.last_outcome.as_deref(), Some("running"));
    other
        .finish_schedule(&retaken[0], Some(42), "done", 5)
        .unwrap();
    let row = &store.schedules(Some("acme")).unwrap()[0];
    assert_eq!(
        (
            row.last_outcome.as_deref(),
            row.last_run,
            row.last_millis,
            row.last_finished.is_some()
        ),
        (Some("done"), Some(42), Some(5), true)
    );
    assert_eq!(
        claim(store.as_ref(), stuck_at + 60).len(),
        1,
        "due again after it finished"
    );
}

/// Many schedulers at once: every due slot goes to exactly one of them.
pub fn concurrent_schedulers_split_the_due_slots(open: Open) {
    let (store, _) = two_handles(open);
    let every = Cadence::Every { seconds: 60 };
    for entity in [Entity::Account, Entity::Contact] {
        for job in Job::ALL {
            store.set_schedule("acme", entity, job, every, 10).unwrap();
        }
    }
    let claimed: Vec<ScheduleRow> = std::thread::scope(|scope| {
        let claimers: Vec<_> = (0..4)
            .map(|i| {
                let handle = open();
                scope.spawn(move || {
                    handle
                        .claim_due(10, &mut |_| None, &|_| 70, &format!("claimer {i}"))
                        .unwrap()
                })
            })
            .collect();
        claimers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    let mut keys: Vec<(Entity, Job)> = claimed.iter().map(|r| (r.entity, r.job)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(claimed.len(), 6, "each slot claimed once");
    assert_eq!(keys.len(), 6, "no slot left out");
    for row in store.schedules(None).unwrap() {
        let taker = claimed
            .iter()
            .find(|c| (c.entity, c.job) == (row.entity, row.job))
            .unwrap();
        assert_eq!(row.last_started, taker.last_started, "written by its taker");
        assert_eq!(row.next_due, 70);
    }
}

/// Those `ready` refuses keep their due time and say why (written once, not on every tick);
/// those it accepts move on, and are handed back as claimed.
pub fn a_refused_schedule_keeps_its_due_time_and_says_why(open: Open) {
    let (store, other) = two_handles(open);
    store.create_instance(&instance("beta")).unwrap();
    let every = Cadence::Every { seconds: 60 };
    store
        .set_schedule("acme", Entity::Contact, Job::Pull, every, 100)
        .unwrap();
    store
        .set_schedule("beta", Entity::Contact, Job::Pull, every, 90)
        .unwrap();
    store
        .set_schedule("beta", Entity::Account, Job::Pull, every, 500)
        .unwrap();
    let mut asked = Vec::new();
    let claimed = other
        .claim_due(
            200,
            &mut |row| {
                asked.push((row.instance.clone(), row.entity));
                (row.instance == "acme").then(|| "instance disabled".to_string())
            },
            &|row| row.next_due + 3_600,
            "2026-01-01T00:03:20Z",
        )
        .unwrap();
    assert_eq!(
        asked,
        [
            ("beta".to_string(), Entity::Contact),
            ("acme".to_string(), Entity::Contact)
        ],
        "only due ones are asked about, earliest due first"
    );
    assert_eq!(claimed.len(), 1);
    let taken = &claimed[0];
    assert_eq!(
        (
            taken.instance.as_str(),
            taken.next_due,
            taken.last_started.as_deref(),
            taken.blocked.as_deref()
        ),
        ("beta", 3_690, Some("2026-01-01T00:03:20Z"), None)
    );
    let rows = store.schedules(None).unwrap();
    let refused = &rows[0];
    assert_eq!(
        (
            refused.instance.as_str(),
            refused.next_due,
            refused.blocked.as_deref(),
            refused.last_outcome.as_deref()
        ),
        ("acme", 100, Some("instance disabled"), None),
        "refused: still due, with its reason"
    );
    let running = rows
        .iter()
        .find(|r| r.instance == "beta" && r.entity == Entity::Contact)
        .unwrap();
    assert_eq!(
        (
            running.next_due,
            running.last_outcome.as_deref(),
            running.last_finished.as_deref()
        ),
        (3_690, Some("running"), None)
    );
    // Accepted at a later tick: its reason goes.
    let claimed = store
        .claim_due(210, &mut |_| None, &|_| 270, "2026-01-01T00:03:30Z")
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].instance, "acme");
    let acme = &store.schedules(Some("acme")).unwrap()[0];
    assert_eq!((acme.next_due, acme.blocked.as_deref()), (270, None));
}

pub fn the_feed_keeps_each_version_once_in_order(open: Open) {
    let (store, other) = two_handles(open);
    let first = [
        entry("7", "v1", "changed"),
        entry("8", "v1", "changed"),
        entry("9", "v1", "changed"),
    ];
    assert_eq!(store.append_feed("acme", Some(3), &first).unwrap(), 3);
    assert_eq!(
        other.append_feed("acme", Some(4), &first).unwrap(),
        0,
        "the same versions again are not new"
    );
    let second = [
        entry("7", "v1", "changed"),
        entry("7", "v2", "changed"),
        entry("7", "v2", "changed"),
        entry("8", "v1", "deleted"),
    ];
    assert_eq!(
        other.append_feed("acme", None, &second).unwrap(),
        2,
        "a new version and a new change are new, each once"
    );
    assert_eq!(store.append_feed("acme", None, &[]).unwrap(), 0);

    let all = store.feed("acme", 0, 100).unwrap();
    let order: Vec<(&str, &str)> = all
        .iter()
        .map(|e| (e.remote_id.as_str(), e.change.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("7", "changed"),
            ("8", "changed"),
            ("9", "changed"),
            ("7", "changed"),
            ("8", "deleted")
        ],
        "in the order appended"
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(
        (all[0].entity, all[0].run, all[3].run),
        (Entity::Contact, Some(3), None)
    );
    assert_eq!(all[3].record, "{\"id\":\"7\",\"v\":\"v2\"}");
    assert!(!all[0].at.is_empty());

    let page = other.feed("acme", all[1].seq, 2).unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [all[2].seq, all[3].seq],
        "after the given one, at most the limit"
    );
    assert!(other.feed("acme", all[4].seq, 10).unwrap().is_empty());
    assert_eq!(other.feed("acme", 0, usize::MAX).unwrap().len(), 5);
    assert!(no_instance(store.feed("nobody", 0, 10)));
    assert!(
        store
            .append_feed("nobody", None, &[entry("1", "v1", "changed")])
            .is_err(),
        "no feed without its instance"
    );
}

pub fn acknowledgement_only_moves_forward_and_never_past_the_newest(open: Open) {
    let (store, other) = two_handles(open);
    store.create_instance(&instance("beta")).unwrap();
    store.create_instance(&instance("quiet")).unwrap();
    let state = store.feed_state("acme").unwrap();
    assert_eq!((state.acknowledged, state.newest, state.backlog), (0, 0, 0));
    let entries: Vec<NewFeedEntry> = (0..5)
        .map(|i| entry(&i.to_string(), "v1", "changed"))
        .collect();
    store.append_feed("acme", None, &entries).unwrap();
    store.append_feed("beta", None, &entries[..2]).unwrap();
    let seqs: Vec<i64> = store
        .feed("acme", 0, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    let newest = seqs[4];
    let state = other.feed_state("acme").unwrap();
    assert_eq!(
        (state.acknowledged, state.newest, state.backlog),
        (0, newest, 5)
    );

    let state = other.ack_feed("acme", seqs[1]).unwrap();
    assert_eq!(
        (state.acknowledged, state.newest, state.backlog),
        (seqs[1], newest, 3)
    );
    let state = store.ack_feed("acme", seqs[0]).unwrap();
    assert_eq!(state.acknowledged, seqs[1], "never backwards");
    let refused = store.ack_feed("acme", newest + 1);
    assert!(
        matches!(&refused, Err(StoreError::Conflict(m)) if m.contains("newest")),
        "{refused:?}"
    );
    assert_eq!(store.feed_state("acme").unwrap().acknowledged, seqs[1]);
    assert_eq!(
        store
            .feed_backlogs()
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        [("acme".to_string(), 3), ("beta".to_string(), 2)],
        "instances with nothing unacknowledged are left out"
    );
    let state = other.ack_feed("acme", newest).unwrap();
    assert_eq!(
        (state.acknowledged, state.newest, state.backlog),
        (newest, newest, 0)
    );
    assert_eq!(
        store.feed_backlogs().unwrap().keys().collect::<Vec<_>>(),
        ["beta"]
    );
    assert_eq!(
        store.ack_feed("quiet", 0).unwrap().acknowledged,
        0,
        "an empty feed acknowledges nothing"
    );
    assert!(matches!(
        store.ack_feed("quiet", 1),
        Err(StoreError::Conflict(_))
    ));
    assert!(no_instance(store.ack_feed("nobody", 0)));
    assert!(no_instance(store.feed_state("nobody")));
}

pub fn pruning_drops_only_acknowledged_older_entries(open: Open) {
    let (store, other) = two_handles(open);
    store.create_instance(&instance("beta")).unwrap();
    let entries: Vec<NewFeedEntry> = (0..4)
        .map(|i| entry(&i.to_string(), "v1", "changed"))
        .collect();
    store.append_feed("acme", None, &entries).unwrap();
    store.append_feed("beta", None, &entries).unwrap();
    let seqs: Vec<i64> = store
        .feed("acme", 0, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    store.ack_feed("acme", seqs[1]).unwrap();
    assert_eq!(
        other.prune_feed("2000-01-01T00:00:00Z").unwrap(),
        0,
        "nothing is that old"
    );
    assert_eq!(
        other.prune_feed("9999-01-01T00:00:00Z").unwrap(),
        2,
        "only what is acknowledged, and nothing of the unread instance"
    );
    let left: Vec<i64> = store
        .feed("acme", 0, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(left, seqs[2..]);
    assert_eq!(store.feed("beta", 0, 10).unwrap().len(), 4);
    store.ack_feed("acme", seqs[3]).unwrap();
    assert_eq!(other.prune_feed("9999-01-01T00:00:00Z").unwrap(), 2);
    let state = store.feed_state("acme").unwrap();
    assert_eq!(
        (state.acknowledged, state.newest, state.backlog),
        (seqs[3], seqs[3], 0),
        "the newest is remembered after its entry is pruned"
    );
}

/// Two appenders on their own handles and a reader that acknowledges what it has read: the
/// reader never acknowledges past an entry it has not seen. (With sequence numbers that commit
/// out of order, entry 11 could be read and acknowledged before 10 is visible, and 10 would never
/// be delivered.)
pub fn concurrent_appenders_never_make_a_reader_skip_an_entry(open: Open) {
    const EACH: usize = 200;
    let (store, _) = two_handles(open);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let seen = std::thread::scope(|scope| {
        for writer in ["a", "b"] {
            let handle = open();
            let done = &done;
            scope.spawn(move || {
                for i in 0..EACH {
                    let added = handle
                        .append_feed(
                            "acme",
                            None,
                            &[entry(&format!("{writer}{i}"), "v1", "changed")],
                        )
                        .unwrap();
                    assert_eq!(added, 1);
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        let reader = open();
        let mut seen: Vec<String> = Vec::new();
        loop {
            // Read whether the writers were done before reading, so the last read sees all.
            let finished = done.load(std::sync::atomic::Ordering::SeqCst) == 2;
            let acknowledged = reader.feed_state("acme").unwrap().acknowledged;
            let batch = reader.feed("acme", acknowledged, 50).unwrap();
            if let Some(last) = batch.last() {
                seen.extend(batch.iter().map(|e| e.remote_id.clone()));
                reader.ack_feed("acme", last.seq).unwrap();
            } else if finished {
                break seen;
            }
        }
    });
    let mut distinct = seen.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), seen.len(), "nothing read twice");
    assert_eq!(seen.len(), 2 * EACH, "nothing skipped");
    let state = store.feed_state("acme").unwrap();
    assert_eq!((state.backlog, state.acknowledged), (0, state.newest));
}

/// Two `serve` processes never hold one sink at once; a lapsed claim is taken over, and a claim
/// reads the sink as it is then (what the other delivered included).
pub fn a_sink_is_claimed_by_one_process_at_a_time(open: Open) {
    let (store, other) = two_handles(open);
    store
        .set_feed_sink("acme", "https://bss.example/feed", "sealed")
        .unwrap();
    assert!(store.claim_sink("acme", "a", 100, 130).unwrap().is_some());
    assert!(other.claim_sink("acme", "b", 101, 131).unwrap().is_none());
    store.sink_delivered("acme", 7).unwrap();
    store.release_sink("acme", "b").unwrap();
    assert!(
        other.claim_sink("acme", "b", 102, 132).unwrap().is_none(),
        "only the owner releases"
    );
    store.release_sink("acme", "a").unwrap();
    let claimed = other.claim_sink("acme", "b", 103, 133).unwrap().unwrap();
    assert_eq!(claimed.delivered, 7, "read as of the claim");
    // b dies holding it: after its claim lapses, a takes it.
    assert!(store.claim_sink("acme", "a", 120, 150).unwrap().is_none());
    assert!(store.claim_sink("acme", "a", 134, 164).unwrap().is_some());
    assert!(store.claim_sink("gone", "a", 134, 164).unwrap().is_none());
    // Many claimers at once: one wins.
    store.release_sink("acme", "a").unwrap();
    let winners = std::thread::scope(|scope| {
        let claimers: Vec<_> = (0..4)
            .map(|i| {
                let handle = open();
                scope.spawn(move || {
                    handle
                        .claim_sink("acme", &format!("c{i}"), 200, 230)
                        .unwrap()
                        .is_some()
                })
            })
            .collect();
        claimers
            .into_iter()
            .map(|c| c.join().unwrap())
            .filter(|won| *won)
            .count()
    });
    assert_eq!(winners, 1);
}

pub fn a_sink_starts_after_what_is_acknowledged_and_records_deliveries(open: Open) {
    let (store, other) = two_handles(open);
    let entries: Vec<NewFeedEntry> = (0..3)
        .map(|i| entry(&i.to_string(), "v1", "changed"))
        .collect();
    store.append_feed("acme", None, &entries).unwrap();
    let seqs: Vec<i64> = store
        .feed("acme", 0, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    store.ack_feed("acme", seqs[0]).unwrap();
    store
        .set_feed_sink("acme", "https://bss.example/one", "sealed-1")
        .unwrap();
    let sink = &other.feed_sinks().unwrap()[0];
    assert_eq!(
        (
            sink.instance.as_str(),
            sink.url.as_str(),
            sink.sealed_secret.as_str(),
            sink.delivered,
            sink.attempts,
            sink.next_try,
            sink.last_error.as_deref()
        ),
        (
            "acme",
            "https://bss.example/one",
            "sealed-1",
            seqs[0],
            0,
            0,
            None
        ),
        "delivery starts after what is acknowledged"
    );

    other
        .sink_failed("acme", "the sink answered 500", 60)
        .unwrap();
    other
        .sink_failed("acme", "the sink answered 502", 120)
        .unwrap();
    let sink = &store.feed_sinks().unwrap()[0];
    assert_eq!(
        (sink.attempts, sink.next_try, sink.last_error.as_deref()),
        (2, 120, Some("the sink answered 502"))
    );
    // Replacing it keeps what was delivered and starts the failures over.
    store
        .set_feed_sink("acme", "https://bss.example/two", "sealed-2")
        .unwrap();
    let sink = &other.feed_sinks().unwrap()[0];
    assert_eq!(
        (
            sink.url.as_str(),
            sink.sealed_secret.as_str(),
            sink.delivered,
            sink.attempts,
            sink.last_error.as_deref()
        ),
        ("https://bss.example/two", "sealed-2", seqs[0], 0, None)
    );
    other.sink_failed("acme", "unreachable", 300).unwrap();

    other.sink_delivered("acme", seqs[2]).unwrap();
    let sink = &store.feed_sinks().unwrap()[0];
    assert_eq!(
        (
            sink.delivered,
            sink.attempts,
            sink.next_try,
            sink.last_error.as_deref()
        ),
        (seqs[2], 0, 0, None)
    );
    assert_eq!(
        store.feed_state("acme").unwrap().acknowledged,
        seqs[2],
        "a delivery acknowledges too"
    );
    store.sink_delivered("acme", seqs[1]).unwrap();
    assert_eq!(
        store.feed_sinks().unwrap()[0].delivered,
        seqs[2],
        "never backwards"
    );
    assert_eq!(store.feed_state("acme").unwrap().acknowledged, seqs[2]);

    assert!(other.remove_feed_sink("acme").unwrap());
    assert!(!store.remove_feed_sink("acme").unwrap(), "removed once");
    assert!(store.feed_sinks().unwrap().is_empty());
    assert!(no_instance(store.remove_feed_sink("nobody")));
    assert!(no_instance(store.set_feed_sink("nobody", "https://x", "s")));
}
