//! The host's own copy of a connector's manifest, converted from the generated bindings at the edge
//! (so later contract versions convert into the same type) and validated before the connector takes
//! any traffic: a manifest the host cannot act on is refused with every problem named.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::bindings::{connector as wit, types as wit_types};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entity {
    Account,
    Contact,
    Product,
    Invoice,
    Order,
    Payment,
    Subscription,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Push,
    Pull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariableKind {
    Text,
    Secret,
    Url,
    Integer,
    Choice,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Choice {
    pub value: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServerVariable {
    pub key: String,
    pub label: String,
    pub purpose: String,
    pub description: String,
    pub kind: VariableKind,
    pub choices: Vec<Choice>,
    pub required: bool,
    /// Also required while one of these is enabled in the instance's sync options.
    #[serde(default)]
    pub required_when: Vec<(Entity, Direction)>,
    pub default_value: Option<String>,
    pub choices_from: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Operations {
    pub create: bool,
    pub update: bool,
    pub delete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncOption {
    pub entity: Entity,
    pub direction: Direction,
    pub operations: Operations,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Lookup {
    pub key: String,
    pub label: String,
    pub entity: Entity,
    pub directions: Vec<Direction>,
    pub bss_field: String,
    pub remote_field: String,
    pub choices_from: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum AuthScheme {
    None,
    Basic { username: String, password: String },
    Bearer { token: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Auth {
    pub scheme: AuthScheme,
    /// (header name, value template)
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub description: String,
    pub server_variables: Vec<ServerVariable>,
    pub sync_options: Vec<SyncOption>,
    pub lookups: Vec<Lookup>,
    pub auth: Auth,
    pub remote_host_variable: String,
    /// Where an admin reads how to set the connector up (contract 1.1; none from a 1.0 connector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    /// The remote hosts it will ever call (contract 1.4; `super::reach`); empty: any.
    #[serde(default)]
    pub reach: Vec<String>,
}

/// Every problem found in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ManifestError {
    pub problems: Vec<String>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the connector's manifest is invalid: {}",
            self.problems.join("; ")
        )
    }
}

impl From<wit_types::Entity> for Entity {
    fn from(e: wit_types::Entity) -> Self {
        use wit_types::Entity as W;
        match e {
            W::Account => Entity::Account,
            W::Contact => Entity::Contact,
            W::Product => Entity::Product,
            W::Invoice => Entity::Invoice,
            W::Order => Entity::Order,
            W::Payment => Entity::Payment,
            W::Subscription => Entity::Subscription,
        }
    }
}

impl From<Entity> for wit_types::Entity {
    fn from(e: Entity) -> Self {
        use wit_types::Entity as W;
        match e {
            Entity::Account => W::Account,
            Entity::Contact => W::Contact,
            Entity::Product => W::Product,
            Entity::Invoice => W::Invoice,
            Entity::Order => W::Order,
            Entity::Payment => W::Payment,
            Entity::Subscription => W::Subscription,
        }
    }
}

impl Entity {
    /// Every entity, in the order a full push respects references (a record's references first).
    pub const DEPENDENCY_ORDER: [Entity; 7] = [
        Entity::Account,
        Entity::Contact,
        Entity::Product,
        Entity::Invoice,
        Entity::Order,
        Entity::Payment,
        Entity::Subscription,
    ];

    /// The entity's one spelling: in commands, files, the store and the API.
    pub fn as_str(self) -> &'static str {
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

/// An entity name that is not one; says which are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not an entity (account, contact, product, invoice, order, payment, subscription)"
)]
pub struct UnknownEntity(pub String);

impl std::str::FromStr for Entity {
    type Err = UnknownEntity;

    /// Parses [`Entity::as_str`]'s spelling, ignoring case and surrounding spaces.
    fn from_str(text: &str) -> Result<Entity, UnknownEntity> {
        let wanted = text.trim().to_ascii_lowercase();
        Entity::DEPENDENCY_ORDER
            .into_iter()
            .find(|e| e.as_str() == wanted)
            .ok_or_else(|| UnknownEntity(text.to_string()))
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Direction {
    pub const ALL: [Direction; 2] = [Direction::Push, Direction::Pull];

    /// The direction's one spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Push => "push",
            Direction::Pull => "pull",
        }
    }
}

/// A direction name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a direction (push or pull)")]
pub struct UnknownDirection(pub String);

impl std::str::FromStr for Direction {
    type Err = UnknownDirection;

    fn from_str(text: &str) -> Result<Direction, UnknownDirection> {
        let wanted = text.trim().to_ascii_lowercase();
        Direction::ALL
            .into_iter()
            .find(|d| d.as_str() == wanted)
            .ok_or_else(|| UnknownDirection(text.to_string()))
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<wit_types::Direction> for Direction {
    fn from(d: wit_types::Direction) -> Self {
        match d {
            wit_types::Direction::Push => Direction::Push,
            wit_types::Direction::Pull => Direction::Pull,
        }
    }
}

impl From<wit::ConnectorManifest> for Manifest {
    fn from(m: wit::ConnectorManifest) -> Self {
        Manifest {
            name: m.name,
            version: m.version,
            description: m.description,
            server_variables: m
                .server_variables
                .into_iter()
                .map(|v| ServerVariable {
                    key: v.key,
                    label: v.label,
                    purpose: v.purpose,
                    description: v.description,
                    kind: match v.kind {
                        wit::VariableKind::Text => VariableKind::Text,
                        wit::VariableKind::Secret => VariableKind::Secret,
                        wit::VariableKind::Url => VariableKind::Url,
                        wit::VariableKind::Integer => VariableKind::Integer,
                        wit::VariableKind::Choice => VariableKind::Choice,
                    },
                    choices: v
                        .choices
                        .into_iter()
                        .map(|c| Choice {
                            value: c.value,
                            label: c.label,
                        })
                        .collect(),
                    required: v.required,
                    required_when: v
                        .required_when
                        .into_iter()
                        .map(|(entity, direction)| (entity.into(), direction.into()))
                        .collect(),
                    default_value: v.default_value,
                    choices_from: v.choices_from,
                })
                .collect(),
            sync_options: m
                .sync_options
                .into_iter()
                .map(|o| SyncOption {
                    entity: o.entity.into(),
                    direction: o.direction.into(),
                    operations: Operations {
                        create: o.operations.contains(wit_types::Operations::CREATE),
                        update: o.operations.contains(wit_types::Operations::UPDATE),
                        delete: o.operations.contains(wit_types::Operations::DELETE),
                    },
                })
                .collect(),
            lookups: m
                .lookups
                .into_iter()
                .map(|l| Lookup {
                    key: l.key,
                    label: l.label,
                    entity: l.entity.into(),
                    directions: l.directions.into_iter().map(Direction::from).collect(),
                    bss_field: l.bss_field,
                    remote_field: l.remote_field,
                    choices_from: l.choices_from,
                })
                .collect(),
            auth: Auth {
                scheme: match m.auth.scheme {
                    wit::AuthScheme::None => AuthScheme::None,
                    wit::AuthScheme::Basic((username, password)) => {
                        AuthScheme::Basic { username, password }
                    }
                    wit::AuthScheme::Bearer(token) => AuthScheme::Bearer { token },
                },
                headers: m
                    .auth
                    .headers
                    .into_iter()
                    .map(|h| (h.name, h.value))
                    .collect(),
            },
            remote_host_variable: m.remote_host_variable,
            documentation_url: m.documentation_url,
            reach: m.reach,
        }
    }
}

fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The `{key}` placeholders of a credential template, or why it is malformed.
pub fn template_keys(template: &str) -> Result<Vec<&str>, String> {
    let mut keys = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest.as_bytes()[open] == b'}' {
            return Err(format!("template {template:?} has a '}}' without '{{'"));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("template {template:?} has an unclosed '{{'"))?;
        keys.push(&after[..close]);
        rest = &after[close + 1..];
    }
    Ok(keys)
}

impl Manifest {
    pub fn variable(&self, key: &str) -> Option<&ServerVariable> {
        self.server_variables.iter().find(|v| v.key == key)
    }

    /// The declared reach, parsed (a loaded manifest's always parses: `validate` checked it).
    pub fn reach(&self) -> Result<super::reach::Reach, Vec<String>> {
        super::reach::Reach::parse(&self.reach)
    }

    /// Checks everything the host relies on; lists every problem, not just the first.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut problems = Vec::new();
        if !is_kebab(&self.name) {
            problems.push(format!(
                "name {:?} must be lower-kebab-case (a-z, 0-9, '-'), at most 64 characters",
                self.name
            ));
        }
        if !is_semver(&self.version) {
            problems.push(format!(
                "version {:?} must be a semantic version such as 1.2.0",
                self.version
            ));
        }
        let mut keys = BTreeSet::new();
        for variable in &self.server_variables {
            let key = &variable.key;
            if !is_kebab(key) {
                problems.push(format!(
                    "server variable key {key:?} must be lower-kebab-case"
                ));
            }
            if !keys.insert(key.as_str()) {
                problems.push(format!("server variable {key:?} is declared twice"));
            }
            // Whether a default suits its kind is the settings parser's to say
            // (`capabilities::settings::default_problems`, checked when a connector loads).
            if variable.kind == VariableKind::Secret && variable.default_value.is_some() {
                problems.push(format!(
                    "server variable {key:?} is a secret and cannot have a default"
                ));
            }
            if variable.kind == VariableKind::Choice && variable.choices.is_empty() {
                problems.push(format!(
                    "server variable {key:?} is a choice but lists no choices"
                ));
            }
        }
        let mut lookup_keys = BTreeSet::new();
        for lookup in &self.lookups {
            if !is_kebab(&lookup.key) {
                problems.push(format!(
                    "lookup key {:?} must be lower-kebab-case",
                    lookup.key
                ));
            }
            if !lookup_keys.insert(lookup.key.as_str()) {
                problems.push(format!("lookup {:?} is declared twice", lookup.key));
            }
        }
        let mut options = BTreeSet::new();
        for option in &self.sync_options {
            if !options.insert((option.entity, option.direction)) {
                problems.push(format!(
                    "sync option {:?}/{:?} is declared twice",
                    option.entity, option.direction
                ));
            }
        }
        let mut templates: Vec<&str> = self.auth.headers.iter().map(|(_, v)| v.as_str()).collect();
        match &self.auth.scheme {
            AuthScheme::None => {}
            AuthScheme::Basic { username, password } => {
                templates.extend([username.as_str(), password.as_str()])
            }
            AuthScheme::Bearer { token } => templates.push(token),
        }
        for template in templates {
            match template_keys(template) {
                Ok(found) => {
                    for key in found {
                        if self.variable(key).is_none() {
                            problems.push(format!("credential template {template:?} names {key:?}, which is not a server variable"));
                        }
                    }
                }
                Err(problem) => problems.push(problem),
            }
        }
        for (name, _) in &self.auth.headers {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                problems.push(format!(
                    "credential header name {name:?} is not a valid HTTP header name"
                ));
            }
        }
        let needs_host = self.auth.scheme != AuthScheme::None || !self.auth.headers.is_empty();
        match self.variable(&self.remote_host_variable) {
            Some(v) if v.kind == VariableKind::Url => {}
            Some(_) => problems.push(format!(
                "remote-host-variable {:?} must name a server variable of kind url",
                self.remote_host_variable
            )),
            None if needs_host || !self.remote_host_variable.is_empty() => problems.push(format!(
                "remote-host-variable {:?} must name the url server variable that holds the remote host",
                self.remote_host_variable
            )),
            None => {}
        }
        if let Err(bad) = super::reach::Reach::parse(&self.reach) {
            problems.extend(bad);
        }
        if let Some(link) = &self.documentation_url {
            let https = url::Url::parse(link).is_ok_and(|u| u.scheme() == "https" && u.has_host());
            if !https {
                problems.push(format!(
                    "documentation-url {link:?} must be an absolute https URL (or none)"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestError { problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variable(key: &str, kind: VariableKind) -> ServerVariable {
        ServerVariable {
            key: key.into(),
            label: key.into(),
            purpose: String::new(),
            description: String::new(),
            kind,
            choices: vec![],
            required: true,
            required_when: vec![],
            default_value: None,
            choices_from: None,
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            name: "acme".into(),
            version: "1.0.0".into(),
            description: String::new(),
            server_variables: vec![
                variable("url", VariableKind::Url),
                variable("key", VariableKind::Secret),
            ],
            sync_options: vec![],
            lookups: vec![],
            auth: Auth {
                scheme: AuthScheme::Bearer {
                    token: "{key}".into(),
                },
                headers: vec![("x-id".into(), "id-{url}".into())],
            },
            remote_host_variable: "url".into(),
            documentation_url: Some("https://docs.example.com/acme".into()),
            reach: vec!["*.acme.example".into()],
        }
    }

    #[test]
    fn a_sound_manifest_passes() {
        manifest().validate().unwrap();
    }

    #[test]
    fn every_problem_is_named() {
        let mut m = manifest();
        m.name = "Acme Corp".into();
        m.version = "one".into();
        m.server_variables.push(variable("url", VariableKind::Text));
        m.auth.scheme = AuthScheme::Basic {
            username: "{nobody}".into(),
            password: "{key".into(),
        };
        m.remote_host_variable = "key".into();
        m.documentation_url = Some("javascript:alert(1)".into());
        m.reach = vec!["*".into(), "api.example.com".into()];
        let problems = m.validate().unwrap_err().problems;
        let text = problems.join("\n");
        for expected in [
            "name \"Acme Corp\"",
            "version \"one\"",
            "\"url\" is declared twice",
            "names \"nobody\"",
            "unclosed",
            "must name a server variable of kind url",
            "documentation-url \"javascript:alert(1)\" must be an absolute https URL",
            "reach \"*\": a wildcard may only be the first label",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn templates_list_their_keys() {
        assert_eq!(
            template_keys("{company-id}+{public-key}").unwrap(),
            vec!["company-id", "public-key"]
        );
        assert_eq!(template_keys("plain").unwrap(), Vec::<&str>::new());
        assert!(template_keys("a}b").is_err());
    }
}
