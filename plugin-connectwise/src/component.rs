//! Exports `core` as a `bss:integration@1.0.0` component.

wit_bindgen::generate!({
    world: "plugin",
    path: "../wit",
});

use crate::core;
use bss::integration::types::{ConnectorError, Entity, Record};
use exports::bss::integration::connector::{
    Auth, AuthScheme, Choice, ConnectorManifest, Guest, PullPage, PushOptions, Pushed,
};

struct ConnectWise;

impl Guest for ConnectWise {
    fn manifest() -> ConnectorManifest {
        ConnectorManifest {
            name: core::NAME.to_string(),
            version: core::VERSION.to_string(),
            description: "ConnectWise Manage (PSA)".to_string(),
            server_variables: Vec::new(),
            sync_options: Vec::new(),
            lookups: Vec::new(),
            auth: Auth {
                scheme: AuthScheme::None,
                headers: Vec::new(),
            },
            remote_host_variable: String::new(),
        }
    }

    fn activate() -> Result<String, ConnectorError> {
        Err(ConnectorError::Unsupported(core::not_yet("activation")))
    }

    fn lookup_choices(key: String) -> Result<Vec<Choice>, ConnectorError> {
        Err(ConnectorError::Unsupported(core::not_yet(&format!(
            "lookup {key}"
        ))))
    }

    fn push(
        _entity: Entity,
        _records: Vec<Record>,
        _options: PushOptions,
    ) -> Result<Vec<Result<Pushed, ConnectorError>>, ConnectorError> {
        Err(ConnectorError::Unsupported(core::not_yet("push")))
    }

    fn pull(
        _entity: Entity,
        _since: Option<String>,
        _page_token: Option<String>,
    ) -> Result<PullPage, ConnectorError> {
        Err(ConnectorError::Unsupported(core::not_yet("pull")))
    }
}

export!(ConnectWise);
