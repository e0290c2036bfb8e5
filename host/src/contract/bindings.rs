//! Host-side bindings generated from `wit/`, the newest contract (`bss:integration@1.4.0`, world
//! `plugin`), with one submodule per older minor still served (`v1_0` … `v1_3`), each converting
//! to these types at its edge (1.2 and 1.3 share 1.3's manifest and need no other conversion: see
//! `v1_2`, `v1_3`).
//!
//! Every import is async so that a host call (an HTTP request) can be cancelled by the call
//! deadline; every export is async so that epoch interruption can yield to tokio.

pub mod v1_0;
pub mod v1_1;
pub mod v1_2;
pub mod v1_3;

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use bss::integration::{http, log, settings, types};
pub use exports::bss::integration::connector;

/// `operations` flags as the list of their names (wasmtime's flags type has no serde of its own).
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

/// The SHA-256 of a frozen contract folder's files (`wit/<version>/`), for the tests that keep
/// each released minor unchanged.
#[cfg(test)]
pub(crate) fn frozen_hash(version: &str) -> String {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../wit/{version}"));
    let mut hash = Sha256::new();
    for file in ["connector", "http", "log", "settings", "types", "world"] {
        hash.update(std::fs::read(dir.join(format!("{file}.wit"))).unwrap());
    }
    format!("{:x}", hash.finalize())
}
