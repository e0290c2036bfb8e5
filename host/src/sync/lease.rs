//! Run leases: one push, pull or retry per instance and entity at a time, across every process
//! that opens the data folder (the CLI, `serve`, its schedules). A lease lives in the store with
//! an owner and an expiry; its holder renews it from a background task while the run goes on, so
//! a holder killed with `kill -9` loses it within one time-to-live and its run is then shown as
//! `interrupted`. A second run either waits for the lease (saying who holds it) or is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::contract::manifest::Entity;
use crate::store::{LeaseHolder, Store, StoreError};

/// The default time-to-live of a lease; `BSS_HOST_LEASE_TTL_MS` overrides it (tests shorten it
/// to see an interrupted run expire quickly).
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// How a run that finds its lease held behaves.
#[derive(Clone, Copy)]
pub enum WaitPolicy<'a> {
    /// Refuse at once with [`LeaseError::Held`].
    Refuse,
    /// Wait for the holder to finish; `notice` is told about the holder once.
    Wait(&'a (dyn Fn(&LeaseHolder) + Send + Sync)),
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "{entity} of instance {instance} is busy: {} holds it since {} (lease owner {}); wait for it, or run again without --no-wait to wait",
        holder.purpose, holder.acquired_at, holder.owner
    )]
    Held {
        instance: String,
        entity: &'static str,
        holder: LeaseHolder,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn ttl() -> Duration {
    let Ok(text) = std::env::var("BSS_HOST_LEASE_TTL_MS") else {
        return DEFAULT_TTL;
    };
    match text.trim().parse::<u64>() {
        Ok(ms) if ms >= 100 => Duration::from_millis(ms),
        _ => {
            tracing::warn!(
                "BSS_HOST_LEASE_TTL_MS={text:?} is not a number of milliseconds of at least 100; using {} s",
                DEFAULT_TTL.as_secs()
            );
            DEFAULT_TTL
        }
    }
}

/// This machine's name as lease owners carry it (empty when it cannot be read: such owners are
/// never taken for gone, only waited out).
pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A process-unique lease owner: host name, pid and a random part (pids are reused).
pub fn new_owner(who: &str) -> String {
    let host = hostname();
    let mut nonce = [0u8; 4];
    // Without randomness, the time still tells two owners with a reused pid apart.
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).is_err() {
        nonce = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0))
        .to_le_bytes();
    }
    format!("{who}@{host}:{}:{}", std::process::id(), hex::encode(nonce))
}

/// Whether `owner` names a process on this machine that no longer runs. Owners from other
/// machines, or when it cannot be told, are waited for until their lease lapses.
fn holder_is_gone(owner: &str) -> bool {
    let Some((_, rest)) = owner.split_once('@') else {
        return false;
    };
    let mut parts = rest.rsplitn(3, ':');
    let (_nonce, pid, host) = (parts.next(), parts.next(), parts.next());
    let this_host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    match (host, pid.and_then(|p| p.parse::<u32>().ok())) {
        (Some(host), Some(pid))
            if host == this_host && std::path::Path::new("/proc/self").exists() =>
        {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

/// A held lease; released when dropped. Its heartbeat stops with it.
pub struct RunLease {
    store: Arc<dyn Store>,
    instance: String,
    scope: String,
    owner: String,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl RunLease {
    /// Takes the lease of `entity` on `instance`, waiting or refusing as `policy` says.
    pub async fn acquire(
        store: Arc<dyn Store>,
        instance: &str,
        entity: Entity,
        owner: &str,
        purpose: &str,
        policy: WaitPolicy<'_>,
    ) -> Result<RunLease, LeaseError> {
        let scope = entity.as_str().to_string();
        let ttl = ttl();
        let ttl_ms = ttl.as_millis() as i64;
        let mut told = false;
        loop {
            let held = {
                let store = store.clone();
                let (instance, scope, owner, purpose) = (
                    instance.to_string(),
                    scope.clone(),
                    owner.to_string(),
                    purpose.to_string(),
                );
                tokio::task::spawn_blocking(move || {
                    store.acquire_lease(&instance, &scope, &owner, &purpose, ttl_ms)
                })
                .await
                .map_err(|e| StoreError::Database(e.to_string()))??
            };
            let Some(holder) = held else { break };
            // Its heartbeat has stopped (half a time-to-live without renewal) and its process is
            // gone: both, since a pid alone can be another namespace's.
            if holder.expires_in_ms < ttl_ms / 2 && holder_is_gone(&holder.owner) {
                // Its process is gone (killed): waiting out its lease would only delay this run.
                tracing::warn!(
                    instance,
                    holder = holder.owner,
                    "the process holding the run lease is gone; its run is interrupted and the lease taken over"
                );
                store.release_lease(instance, &scope, &holder.owner)?;
                continue;
            }
            match policy {
                WaitPolicy::Refuse => {
                    return Err(LeaseError::Held {
                        instance: instance.to_string(),
                        entity: entity.as_str(),
                        holder,
                    });
                }
                WaitPolicy::Wait(notice) => {
                    if !told {
                        notice(&holder);
                        told = true;
                    }
                    let pause = holder.expires_in_ms.clamp(50, 250) as u64;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (store, lost) = (store.clone(), lost.clone());
            let (instance, scope, owner) = (instance.to_string(), scope.clone(), owner.to_string());
            tokio::spawn(async move {
                let mut renewed_at = std::time::Instant::now();
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    if renewed_at.elapsed() > ttl * 2 / 3 {
                        // Renewals have failed for most of a time-to-live: another process may
                        // take the lease any moment, so this run stops sending now.
                        tracing::error!(
                            instance,
                            scope,
                            "the run lease could not be renewed in time; the run stops"
                        );
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    let (store2, i, s, o) = (
                        store.clone(),
                        instance.clone(),
                        scope.clone(),
                        owner.clone(),
                    );
                    let renewed =
                        tokio::task::spawn_blocking(move || store2.renew_lease(&i, &s, &o, ttl_ms))
                            .await;
                    match renewed {
                        Ok(Ok(true)) => renewed_at = std::time::Instant::now(),
                        Ok(Ok(false)) => {
                            tracing::error!(
                                instance,
                                scope,
                                "the run lease was lost (another process took it over after it lapsed); the run stops"
                            );
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        // A busy or failing store: try again at the next beat, well before expiry.
                        Ok(Err(error)) => {
                            tracing::warn!(instance, "renewing the run lease failed: {error}")
                        }
                        Err(_) => return,
                    }
                }
            })
        };
        Ok(RunLease {
            store,
            instance: instance.to_string(),
            scope,
            owner: owner.to_string(),
            lost,
            heartbeat,
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether another process took the lease over (this one's heartbeat could not renew it in
    /// time): the run must stop sending.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for RunLease {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if let Err(error) = self
            .store
            .release_lease(&self.instance, &self.scope, &self.owner)
        {
            tracing::warn!(
                instance = self.instance,
                "releasing the run lease failed (it lapses by itself): {error}"
            );
        }
    }
}
