//! Bindings for connectors built against `bss:integration@1.1.0` (the frozen copy in `wit/1.1.0`),
//! converted to the newest contract's types at this edge.
//!
//! 1.2 changed only the exported `connector` interface: `push` takes push items (a record with
//! what was last pushed for it), its options say the conflict policy, and `pushed` gained
//! `overwritten` and `stored`. A 1.1 connector gets the bare records, and its answers read as "no
//! overwritten value reported, no stored copy": the host then recognises no echoes of its pushes,
//! and the connector keeps its own (two-way) update rule.

use super::connector as latest;

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit/1.1.0",
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

use exports::bss::integration::connector as v1_1;

/// The manifest differs from 1.4's only by `server-variable.required-when` (which 1.1 has not:
/// none) and `reach` (none declared: any host), and is read once per component, so it crosses through its serialised form rather than
/// field by field.
impl TryFrom<v1_1::ConnectorManifest> for latest::ConnectorManifest {
    type Error = String;

    fn try_from(m: v1_1::ConnectorManifest) -> Result<Self, String> {
        let mut value = serde_json::to_value(m).map_err(|e| e.to_string())?;
        if let Some(variables) = value
            .get_mut("server_variables")
            .and_then(serde_json::Value::as_array_mut)
        {
            for variable in variables.iter_mut().filter_map(|v| v.as_object_mut()) {
                variable.insert("required_when".into(), serde_json::json!([]));
            }
        }
        // 1.4's reach: none declared, any host (as it was).
        if let Some(manifest) = value.as_object_mut() {
            manifest.insert("reach".into(), serde_json::json!([]));
        }
        serde_json::from_value(value)
            .map_err(|e| format!("a 1.1 manifest did not convert to 1.4: {e}"))
    }
}

impl From<v1_1::Choice> for latest::Choice {
    fn from(c: v1_1::Choice) -> Self {
        latest::Choice {
            value: c.value,
            label: c.label,
        }
    }
}

impl From<v1_1::Pushed> for latest::Pushed {
    fn from(p: v1_1::Pushed) -> Self {
        latest::Pushed {
            change: match p.change {
                v1_1::Change::Created => latest::Change::Created,
                v1_1::Change::Updated => latest::Change::Updated,
                v1_1::Change::Unchanged => latest::Change::Unchanged,
            },
            remote_id: p.remote_id,
            overwritten: Vec::new(),
            stored: None,
            warnings: Vec::new(),
        }
    }
}

impl From<v1_1::PullPage> for latest::PullPage {
    fn from(p: v1_1::PullPage) -> Self {
        latest::PullPage {
            records: p.records,
            next_page_token: p.next_page_token,
        }
    }
}

impl From<latest::PushOptions> for v1_1::PushOptions {
    fn from(o: latest::PushOptions) -> Self {
        v1_1::PushOptions { dry_run: o.dry_run }
    }
}

#[cfg(test)]
mod tests {
    /// A released contract is frozen: connectors built against it are in the field.
    #[test]
    fn the_released_1_1_contract_is_unchanged() {
        assert_eq!(
            super::super::frozen_hash("1.1.0"),
            "f8288f6fd0b98b16c179b9c5514581c59f12b55c563a7f0cb9cbed434cf8520c",
            "wit/1.1.0 was edited; restore it and change the newest contract in wit/ instead"
        );
    }
}
