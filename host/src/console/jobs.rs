//! Runs started from the console (a pushed file, *Pull now*, *Retry now*) go on in the
//! background so the browser is not held while they work; a job is what the console knows of
//! one: how far it has got (records done of the file's total) and how it ended, shown by its page
//! until it ends and for a while after. Jobs live in the serving process; the runs they start are
//! in the store like any other run. A job id is random, so one user's job cannot be guessed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How many ended jobs are remembered (the oldest are forgotten first).
const KEPT: usize = 200;

/// How a job ended.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobEnd {
    /// Every record succeeded.
    pub ok: bool,
    pub summary: String,
    /// The run it made, when it got that far.
    pub run: Option<i64>,
}

#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub instance: String,
    /// What it does, e.g. "push of accounts.ndjson (account)".
    pub what: String,
    pub started_at: String,
    done: AtomicUsize,
    total: AtomicUsize,
    end: Mutex<Option<JobEnd>>,
}

impl Job {
    /// Records `done` of `total` handled so far.
    pub fn progress(&self, done: usize, total: usize) {
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    pub fn finish(&self, end: JobEnd) {
        *self.end.lock().unwrap_or_else(|p| p.into_inner()) = Some(end);
    }

    /// What its page shows.
    pub fn view(&self) -> serde_json::Value {
        let end = self.end.lock().unwrap_or_else(|p| p.into_inner()).clone();
        serde_json::json!({
            "id": self.id,
            "instance": self.instance,
            "what": self.what,
            "started_at": self.started_at,
            "done": self.done.load(Ordering::Relaxed),
            "total": self.total.load(Ordering::Relaxed),
            "running": end.is_none(),
            "end": end,
        })
    }
}

#[derive(Default)]
pub struct Jobs {
    jobs: Mutex<BTreeMap<String, (u64, Arc<Job>)>>,
    count: std::sync::atomic::AtomicU64,
}

impl Jobs {
    /// A new job of `instance`, running.
    pub fn start(&self, instance: &str, what: String) -> Arc<Job> {
        let job = Arc::new(Job {
            id: crate::store::secrets::random_token(12),
            instance: instance.to_string(),
            what,
            started_at: crate::time::now_rfc3339(),
            done: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            end: Mutex::new(None),
        });
        let order = self.count.fetch_add(1, Ordering::Relaxed);
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.insert(job.id.clone(), (order, job.clone()));
        if jobs.len() > KEPT {
            let oldest_ended = jobs
                .iter()
                .filter(|(_, (_, j))| j.end.lock().map(|e| e.is_some()).unwrap_or(true))
                .min_by_key(|(_, (order, _))| *order)
                .map(|(id, _)| id.clone());
            if let Some(id) = oldest_ended {
                jobs.remove(&id);
            }
        }
        job
    }

    pub fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|(_, j)| j.clone())
    }
}
