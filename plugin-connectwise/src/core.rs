//! Connector logic independent of the component model: identity today, the ConnectWise mapping later.

/// The connector's registered name.
pub const NAME: &str = "connectwise";

/// The connector's version, from the crate.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the connector says when asked for something it does not do yet.
pub fn not_yet(what: &str) -> String {
    format!("the ConnectWise connector does not support {what} yet")
}
