//! Push and pull that never duplicate or lose a record: the engine (`engine`), the connector it
//! drives (`connector`), the canonical record files it reads and writes (`records`), the runs
//! as commands and routes start them (`service`), and what runs did and what waits (`history`). `native` runs the ConnectWise core compiled
//! natively through the same engine, as the baseline the sandbox is measured against.

pub mod connector;
pub mod engine;
pub mod history;
pub mod lease;
#[cfg(feature = "demo")]
pub mod native;
pub mod records;
pub mod service;

pub use engine::{Engine, Pacing, PullFrom, PullReport, PushReport, SyncError};
