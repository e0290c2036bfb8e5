//! A thin SDK for `bss:integration@1.4.0` connectors written in Rust.
//!
//! What it gives a connector, and nothing more:
//! - the contract's bindings (`wit_bindgen::generate!` on `../wit`, world `plugin`) and the
//!   [`export!`] macro, so a connector crate needs no bindings of its own:
//!   `bss_connector_sdk::export!(MyConnector);` with `impl Guest for MyConnector`;
//! - a constructor for every `connector-error` variant (`ConnectorError::rejected_field(..)`, …)
//!   and [`each_item`] for the per-record results of `push` and `remove`;
//! - [`http::Http`]: requests over `bss:integration/http` with JSON bodies, statuses mapped to the
//!   contract's errors (429 + Retry-After → `rate-limited`, 5xx → `transient`, 401/403/404,
//!   other 4xx with a ConnectWise-style body → `rejected` with its fields), transport errors
//!   mapped too, and paging by `Link` header or by a token in the JSON body;
//! - [`read_settings`]: every server variable of the manifest read and typed, every missing or
//!   malformed value collected into ONE `invalid-settings`;
//! - [`log`]: the host's log, skipping lines nobody keeps.
//!
//! Panics: components are built with `panic = "abort"` (the only strategy on wasm32), so a panic
//! cannot be caught and turned into `internal`: it writes its message and traps; the host fails
//! the call and reports the trap with the message (the tail of stderr, or in the lean build, where
//! there is no stderr, the last error line of the log, where [`export!`] sends panic messages).
//! Nothing in this SDK panics on remote data; return errors (`?`) instead of `unwrap()` in
//! connector code.
//!
//! The lean build (`./build.sh --lean`, target `wasm32-unknown-unknown`, no WASI adapter): the
//! component imports only the contract, which makes each call's instance cheaper to make. It
//! brings an allocator of its own (`arena.rs`) and reports panics through the log. `println!`
//! and `eprintln!` print nowhere there, and std's clocks and randomness are not available.
//!
//! Connectors are stateless between calls: a call runs in a fresh instance or in one the host
//! kept from an earlier call of the same instance and settings, so a `static` may or may not
//! hold what an earlier call left; never rely on either.

// Lets the generated code name this crate the same way from inside it and from a connector crate.
extern crate self as bss_connector_sdk;

#[doc(hidden)]
pub use wit_bindgen;

pub use serde_json;
pub use serde_json::{Value, json};

wit_bindgen::generate!({
    world: "plugin",
    // templates/rust/wit: a symlink to the repository's contract (../../wit) in the repository, the
    // contract's files in a project made by `bss-host connectors new`.
    path: "../wit",
    pub_export_macro: true,
    // Wrapped by this crate's own `export!` (below), which readies the instance first.
    export_macro_name: "__export_bindings",
    default_bindings_module: "bss_connector_sdk",
    runtime_path: "bss_connector_sdk::wit_bindgen::rt",
    additional_derives: [PartialEq],
});

pub mod http;
mod settings_reader;
pub mod text;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod arena;

// The lean build's allocator (a library may name the program's global allocator; a connector
// crate must then not name another).
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[global_allocator]
static ALLOCATOR: arena::ArenaFirst = arena::ArenaFirst::new();

/// Exports `$ty`, which implements [`connector::Guest`], as the component's `connector`:
/// `bss_connector_sdk::export!(MyConnector);`. Each call first readies the instance
/// ([`__enter`]), then runs `$ty`'s method.
#[macro_export]
macro_rules! export {
    ($ty:ident) => {
        #[doc(hidden)]
        struct __BssConnectorExport;

        impl $crate::connector::Guest for __BssConnectorExport {
            fn manifest() -> $crate::connector::ConnectorManifest {
                $crate::__enter();
                <$ty as $crate::connector::Guest>::manifest()
            }
            fn activate() -> $crate::Result<::std::string::String> {
                $crate::__enter();
                <$ty as $crate::connector::Guest>::activate()
            }
            fn lookup_choices(key: ::std::string::String) -> $crate::Result<::std::vec::Vec<$crate::connector::Choice>> {
                $crate::__enter();
                <$ty as $crate::connector::Guest>::lookup_choices(key)
            }
            fn push(
                entity: $crate::connector::Entity,
                records: ::std::vec::Vec<$crate::connector::PushItem>,
                options: $crate::connector::PushOptions,
            ) -> $crate::Result<::std::vec::Vec<$crate::Result<$crate::connector::Pushed>>> {
                $crate::__enter();
                <$ty as $crate::connector::Guest>::push(entity, records, options)
            }
            fn pull(
                entity: $crate::connector::Entity,
                since: ::std::option::Option<$crate::connector::Timestamp>,
                page_token: ::std::option::Option<::std::string::String>,
            ) -> $crate::Result<$crate::connector::PullPage> {
                $crate::__enter();
                <$ty as $crate::connector::Guest>::pull(entity, since, page_token)
            }
            fn fetch(
                entity: $crate::connector::Entity,
                remote_id: ::std::string::String,
            ) -> $crate::Result<::std::option::Option<$crate::connector::PulledRecord>> {
                $crate::__enter();
                <$ty as $crate::connector::Guest>::fetch(entity, remote_id)
            }
            fn subscribe(
                url: ::std::string::String,
                entities: ::std::vec::Vec<$crate::connector::Entity>,
            ) -> $crate::Result<::std::vec::Vec<$crate::connector::Subscription>> {
                $crate::__enter();
                <$ty as $crate::connector::Guest>::subscribe(url, entities)
            }
            fn remove(
                entity: $crate::connector::Entity,
                remote_ids: ::std::vec::Vec<::std::string::String>,
                options: $crate::connector::PushOptions,
            ) -> $crate::Result<::std::vec::Vec<$crate::Result<$crate::connector::Removal>>> {
                $crate::__enter();
                <$ty as $crate::connector::Guest>::remove(entity, remote_ids, options)
            }
        }

        $crate::__export_bindings!(__BssConnectorExport with_types_in $crate);
    };
}

/// Readies the instance at the start of every export call ([`export!`] calls it). In the lean
/// build, where a panic has no stderr to print to, the first call sets a panic hook that writes
/// the message to the host's log at error level: the host reports it with the trap. Elsewhere it
/// does nothing.
#[doc(hidden)]
pub fn __enter() {
    #[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
    {
        static REPORT_PANICS: std::sync::Once = std::sync::Once::new();
        REPORT_PANICS.call_once(|| {
            std::panic::set_hook(Box::new(|panic| {
                bss::integration::log::write(log::Level::Error, &panic.to_string());
            }));
        });
    }
}

pub use settings_reader::{Settings, read_settings, site_of};

/// The contract's types and the `connector` export's types, for `use bss_connector_sdk::prelude::*`.
pub mod prelude {
    pub use crate::bss::integration::types::{
        Account, Address, Contact, CustomField, Date, Decimal, FieldError, Invoice, Line,
        MissingReference, Order, Payment, Product, RemoteReference,
    };
    // Everything of the export: `Guest`, `ConnectorManifest`, `Pushed`, … and, as the contract
    // `use`s them, `Entity`, `Direction`, `Operations`, `Record`, `EntityData`, `Reference`,
    // `PulledRecord`, `ConnectorError`, `Timestamp`. (`Subscription` here is the callback
    // registration; the BSS subscription record is `bss_connector_sdk::types::Subscription`.)
    pub use crate::exports::bss::integration::connector::*;
    pub use crate::http::{Http, Method, Response};
    pub use crate::{
        Result, Settings, Value, each_item, field_error, json, log, lookups, read_settings,
    };
}

/// The contract's shared types (`bss:integration/types`).
pub use bss::integration::types;
/// The export's types and the `Guest` trait a connector implements.
pub use exports::bss::integration::connector;

pub use bss::integration::types::ConnectorError;
use bss::integration::types::{Entity, FieldError, MissingReference};

/// A result whose error is the contract's `connector-error`.
pub type Result<T, E = ConnectorError> = core::result::Result<T, E>;

/// A `field-error`.
pub fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Constructors for every `connector-error` variant.
impl ConnectorError {
    /// Settings are wrong: one `(field, message)` per problem key.
    pub fn invalid_settings(fields: impl IntoIterator<Item = FieldError>) -> Self {
        Self::InvalidSettings(fields.into_iter().collect())
    }
    /// One wrong setting.
    pub fn invalid_setting(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidSettings(vec![field_error(field, message)])
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::Unauthorized(message.into())
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden(message.into())
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }
    /// The remote rejected the record: one `field-error` per field.
    pub fn rejected(fields: impl IntoIterator<Item = FieldError>) -> Self {
        Self::Rejected(fields.into_iter().collect())
    }
    /// The remote rejected one field.
    pub fn rejected_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Rejected(vec![field_error(field, message)])
    }
    /// A referenced record has no remote id yet.
    pub fn missing_reference(
        field: impl Into<String>,
        entity: Entity,
        bss_id: impl Into<String>,
    ) -> Self {
        Self::MissingReference(MissingReference {
            field: field.into(),
            entity,
            bss_id: bss_id.into(),
        })
    }
    /// Retry after `ms` milliseconds, or when the host likes (`None`).
    pub fn rate_limited(ms: Option<u64>) -> Self {
        Self::RateLimited(ms)
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self::Transient(message.into())
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::Unsupported(message.into())
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// The variant's name as the contract spells it (`"rate-limited"`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidSettings(_) => "invalid-settings",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not-found",
            Self::Rejected(_) => "rejected",
            Self::MissingReference(_) => "missing-reference",
            Self::RateLimited(_) => "rate-limited",
            Self::Transient(_) => "transient",
            Self::Unsupported(_) => "unsupported",
            Self::Internal(_) => "internal",
        }
    }
}

impl Entity {
    /// The entity's name as the contract spells it (`"account"`); `{:?}` prints `Entity::Account`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Entity::Account => "account",
            Entity::Contact => "contact",
            Entity::Product => "product",
            Entity::Invoice => "invoice",
            Entity::Order => "order",
            Entity::Payment => "payment",
            Entity::Subscription => "subscription",
        }
    }
}

/// Runs `f` for each item and answers one result per item, in order. After a `rate-limited`
/// answer the remaining items are answered the same without being attempted (the host retries
/// them after the wait).
pub fn each_item<I, T>(
    items: impl IntoIterator<Item = I>,
    mut f: impl FnMut(I) -> Result<T>,
) -> Vec<Result<T>> {
    let mut out = Vec::new();
    let mut stop: Option<ConnectorError> = None;
    for item in items {
        if let Some(e) = &stop {
            out.push(Err(e.clone()));
            continue;
        }
        let result = f(item);
        if let Err(e @ ConnectorError::RateLimited(_)) = &result {
            stop = Some(e.clone());
        }
        out.push(result);
    }
    out
}

/// The host's log: `log::info("pushed")`, `log::debug(format_args!("pulled {n}"))`. A line the
/// host would drop is not even formatted (`format_args!` is lazy).
pub mod log {
    use crate::bss::integration::log as host;
    use core::fmt::Display;
    pub use host::Level;

    /// Whether a line at `level` would be kept.
    pub fn enabled(level: Level) -> bool {
        host::enabled(level)
    }
    /// Writes a line at `level` if the host keeps it.
    pub fn write(level: Level, message: impl Display) {
        if host::enabled(level) {
            host::write(level, &message.to_string());
        }
    }
    pub fn trace(message: impl Display) {
        write(Level::Trace, message)
    }
    pub fn debug(message: impl Display) {
        write(Level::Debug, message)
    }
    pub fn info(message: impl Display) {
        write(Level::Info, message)
    }
    pub fn warn(message: impl Display) {
        write(Level::Warn, message)
    }
    pub fn error(message: impl Display) {
        write(Level::Error, message)
    }
}

/// The instance's lookup tables (`bss:integration/settings`).
pub mod lookups {
    use crate::bss::integration::settings as host;
    pub use host::LookupEntry;

    /// The remote value a BSS value maps to in lookup `key`.
    pub fn lookup(key: &str, bss_value: &str) -> Option<String> {
        host::lookup(key, bss_value)
    }
    /// The BSS value a remote value maps back to in lookup `key`.
    pub fn reverse_lookup(key: &str, remote_value: &str) -> Option<String> {
        host::reverse_lookup(key, remote_value)
    }
    /// The whole table `key`.
    pub fn table(key: &str) -> Vec<LookupEntry> {
        host::lookup_table(key)
    }
}
