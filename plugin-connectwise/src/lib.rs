//! The ConnectWise Manage connector.
//!
//! The logic is plain Rust over the [`host::Host`] trait (outbound HTTP, settings, lookups, log),
//! so it builds and is tested natively and serves as the native baseline in benchmarks; on
//! wasm32-wasip2 `component` is the thin shim that exports it as a `bss:integration@1.0.0`
//! component, with the host's imports behind the trait.
//!
//! | module | owns |
//! |---|---|
//! | `manifest` | server variables, sync options, lookups and authentication the connector declares |
//! | `settings` | the typed view of the instance's settings |
//! | `client` | ConnectWise REST calls: URLs, paging, conditions, errors |
//! | `activate`, `choices` | settings checks against the remote; the values an admin picks from |
//! | `fields` | conversions of values between the BSS and ConnectWise, and change detection |
//! | `accounts`, `contacts` | push and pull of accounts (companies) and contacts |
//! | `products`, `invoices`, `orders`, `lines`, `payments`, `subscriptions` | push of the other entities |
//! | `connector` | the entry points the component exports |

pub mod accounts;
pub mod activate;
pub mod choices;
pub mod client;
pub mod connector;
pub mod contacts;
pub mod fields;
pub mod host;
pub mod invoices;
pub mod lines;
pub mod manifest;
pub mod orders;
pub mod payments;
pub mod products;
pub mod settings;
pub mod subscriptions;

/// Types generated from `wit/` (world `plugin`).
pub mod wit {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../wit",
        additional_derives: [PartialEq],
    });
}

pub use wit::bss::integration::types;
pub use wit::exports::bss::integration::connector as exports;

#[cfg(target_arch = "wasm32")]
mod component;
