//! Shared behaviour of [`SyncStore`](crate::store::SyncStore): the id map, leases and fencing,
//! runs and their outcomes, the retry queue and cursors.

use std::collections::BTreeSet;

use super::super::{
    Applied, Cursor, InstanceStore, LinkOutcome, Outcome, PushedCopy, RunKind, RunStatus,
    RunTrigger, StoreError, SyncStore, Waiting,
};
use super::instance;
use crate::contract::manifest::Entity;

/// The sync part with the instances it belongs to (a run needs its instance).
pub trait SyncAndInstances: SyncStore + InstanceStore {}
impl<T: SyncStore + InstanceStore + ?Sized> SyncAndInstances for T {}

type Open<'a> = &'a dyn Fn() -> Box<dyn SyncAndInstances>;

const SCOPE: &str = "contact";

fn push_run(store: &dyn SyncAndInstances, owner: Option<&str>) -> i64 {
    store
        .start_run(
            "acme",
            RunKind::Push,
            RunTrigger::Command,
            Some(Entity::Contact),
            false,
            owner,
        )
        .unwrap()
}

fn queued(id: &str) -> (String, Outcome) {
    (
        id.to_string(),
        Outcome::Failed {
            message: "the remote answered 503".into(),
            retryable: true,
            outcome_unknown: false,
            record: format!("{{\"id\":\"{id}\"}}"),
            waits: None,
            label: None,
        },
    )
}

fn created(id: &str, remote: &str) -> (String, Outcome) {
    (
        id.to_string(),
        Outcome::Done {
            kind: Applied::Created,
            remote_id: remote.into(),
            waiting: None,
            copy: Some(PushedCopy {
                last_pushed: format!("{{\"id\":\"{id}\"}}"),
                stored: Some(format!("{{\"id\":{remote}}}")),
            }),
            note: None,
        },
    )
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A removal's deletion is known, unlinks a deleted record and unqueues it, in one go.
pub fn a_removal_is_known_unlinks_and_unqueues(open: Open) {
    let store = open();
    store.create_instance(&instance("acme")).unwrap();
    store.link("acme", Entity::Contact, "K1", "7").unwrap();
    store.link("acme", Entity::Contact, "K2", "8").unwrap();
    let run = push_run(&*store, None);
    store
        .record_outcomes(run, "acme", Entity::Contact, &[queued("K1")])
        .unwrap();
    let other = open();
    assert!(
        other
            .record_removal("acme", Entity::Contact, "K1", Some(("7", true)))
            .unwrap(),
        "K1 was queued"
    );
    assert!(
        !other
            .record_removal("acme", Entity::Contact, "K2", Some(("8", false)))
            .unwrap()
    );
    let linked = store.linked("acme", Entity::Contact).unwrap();
    assert_eq!(
        linked.keys().collect::<Vec<_>>(),
        ["8"],
        "deactivated stays linked"
    );
    assert!(store.queue("acme").unwrap().is_empty());
    let remote = ids(&["7", "8", "9"]);
    let known = store
        .known_deletions("acme", Entity::Contact, &remote)
        .unwrap();
    assert_eq!(known.into_iter().collect::<Vec<_>>(), ["7", "8"]);
    other
        .note_deletions(
            "acme",
            Entity::Contact,
            &[("9".into(), None), ("8".into(), Some("K2".into()))],
        )
        .unwrap();
    other.forget_deletion("acme", Entity::Contact, "7").unwrap();
    let known = store
        .known_deletions("acme", Entity::Contact, &remote)
        .unwrap();
    assert_eq!(known.into_iter().collect::<Vec<_>>(), ["8", "9"]);
}

/// Claimers on separate handles, at once, share out the queue: each item goes to exactly one.
pub fn a_queue_item_is_claimed_by_one_claimer_only(open: Open) {
    let store = open();
    store.create_instance(&instance("acme")).unwrap();
    let run = push_run(&*store, None);
    let batch: Vec<_> = (0..60).map(|i| queued(&format!("K{i:02}"))).collect();
    store
        .record_outcomes(run, "acme", Entity::Contact, &batch)
        .unwrap();
    let handles: Vec<_> = (0..4).map(|_| open()).collect();
    let claims: Vec<Vec<String>> = std::thread::scope(|scope| {
        let running: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(n, handle)| {
                scope.spawn(move || {
                    let claimer = format!("claimer-{n}");
                    handle
                        .claim_queue("acme", Some(Entity::Contact), &claimer)
                        .unwrap()
                        .into_iter()
                        .map(|item| item.bss_id)
                        .collect()
                })
            })
            .collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let all: Vec<&String> = claims.iter().flatten().collect();
    let distinct: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), 60, "every item claimed once: {claims:?}");
    assert_eq!(distinct.len(), 60);
    assert!(store.claim_queue("acme", None, "late").unwrap().is_empty());
    // What a claimer holds, as it is now; released items can be claimed again.
    let holder = claims.iter().position(|c| !c.is_empty()).unwrap();
    let holder = format!("claimer-{holder}");
    let held = store.claimed("acme", &holder, Entity::Contact).unwrap();
    assert_eq!(
        held.len(),
        claims.iter().find(|c| !c.is_empty()).unwrap().len()
    );
    assert!(
        held.windows(2).all(|w| w[0].bss_id < w[1].bss_id),
        "in send order"
    );
    store.release_queue("acme", &holder).unwrap();
    assert_eq!(
        store.claim_queue("acme", None, "late").unwrap().len(),
        held.len()
    );
    assert_eq!(store.queue_depths().unwrap().get("acme"), Some(&60));
}

/// One live owner per (instance, scope), also among takers racing; a lapsed lease is taken
/// over and its holder's run is interrupted, and the fenced writes of that run are refused.
pub fn a_lease_has_one_live_owner_and_a_lapsed_one_is_taken_over(open: Open) {
    let store = open();
    store.create_instance(&instance("acme")).unwrap();
    let handles: Vec<_> = (0..6).map(|_| open()).collect();
    let won: Vec<bool> = std::thread::scope(|scope| {
        let racing: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(n, handle)| {
                scope.spawn(move || {
                    handle
                        .acquire_lease("acme", "account", &format!("w{n}"), "push", 30_000)
                        .unwrap()
                        .is_none()
                })
            })
            .collect();
        racing.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");

    // A holds the contact lease briefly and stalls past it.
    assert_eq!(
        store
            .acquire_lease("acme", SCOPE, "a", "push of contact", 1_000)
            .unwrap(),
        None
    );
    let run = push_run(&*store, Some("a"));
    store
        .mark_pending(run, "acme", Entity::Contact, &ids(&["K1"]))
        .unwrap();
    let other = open();
    let holder = other
        .acquire_lease("acme", SCOPE, "b", "pull of contact", 30_000)
        .unwrap()
        .expect("a holds it");
    assert_eq!(
        (holder.owner.as_str(), holder.purpose.as_str()),
        ("a", "push of contact")
    );
    assert!(holder.expires_in_ms <= 1_000, "{holder:?}");
    assert!(!other.renew_lease("acme", SCOPE, "b", 30_000).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    assert_eq!(
        other
            .acquire_lease("acme", SCOPE, "b", "pull of contact", 30_000)
            .unwrap(),
        None,
        "lapsed: taken over"
    );
    let (row, _) = store.run(run).unwrap().unwrap();
    assert_eq!(row.status, RunStatus::Interrupted);
    assert!(!store.renew_lease("acme", SCOPE, "a", 30_000).unwrap());
    assert!(matches!(
        store.mark_pending(run, "acme", Entity::Contact, &ids(&["K2"])),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.commit_pull(run, "acme", Entity::Contact, &Cursor::default(), 0),
        Err(StoreError::Conflict(_))
    ));
    // What a's sends did is kept all the same: the remote has the record.
    store
        .record_outcomes(run, "acme", Entity::Contact, &[created("K1", "70")])
        .unwrap();
    assert_eq!(
        other
            .bss_ids("acme", Entity::Contact, &ids(&["70"]))
            .unwrap()["70"],
        "K1"
    );
    // Released by its owner only.
    store.release_lease("acme", SCOPE, "a").unwrap();
    assert!(
        store
            .acquire_lease("acme", SCOPE, "a", "push", 30_000)
            .unwrap()
            .is_some()
    );
    other.release_lease("acme", SCOPE, "b").unwrap();
    assert!(
        store
            .acquire_lease("acme", SCOPE, "a", "push", 30_000)
            .unwrap()
            .is_none()
    );
}

/// A batch writes its items, the id map, the queue and the run's counters together; pending
/// marks belong to the run that set them.
pub fn outcomes_write_items_id_map_queue_and_counters(open: Open) {
    let store = open();
    store.create_instance(&instance("acme")).unwrap();
    let first = push_run(&*store, None);
    store
        .mark_pending(
            first,
            "acme",
            Entity::Contact,
            &ids(&["K1", "K2", "K9", "K1"]),
        )
        .unwrap();
    let second = push_run(&*store, None);
    store
        .mark_pending(second, "acme", Entity::Contact, &ids(&["K9"]))
        .unwrap();
    let map = store
        .id_map("acme", Entity::Contact, &ids(&["K1", "K9", "K404"]))
        .unwrap();
    assert_eq!(map.len(), 2);
    assert!(map["K1"].pending && map["K1"].remote_id.is_none());

    let needs_link = (
        "K3".to_string(),
        Outcome::Failed {
            message: "two remote contacts match".into(),
            retryable: false,
            outcome_unknown: false,
            record: "{\"id\":\"K3\"}".into(),
            waits: None,
            label: Some("ambiguous"),
        },
    );
    let waiting = (
        "K5".to_string(),
        Outcome::Done {
            kind: Applied::Created,
            remote_id: "50".into(),
            waiting: Some(Waiting {
                message: "sent without its company; sent again once K6 exists".into(),
                record: "{\"id\":\"K5\"}".into(),
                waits: (Entity::Account, "K6".into()),
            }),
            copy: None,
            note: None,
        },
    );
    let unknown = (
        "K2".to_string(),
        Outcome::Failed {
            message: "the answer was lost".into(),
            retryable: true,
            outcome_unknown: true,
            record: "{\"id\":\"K2\"}".into(),
            waits: None,
            label: None,
        },
    );
    let other = open();
    other
        .record_outcomes(
            first,
            "acme",
            Entity::Contact,
            &[
                created("K1", "10"),
                unknown,
                needs_link,
                waiting,
                (
                    "K7".into(),
                    Outcome::Invalid {
                        message: "no name".into(),
                    },
                ),
            ],
        )
        .unwrap();
    // The second run's failure of K9 leaves the first run's mark; the first run's clears it.
    let failed_k9 = (
        "K9".to_string(),
        Outcome::Failed {
            message: "refused".into(),
            retryable: false,
            outcome_unknown: false,
            record: "{}".into(),
            waits: None,
            label: None,
        },
    );
    store
        .record_outcomes(
            second,
            "acme",
            Entity::Contact,
            std::slice::from_ref(&failed_k9),
        )
        .unwrap();
    assert!(
        store
            .id_map("acme", Entity::Contact, &ids(&["K9"]))
            .unwrap()["K9"]
            .pending
    );
    store
        .record_outcomes(first, "acme", Entity::Contact, &[failed_k9])
        .unwrap();
    assert!(
        store
            .id_map("acme", Entity::Contact, &ids(&["K9"]))
            .unwrap()
            .is_empty()
    );

    let (row, items) = store.run(first).unwrap().unwrap();
    assert_eq!(
        (row.created, row.queued, row.failed, row.status),
        (2, 1, 3, RunStatus::Running)
    );
    let labels: Vec<_> = items
        .iter()
        .map(|i| (i.bss_id.as_str(), i.outcome.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("K1", "created"),
            ("K2", "queued"),
            ("K3", "ambiguous"),
            ("K5", "created"),
            ("K7", "invalid"),
            ("K9", "failed")
        ]
    );
    assert_eq!(items[0].remote_id.as_deref(), Some("10"));
    let map = store
        .id_map("acme", Entity::Contact, &ids(&["K1", "K2", "K5"]))
        .unwrap();
    assert_eq!(map["K1"].remote_id.as_deref(), Some("10"));
    assert!(!map["K1"].pending);
    assert_eq!(map["K1"].last_pushed.as_deref(), Some("{\"id\":\"K1\"}"));
    assert!(
        map["K2"].pending,
        "an unknown outcome keeps the create pending"
    );
    assert_eq!(
        store
            .stored_copies("acme", Entity::Contact, &ids(&["10", "50"]))
            .unwrap(),
        [("10".to_string(), "{\"id\":10}".to_string())].into()
    );
    let queue = store.queue("acme").unwrap();
    let in_queue: Vec<_> = queue
        .iter()
        .map(|q| (q.bss_id.as_str(), q.attempts))
        .collect();
    assert_eq!(in_queue, [("K2", 1), ("K3", 1), ("K5", 0)]);

    // Held for a link: never claimed by a retry; a waiting record only once what it waits for
    // exists.
    let claimed = store.claim_queue("acme", None, "retry").unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|q| q.bss_id.as_str())
            .collect::<Vec<_>>(),
        ["K2", "K5"]
    );
    store.release_queue("acme", "retry").unwrap();
    assert!(
        store
            .claim_settled("acme", Entity::Account, "settle")
            .unwrap()
            .is_empty()
    );
    store.link("acme", Entity::Account, "K6", "600").unwrap();
    let settled = store
        .claim_settled("acme", Entity::Account, "settle")
        .unwrap();
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].bss_id, "K5");
    // Queued again: the attempt counts, the claim ends.
    store
        .record_outcomes(first, "acme", Entity::Contact, &[queued("K2")])
        .unwrap();
    assert_eq!(store.queue("acme").unwrap()[0].attempts, 2);

    // Links by hand: both sides are checked, and a held record is let go.
    assert_eq!(
        store.link("acme", Entity::Contact, "K1", "10").unwrap(),
        LinkOutcome::AlreadyLinked
    );
    assert!(matches!(
        store.link("acme", Entity::Contact, "K1", "11"),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.link("acme", Entity::Contact, "K8", "10"),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.link("acme", Entity::Contact, "K3", "30").unwrap(),
        LinkOutcome::Linked
    );
    assert!(
        store
            .claim_queue("acme", None, "retry")
            .unwrap()
            .iter()
            .any(|q| q.bss_id == "K3"),
        "the held record is an ordinary retry now"
    );
    assert!(matches!(
        store.link("nobody", Entity::Contact, "K1", "1"),
        Err(StoreError::NoInstance(_))
    ));

    // Ids differing in ASCII case only collide, with the id map and with the queue.
    let collisions = store
        .case_collisions(
            "acme",
            Entity::Contact,
            &ids(&["k1", "K1", "k2", "É1", "k404"]),
        )
        .unwrap();
    assert_eq!(
        collisions,
        [
            ("k1".to_string(), "K1".to_string()),
            ("k2".into(), "K2".into())
        ]
        .into()
    );
    store.link("acme", Entity::Contact, "É9", "90").unwrap();
    assert!(
        store
            .case_collisions("acme", Entity::Contact, &ids(&["é9"]))
            .unwrap()
            .is_empty(),
        "only ASCII letters fold, as everywhere in the host"
    );
}

/// A pull's cursor and its run's end are written together; runs are listed and found.
pub fn a_pull_commits_its_cursor_and_run_end_together(open: Open) {
    let store = open();
    store.create_instance(&instance("acme")).unwrap();
    assert_eq!(
        store.cursor("acme", Entity::Contact).unwrap(),
        Cursor::default()
    );
    assert!(
        store
            .acquire_lease("acme", SCOPE, "puller", "pull", 30_000)
            .unwrap()
            .is_none()
    );
    let run = store
        .start_run(
            "acme",
            RunKind::Pull,
            RunTrigger::Schedule,
            Some(Entity::Contact),
            false,
            Some("puller"),
        )
        .unwrap();
    let later = crate::time::rfc3339(4_102_444_800);
    assert_eq!(store.runs_running_since(&later).unwrap().len(), 1);
    let cursor = Cursor {
        stamp: Some("2026-11-01T10:00:00Z".into()),
        delivered_at_stamp: ids(&["5", "6"]),
    };
    open()
        .commit_pull(run, "acme", Entity::Contact, &cursor, 2)
        .unwrap();
    assert_eq!(store.cursor("acme", Entity::Contact).unwrap(), cursor);
    let runs = store.runs("acme").unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (
            runs[0].status,
            runs[0].pulled,
            runs[0].kind,
            runs[0].trigger
        ),
        (RunStatus::Done, 2, RunKind::Pull, RunTrigger::Schedule)
    );
    assert!(runs[0].finished_at.is_some());
    assert!(store.runs_running_since(&later).unwrap().is_empty());
    let failed = push_run(&*store, None);
    store
        .finish_run(
            failed,
            RunStatus::Failed,
            Some("the remote refused the key"),
            0,
        )
        .unwrap();
    let (row, items) = store.run(failed).unwrap().unwrap();
    assert_eq!(row.message.as_deref(), Some("the remote refused the key"));
    assert!(items.is_empty());
    assert_eq!(store.run(failed + 1000).unwrap(), None);
    assert!(matches!(
        store.runs("nobody"),
        Err(StoreError::NoInstance(_))
    ));
    assert!(matches!(
        store.start_run(
            "nobody",
            RunKind::Push,
            RunTrigger::Command,
            None,
            false,
            None
        ),
        Err(StoreError::NoInstance(_))
    ));
}
