//! Remote callbacks as `serve` takes them: the hook that receives a delivery (`receive`: the
//! URL's token, the remote's signature with a signing key fetched only from the instance's own
//! remote host and cached, the event stored once and answered at once) and the worker that
//! applies the stored events (`worker`: each named record fetched by id through the connector
//! and delivered to the change feed, deletions confirmed by the remote before they are
//! reported).
//!
//! The delivery format and signature are ConnectWise's (`x-content-signature`, base64 of
//! HMAC-SHA256 over the body keyed with the SHA-256 of the signing key at `Metadata.key_url`),
//! the only remote with callbacks so far; which remote type means which entity comes from the
//! registrations the connector made (`subscribe`).

pub mod receive;
pub mod worker;

pub use receive::{Accepted, HookError, Receiver};
