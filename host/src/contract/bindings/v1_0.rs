//! Bindings for connectors built against `bss:integration@1.0.0` (the frozen copy in `wit/1.0.0`),
//! converted to the newest contract's types at this edge so nothing past the runtime knows which
//! minor a connector speaks.
//!
//! Only the exported `connector` interface differs (1.1 added `documentation-url` to the
//! manifest), so every other interface is mapped onto the newest bindings with `with`. Imports need
//! no code here: the one linker defines the newest `@1.4.0` interfaces, and wasmtime resolves a
//! 1.0 component's `@1.0.0` imports to them by semver (a minor only adds functions).

use super::connector as latest;

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit/1.0.0",
    imports: { default: async },
    exports: { default: async },
    with: {
        "bss:integration/types": super::types,
        "bss:integration/http": super::http,
        "bss:integration/settings": super::settings,
        "bss:integration/log": super::log,
    },
});

use exports::bss::integration::connector as v1_0;

impl From<v1_0::ConnectorManifest> for latest::ConnectorManifest {
    fn from(m: v1_0::ConnectorManifest) -> Self {
        latest::ConnectorManifest {
            name: m.name,
            version: m.version,
            description: m.description,
            server_variables: m.server_variables.into_iter().map(Into::into).collect(),
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
                    v1_0::AuthScheme::None => latest::AuthScheme::None,
                    v1_0::AuthScheme::Basic(pair) => latest::AuthScheme::Basic(pair),
                    v1_0::AuthScheme::Bearer(token) => latest::AuthScheme::Bearer(token),
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
            documentation_url: None,
            reach: Vec::new(),
        }
    }
}

impl From<v1_0::ServerVariable> for latest::ServerVariable {
    fn from(v: v1_0::ServerVariable) -> Self {
        latest::ServerVariable {
            key: v.key,
            label: v.label,
            purpose: v.purpose,
            description: v.description,
            kind: match v.kind {
                v1_0::VariableKind::Text => latest::VariableKind::Text,
                v1_0::VariableKind::Secret => latest::VariableKind::Secret,
                v1_0::VariableKind::Url => latest::VariableKind::Url,
                v1_0::VariableKind::Integer => latest::VariableKind::Integer,
                v1_0::VariableKind::Choice => latest::VariableKind::Choice,
            },
            choices: v.choices.into_iter().map(Into::into).collect(),
            required: v.required,
            required_when: Vec::new(),
            default_value: v.default_value,
            choices_from: v.choices_from,
        }
    }
}

impl From<v1_0::Choice> for latest::Choice {
    fn from(c: v1_0::Choice) -> Self {
        latest::Choice {
            value: c.value,
            label: c.label,
        }
    }
}

impl From<v1_0::Pushed> for latest::Pushed {
    fn from(p: v1_0::Pushed) -> Self {
        latest::Pushed {
            change: match p.change {
                v1_0::Change::Created => latest::Change::Created,
                v1_0::Change::Updated => latest::Change::Updated,
                v1_0::Change::Unchanged => latest::Change::Unchanged,
            },
            remote_id: p.remote_id,
            overwritten: Vec::new(),
            stored: None,
            warnings: Vec::new(),
        }
    }
}

impl From<v1_0::PullPage> for latest::PullPage {
    fn from(p: v1_0::PullPage) -> Self {
        latest::PullPage {
            records: p.records,
            next_page_token: p.next_page_token,
        }
    }
}

impl From<latest::PushOptions> for v1_0::PushOptions {
    fn from(o: latest::PushOptions) -> Self {
        v1_0::PushOptions { dry_run: o.dry_run }
    }
}

#[cfg(test)]
mod tests {
    /// A released contract is frozen: connectors built against it are in the field.
    #[test]
    fn the_released_1_0_contract_is_unchanged() {
        assert_eq!(
            super::super::frozen_hash("1.0.0"),
            "ec011f49c27498ef60368bd85d2113ea71d8858c6935e7d843912835a6bed928",
            "wit/1.0.0 was edited; restore it and change the newest contract in wit/ instead"
        );
    }
}
