//! Errors of loading and calling connectors. Each says which connector (and for calls, which
//! version and instance) and what happened, in words an operator can act on.

use std::path::PathBuf;
use std::time::Duration;

use super::answer::Oversized;
use crate::contract::manifest::ManifestError;

/// Why a call did not return a result. The host and the next call are unaffected by any of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    #[error("exceeded its call deadline of {0:?} (host.call-deadline)")]
    DeadlineExceeded(Duration),
    #[error(
        "hit its memory cap of {limit} bytes (host.memory-limit) when it asked for {requested} bytes"
    )]
    MemoryCap { limit: u64, requested: u64 },
    #[error("trapped: {trap}{}", if guest_said.is_empty() { String::new() } else { format!("; it last wrote: {guest_said}") })]
    Trap { trap: String, guest_said: String },
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    /// The answer (or an import's arguments) broke a cap on what a connector hands back; nothing
    /// of it was copied into the host.
    #[error("handed back {0}")]
    AnswerTooLarge(Oversized),
    /// `manifest()` has a short deadline of its own, whatever the instance options say.
    #[error("did not answer manifest() within {0:?} (the host's fixed deadline for manifest())")]
    ManifestDeadline(Duration),
}

/// A failed call, naming the connector, its version and the instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("connector {connector} {version} (instance {instance}) {failure}")]
pub struct CallError {
    pub connector: String,
    pub version: String,
    pub instance: String,
    pub failure: CallFailure,
}

/// Why a component could not be loaded as a connector. The version already serving is untouched.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("could not read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} is not a valid WebAssembly component: {reason}")]
    NotAComponent { origin: String, reason: String },
    /// The compile was stopped before it ended (its process was killed, crashed or ran past its
    /// deadline): nothing was learnt about the component, so it is not refused for what it is.
    #[error(
        "{origin} could not be compiled this time: {reason}; it is tried again later (the plugins folder's watcher and a fleet worker wait 30 s, then longer after each failure; a command tries on its next run)"
    )]
    CompileStopped { origin: String, reason: String },
    /// The compile needed more memory than a compiler child may use.
    #[error(
        "{origin} needs more memory to compile than the compiler may use ({cap_mib} MiB, BSS_HOST_COMPILE_MEMORY_MB): {said}; if the component is legitimate, raise the cap and restart, or drop the file again"
    )]
    CompileOverMemoryCap {
        origin: String,
        cap_mib: u64,
        said: String,
    },
    #[error(
        "{origin} is built against {found}, but this host serves bss:integration@{served}; {fix}"
    )]
    ContractVersion {
        origin: String,
        found: String,
        served: String,
        fix: String,
    },
    #[error(
        "{origin} is a component but not a connector: it exports no bss:integration/connector interface (it exports: {exports})"
    )]
    NotAConnector { origin: String, exports: String },
    #[error("{origin} cannot be linked (it needs imports this host does not grant): {reason}")]
    Link { origin: String, reason: String },
    #[error("{origin} does not export the contract's connector interface as declared: {reason}")]
    Exports { origin: String, reason: String },
    #[error("{origin}: calling manifest() failed: {source}")]
    ManifestCall {
        origin: String,
        source: Box<CallError>,
    },
    #[error("{origin}: {source}")]
    Manifest {
        origin: String,
        source: ManifestError,
    },
}
