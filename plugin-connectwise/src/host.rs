//! What the connector needs from its host, as a trait: the component implements it with the
//! `bss:integration` imports; native builds (tests, benchmarks) implement it however they like.

pub use crate::wit::bss::integration::http::{HttpError, Method, Request, Response};
pub use crate::wit::bss::integration::log::Level;

pub trait Host {
    /// Sends a request; the host adds the credentials.
    fn send(&self, request: &Request) -> Result<Response, HttpError>;
    /// A non-secret setting's value.
    fn setting(&self, key: &str) -> Option<String>;
    /// The remote value a BSS value maps to in a lookup.
    fn lookup(&self, key: &str, bss_value: &str) -> Option<String>;
    /// The BSS value a remote value maps back to in a lookup.
    fn reverse_lookup(&self, key: &str, remote_value: &str) -> Option<String>;
    /// The remote values of every row of a lookup.
    fn lookup_remote_values(&self, key: &str) -> Vec<String>;
    fn log(&self, level: Level, message: &str);
    /// Seconds since the Unix epoch by this machine's clock. The component reads it from
    /// `wasi:clocks/wall-clock` (it is built without the rest of WASI, where `SystemTime` panics).
    fn unix_seconds(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}
