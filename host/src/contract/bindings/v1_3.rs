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

impl From<ConnectorManifest> for latest::ConnectorManifest {
    fn from(m: ConnectorManifest) -> Self {
        latest::ConnectorManifest {
            name: m.name,
            version: m.version,
            description: m.description,
            server_variables: m
                .server_variables
                .into_iter()
                .map(|v| latest::ServerVariable {
                    key: v.key,
                    label: v.label,
                    purpose: v.purpose,
                    description: v.description,
                    kind: match v.kind {
                        exports::bss::integration::connector::VariableKind::Text => {
                            latest::VariableKind::Text
                        }
                        exports::bss::integration::connector::VariableKind::Secret => {
                            latest::VariableKind::Secret
                        }
                        exports::bss::integration::connector::VariableKind::Url => {
                            latest::VariableKind::Url
                        }
                        exports::bss::integration::connector::VariableKind::Integer => {
                            latest::VariableKind::Integer
                        }
                        exports::bss::integration::connector::VariableKind::Choice => {
                            latest::VariableKind::Choice
                        }
                    },
                    choices: v
                        .choices
                        .into_iter()
                        .map(|c| latest::Choice {
                            value: c.value,
                            label: c.label,
                        })
                        .collect(),
                    required: v.required,
                    default_value: v.default_value,
                    choices_from: v.choices_from,
                    required_when: v.required_when,
                })
                .collect(),
            sync_options: m
                .sync_options
                .into_iter()
                .map(|o| latest::SyncOption {
                    entity: o.entity,
                    direction: o.direction,
                    operations: o.operations,
                })
                .collect(),
            lookups: m
                .lookups
                .into_iter()
                .map(|l| latest::Lookup {
                    key: l.key,
                    label: l.label,
                    entity: l.entity,
                    directions: l.directions,
                    bss_field: l.bss_field,
                    remote_field: l.remote_field,
                    choices_from: l.choices_from,
                })
                .collect(),
            auth: latest::Auth {
                scheme: match m.auth.scheme {
                    exports::bss::integration::connector::AuthScheme::None => {
                        latest::AuthScheme::None
                    }
                    exports::bss::integration::connector::AuthScheme::Basic(pair) => {
                        latest::AuthScheme::Basic(pair)
                    }
                    exports::bss::integration::connector::AuthScheme::Bearer(token) => {
                        latest::AuthScheme::Bearer(token)
                    }
                },
                headers: m
                    .auth
                    .headers
                    .into_iter()
                    .map(|h| latest::HeaderTemplate {
                        name: h.name,
                        value: h.value,
                    })
                    .collect(),
            },
            remote_host_variable: m.remote_host_variable,
            documentation_url: m.documentation_url,
            reach: Vec::new(),
        }
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
