//! Push and pull that never duplicate or lose a record: the engine (`engine`), the connector it
//! drives (`connector`), the canonical record files it reads and writes (`records`), the runs
//! as commands and routes start them (`service`), what runs did and what waits (`history`), and
//! changes one record at a time: callback events, deletions found or asked for
//! (`remote_changes`). `native` runs the ConnectWise core compiled natively through the same
//! engine, as the baseline the sandbox is measured against.

pub mod connector;
pub mod engine;
pub mod history;
pub mod lease;
#[cfg(feature = "demo")]
pub mod native;
pub mod records;
pub mod remote_changes;
pub mod service;

pub use engine::{Engine, Pacing, PullFrom, PullReport, PushReport, SyncError};
