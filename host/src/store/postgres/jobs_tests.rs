//! The shared job-queue behaviour (`store/behaviour/jobs.rs`) on a PostgreSQL scratch database.

use crate::store::behaviour::jobs as behaviour;
use crate::store::postgres::{PgStore, scratch::ScratchDb};

#[test]
fn a_job_is_submitted_claimed_and_finished_with_its_payload_intact() {
    let scratch = ScratchDb::create();
    behaviour::a_job_is_submitted_claimed_and_finished_with_its_payload_intact(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

#[test]
fn a_job_of_an_unknown_instance_is_refused_and_jobs_go_with_their_instance() {
    let scratch = ScratchDb::create();
    behaviour::a_job_of_an_unknown_instance_is_refused_and_jobs_go_with_their_instance(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

#[test]
fn a_job_is_claimed_by_one_worker_and_never_beside_a_running_one_of_its_entity() {
    let scratch = ScratchDb::create();
    behaviour::a_job_is_claimed_by_one_worker_and_never_beside_a_running_one_of_its_entity(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

#[test]
fn a_lapsed_lease_is_taken_over_and_its_old_worker_can_no_longer_end_it() {
    let scratch = ScratchDb::create();
    behaviour::a_lapsed_lease_is_taken_over_and_its_old_worker_can_no_longer_end_it(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

#[test]
fn a_job_put_off_is_queued_again_after_its_delay_without_counting_the_attempt() {
    let scratch = ScratchDb::create();
    behaviour::a_job_put_off_is_queued_again_after_its_delay_without_counting_the_attempt(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

#[test]
fn a_stopped_worker_s_jobs_are_queued_again_at_once() {
    let scratch = ScratchDb::create();
    behaviour::a_stopped_worker_s_jobs_are_queued_again_at_once(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

#[test]
fn workers_are_listed_alive_stopped_and_with_the_jobs_they_hold() {
    let scratch = ScratchDb::create();
    behaviour::workers_are_listed_alive_stopped_and_with_the_jobs_they_hold(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

#[test]
fn a_job_that_outlives_its_workers_too_often_fails() {
    let scratch = ScratchDb::create();
    behaviour::a_job_that_outlives_its_workers_too_often_fails(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

#[test]
fn a_queued_job_is_found_by_kind_instance_and_entity_until_it_runs() {
    let scratch = ScratchDb::create();
    behaviour::a_queued_job_is_found_by_kind_instance_and_entity_until_it_runs(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

#[test]
fn a_job_whose_worker_stopped_after_its_run_ended_ends_with_the_run() {
    let scratch = ScratchDb::create();
    behaviour::a_job_whose_worker_stopped_after_its_run_ended_ends_with_the_run(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}

/// A kind only a newer host knows is left queued for a worker that knows it (a fleet being
/// upgraded), holding back only the later jobs of its entity.
#[test]
fn a_job_of_a_newer_kind_waits_for_a_newer_worker() {
    use crate::contract::manifest::Entity;
    use crate::store::job_store::{JOB_LEASE_SECS, JobKind, JobStore, NewJob};
    use crate::store::{InstanceStore, RunTrigger};
    let scratch = ScratchDb::create();
    let store = PgStore::open(&scratch.url).unwrap();
    store
        .create_instance(&crate::store::behaviour::instance("acme"))
        .unwrap();
    let job = |entity| NewJob {
        kind: JobKind::Push,
        instance: "acme".into(),
        entity,
        trigger: RunTrigger::Api,
        payload: b"{}".to_vec(),
        dry_run: false,
    };
    let newer = store.submit_job(&job(Entity::Product)).unwrap();
    let behind = store.submit_job(&job(Entity::Product)).unwrap();
    let other = store.submit_job(&job(Entity::Account)).unwrap();
    store
        .run(async |client| {
            client
                .execute(
                    "UPDATE jobs SET kind = 'transmogrify' WHERE id = $1",
                    &[&newer],
                )
                .await
                .map_err(crate::store::postgres::db)
        })
        .unwrap();
    let claimed = store.claim_job("w1", JOB_LEASE_SECS).unwrap().unwrap();
    assert_eq!(claimed.row.id, other);
    assert_eq!(store.claim_job("w1", JOB_LEASE_SECS).unwrap(), None);
    assert_eq!(store.job(behind).unwrap().unwrap().state.as_str(), "queued");
}

#[test]
fn a_queued_job_is_cancelled_and_a_running_or_ended_one_is_not() {
    let scratch = ScratchDb::create();
    behaviour::a_queued_job_is_cancelled_and_a_running_or_ended_one_is_not(&|| {
        Box::new(PgStore::open(&scratch.url).unwrap())
    });
}
