//! The contract between the host and its connectors, as the host sees it: the bindings generated
//! from each minor of `bss:integration` the host serves (`bindings`, the newest in its root, each
//! older minor in its own file converted to the newest types at its edge), which minor a
//! component speaks ([`Contract`]), the host's typed manifest and its validation (`manifest`), and
//! connector errors in words. It is the bottom layer: it imports nothing else from the host.

pub mod bindings;
pub mod manifest;
pub mod reach;

use bindings::types::{ConnectorError, FieldError};

/// Which minor of the contract a component was built against, so its calls go through the
/// matching bindings. The newest is `wit/`; the others are the frozen copies in `wit/<version>/`.
/// Ordered: a later variant is a newer minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contract {
    V1_0,
    V1_1,
    V1_2,
    V1_3,
    V1_4,
}

impl Contract {
    /// Every minor served, oldest first.
    pub const SERVED: [Contract; 5] = [
        Contract::V1_0,
        Contract::V1_1,
        Contract::V1_2,
        Contract::V1_3,
        Contract::V1_4,
    ];
    pub const NEWEST: Contract = Contract::V1_4;

    pub const fn version(self) -> &'static str {
        match self {
            Contract::V1_0 => "1.0.0",
            Contract::V1_1 => "1.1.0",
            Contract::V1_2 => "1.2.0",
            Contract::V1_3 => "1.3.0",
            Contract::V1_4 => "1.4.0",
        }
    }

    /// The served minor `1.<minor>`, if this host serves it.
    pub fn of_minor(minor: u64) -> Option<Contract> {
        Contract::SERVED
            .into_iter()
            .find(|c| semver::Version::parse(c.version()).is_ok_and(|v| v.minor == minor))
    }
}

/// The newest contract version this host serves.
pub const CONTRACT_VERSION: &str = Contract::NEWEST.version();

/// A connector error in words, whole (callers that show or store it redact and cap it).
pub fn describe_connector_error(error: &ConnectorError) -> String {
    let fields = |f: &Vec<FieldError>| {
        f.iter()
            .map(|e| {
                if e.field.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.field, e.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    match error {
        ConnectorError::InvalidSettings(f) => format!("invalid settings: {}", fields(f)),
        ConnectorError::Unauthorized(m) => format!("unauthorized: {m}"),
        ConnectorError::Forbidden(m) => format!("forbidden: {m}"),
        ConnectorError::NotFound(m) => format!("not found: {m}"),
        ConnectorError::Rejected(f) => format!("rejected by the remote: {}", fields(f)),
        ConnectorError::MissingReference(m) => format!(
            "{} refers to {} {:?}, which has not been pushed yet",
            m.field,
            manifest::Entity::from(m.entity).as_str(),
            m.bss_id
        ),
        ConnectorError::RateLimited(after) => match after {
            Some(ms) => format!("rate limited by the remote; retry after {ms} ms"),
            None => "rate limited by the remote".to_string(),
        },
        ConnectorError::Transient(m) => format!("temporary failure: {m}"),
        ConnectorError::Unsupported(m) => format!("unsupported: {m}"),
        ConnectorError::Internal(m) => format!("connector error: {m}"),
    }
}
