//! Connectors built against `bss:integration@1.3.0` (the frozen copy in `wit/1.3.0`), and 1.2
//! ones, whose manifest is the same record.
//!
//! 1.4 only added `connector-manifest.reach`; every other type a 1.3 function takes or returns is
//! the same in 1.4, field for field, and the component model checks types by structure, so only
//! `manifest` goes through this minor's own type (`runtime::exports`). A 1.3 manifest declares no
//! reach: any host, as it was.

use super::connector as latest;

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit/1.3.0",
    imports: { default: async },
    exports: { default: async },
    with: {
        "bss:integration/types": super::types,
        "bss:integration/http": super::http,
        "bss:integration/settings": super::settings,
        "bss:integration/log": super::log,
    },
    additional_derives: [serde::Serialize, serde::Deserialize],
});

pub use exports::bss::integration::connector::ConnectorManifest;

/// The manifest differs from 1.4's only by `reach` (none declared: any host), and is read once
/// per component, so it crosses through its serialised form rather than field by field (as 1.1's
/// does).
impl TryFrom<ConnectorManifest> for latest::ConnectorManifest {
    type Error = String;

    fn try_from(m: ConnectorManifest) -> Result<Self, String> {
        let mut value = serde_json::to_value(m).map_err(|e| e.to_string())?;
        if let Some(manifest) = value.as_object_mut() {
            manifest.insert("reach".into(), serde_json::json!([]));
        }
        serde_json::from_value(value)
            .map_err(|e| format!("a 1.3 manifest did not convert to 1.4: {e}"))
    }
}

#[cfg(test)]
mod tests {
    /// A released contract is frozen: connectors built against it are in the field.
    #[test]
    fn the_released_1_3_contract_is_unchanged() {
        assert_eq!(
            super::super::frozen_hash("1.3.0"),
            "611e1bf284ce61a2db76268b58ee589e4ffb06599c4bf3684ef4c936de30ac6f",
            "wit/1.3.0 was edited; restore it and change the newest contract in wit/ instead"
        );
    }
}
