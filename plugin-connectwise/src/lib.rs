//! The ConnectWise Manage connector.
//!
//! The logic is plain Rust over the [`host::Host`] trait (outbound HTTP, settings, lookups, log),
//! so it builds and is tested natively and serves as the native baseline in benchmarks; on
//! wasm32-wasip2 `component` is the thin shim that exports it as a `bss:integration@1.3.0`
//! component (contract 1.3: `fetch`, `subscribe` and `remove` besides push and pull), with the
//! host's imports behind the trait.
//!
//! | module | owns |
//! |---|---|
//! | `manifest` | server variables, sync options, lookups and authentication the connector declares |
//! | `settings` | the typed view of the instance's settings |
//! | `client` | ConnectWise REST calls: URLs, paging, conditions, errors |
//! | `activate`, `choices` | settings checks against the remote; the values an admin picks from |
//! | `fields` | conversions of values between the BSS and ConnectWise, and change detection |
//! | `custom` | `extra` entries ↔ ConnectWise custom fields: the mapping rule, typed values, merging on update |
//! | `accounts`, `contacts` | push, pull, fetch and removal of accounts (companies) and contacts |
//! | `products`, `invoices`, `orders`, `lines`, `payments`, `subscriptions` | push of the other entities |
//! | `reconcile` | finding what a create with an unknown outcome made; identity-conflict errors |
//! | `push_context` | what pushing one record needs: the call's context, resolved references, rejections, the three-way update tail |
//! | `paging` | reading ConnectWise forward from the host's cursor |
//! | `callbacks` | the ConnectWise callbacks to the host's hook URL, one per subscribed entity |
//! | `connector` | the entry points the component exports (no entity module imports it) |
//! | `fake` (tests only) | a fake ConnectWise behind `Host` for the unit tests |

pub mod accounts;
pub mod activate;
pub mod callbacks;
pub mod choices;
pub mod client;
pub mod connector;
pub mod contacts;
pub mod custom;
pub mod fields;
pub mod host;
pub mod invoices;
pub mod lines;
pub mod manifest;
pub mod orders;
pub mod paging;
pub mod payments;
pub mod products;
pub mod push_context;
pub mod reconcile;
pub mod settings;
pub mod subscriptions;

#[cfg(test)]
mod fake;

/// Types generated from `wit/` (world `plugin`).
pub mod wit {
    wit_bindgen::generate!({
        world: "plugin",
        path: "../wit",
        additional_derives: [PartialEq, serde::Serialize, serde::Deserialize],
    });
}

pub use wit::bss::integration::types;

/// `operations` flags as the list of their names (wit-bindgen puts no derives on flags), so every
/// generated type serialises the same way the host's do.
impl serde::Serialize for types::Operations {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let names: Vec<&str> = [
            (types::Operations::CREATE, "create"),
            (types::Operations::UPDATE, "update"),
            (types::Operations::DELETE, "delete"),
        ]
        .into_iter()
        .filter(|(flag, _)| self.contains(*flag))
        .map(|(_, name)| name)
        .collect();
        serde::Serialize::serialize(&names, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for types::Operations {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names: Vec<String> = serde::Deserialize::deserialize(deserializer)?;
        let mut operations = types::Operations::empty();
        for name in names {
            operations |= match name.as_str() {
                "create" => types::Operations::CREATE,
                "update" => types::Operations::UPDATE,
                "delete" => types::Operations::DELETE,
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "{other:?} is not an operation"
                    )));
                }
            };
        }
        Ok(operations)
    }
}
pub use wit::exports::bss::integration::connector as exports;

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod arena;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[global_allocator]
static ALLOCATOR: arena::ArenaFirst = arena::ArenaFirst::new();
