//! Which connector components may load: the trust decision the registry makes before a file's
//! code runs (its signature, and whether the signer is on the trust list at all) and after its
//! manifest is read (whether the signer is trusted for that connector name).
//!
//! | the file | default | with `--allow-unsigned` |
//! |---|---|---|
//! | bundled in the binary | loads (the host's own build) | loads |
//! | signed by a listed key whose patterns match its name | loads | loads |
//! | signed by a listed key, for another name | refused, naming the key and its patterns | refused |
//! | signed by a key not on the list | refused, naming the key id | loads as unsigned, naming the key |
//! | signature does not match its bytes | refused as tampered | refused |
//! | unsigned | refused, saying how to sign or allow | loads, listed as unsigned |
//!
//! A connector name stays with the key that published it: once versions of a name were signed by a
//! listed key, another key (or an unsigned file) may publish it only when the trust list names it
//! for that key exactly; removing the first key frees the name.
//!
//! A key's connector names are patterns (`acme-*`, `crm,billing`; `*` is any run of characters).
//! The names of the bundled connectors are the host's: a pattern grants one only when it names it
//! exactly, so a vendor trusted for `*` still cannot publish a newer `connectwise`. The bundled
//! bytes are trusted because they are inside the binary (whoever can change them can change the
//! code that would check them); they are listed as signed by the host.

use crate::registry::signature;
use crate::store::trust_store::TrustedKey;

/// The names of the connectors bundled in the host, which only an exact pattern grants.
pub const BUNDLED_NAMES: &[&str] = &["connectwise"];

/// Where a loaded version came from, as far as trust goes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    tag = "kind"
)]
pub enum Provenance {
    /// Inside the host's binary.
    Bundled,
    /// Signed by a key on the trust list.
    Signed { key: String, key_id: String },
    /// Unsigned, or signed by a key not on the trust list (`untrusted_key`), loaded because
    /// unsigned connectors are allowed.
    Unsigned { untrusted_key: Option<String> },
}

impl Provenance {
    /// The signer's key id, as the store records it.
    pub fn key_id(&self) -> Option<String> {
        match self {
            Provenance::Signed { key_id, .. } => Some(key_id.clone()),
            Provenance::Bundled | Provenance::Unsigned { .. } => None,
        }
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Provenance::Bundled => f.write_str("the host (bundled)"),
            Provenance::Signed { key, key_id } => write!(f, "{key} (key {key_id})"),
            Provenance::Unsigned {
                untrusted_key: None,
            } => f.write_str("unsigned (allowed by --allow-unsigned)"),
            Provenance::Unsigned {
                untrusted_key: Some(key_id),
            } => write!(
                f,
                "key {key_id}, not on the trust list (loaded as unsigned, allowed by --allow-unsigned)"
            ),
        }
    }
}

/// What the signature check found before any of the component's code runs.
#[derive(Debug, Clone)]
pub enum Admitted {
    Signed(TrustedKey),
    /// Unsigned, or signed by a key not on the list (its id), where unsigned files are allowed.
    Unsigned(Option<String>),
}

/// Why a file was refused, and whether for what its bytes are (a tampered or unreadable
/// signature: refused again whatever the trust list says) or for the trust list (which may change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: String,
    pub by_content: bool,
}

impl Refused {
    fn by_trust(reason: String) -> Refused {
        Refused {
            reason,
            by_content: false,
        }
    }
}

/// Checks a plugin file's signature against the trust list: bytes that are not WebAssembly, a
/// tampered file, a signer not on the list, or an unsigned file (unless allowed) is refused with
/// what to do, before any of it reaches the compiler.
pub fn admit(
    bytes: &[u8],
    source: &str,
    keys: &[TrustedKey],
    allow_unsigned: bool,
) -> Result<Admitted, Refused> {
    if matches!(
        signature::read(bytes),
        Err(signature::SignatureError::NotWasm)
    ) {
        return Err(Refused {
            reason: format!(
                "{source} is not a valid WebAssembly component: no \\0asm header, or its sections run past its end; build the connector as a component (`connectors check` says more), or get a fresh copy"
            ),
            by_content: true,
        });
    }
    let signer = signature::verify(bytes).map_err(|reason| Refused {
        reason: if reason.starts_with("tampered") {
            format!("{source} is refused as {reason}; get a fresh copy from its publisher")
        } else {
            format!(
                "{source} is refused: its signature cannot be read: {reason}; sign it again (`bss-host connectors sign`), or get a fresh copy from its publisher"
            )
        },
        by_content: true,
    })?;
    let Some(signer) = signer else {
        if allow_unsigned {
            return Ok(Admitted::Unsigned(None));
        }
        return Err(Refused::by_trust(format!(
            "{source} is not signed, and only signed connectors load: sign it with a key on the trust list (`bss-host connectors sign FILE --key KEYFILE`, then `bss-host trust add NAME PUBLIC-KEY`), or start the host with --allow-unsigned (BSS_HOST_ALLOW_UNSIGNED=1) to load unsigned connectors, which is not for production"
        )));
    };
    let public_key = signature::public_key_text(&signer.public_key);
    match keys.iter().find(|k| k.public_key == public_key) {
        Some(key) => Ok(Admitted::Signed(key.clone())),
        None if allow_unsigned => Ok(Admitted::Unsigned(Some(signer.key_id))),
        None => Err(Refused::by_trust(format!(
            "{source} is signed by key {} ({public_key}), which is not on the trust list; if you know it is its publisher's key, trust it with `bss-host trust add NAME {public_key} --connectors NAME-PATTERN`",
            signer.key_id
        ))),
    }
}

/// Checks that an admitted file's signer may provide connector `name`.
pub fn allow_name(admitted: &Admitted, name: &str, source: &str) -> Result<Provenance, String> {
    let key = match admitted {
        Admitted::Unsigned(untrusted_key) => {
            if BUNDLED_NAMES.contains(&name) {
                return Err(format!(
                    "{source} is an unsigned {name}, a name bundled with the host: only the host's own build, or a file signed by a key trusted for {name:?} by name (`bss-host trust add NAME KEY --connectors {name}`), may provide it"
                ));
            }
            return Ok(Provenance::Unsigned {
                untrusted_key: untrusted_key.clone(),
            });
        }
        Admitted::Signed(key) => key,
    };
    let patterns = Patterns::parse(&key.connectors).map_err(|e| {
        format!(
            "{source}: the trust list's entry {:?} has bad connector patterns ({e}); remove it and add it again",
            key.name
        )
    })?;
    if !patterns.grants(name) {
        let why = if BUNDLED_NAMES.contains(&name) && patterns.grants_by_wildcard(name) {
            format!(
                "; {name} is bundled with the host, so only a pattern naming it exactly grants it"
            )
        } else {
            String::new()
        };
        return Err(format!(
            "{source} holds connector {name}, but its signer {:?} (key {}) is trusted only for {}{why}; a connector's versions must be signed by a key trusted for its name (to widen the key: `bss-host trust remove {}`, then `trust add {} {} --connectors {},{name}`)",
            key.name,
            key.key_id,
            key.connectors,
            key.name,
            key.name,
            key.public_key,
            key.connectors
        ));
    }
    Ok(Provenance::Signed {
        key: key.name.clone(),
        key_id: key.key_id.clone(),
    })
}

/// Keeps a connector name with the key that published it: when versions of `name` were recorded
/// as signed by keys still on the trust list (`earlier`, key ids), a version from any other signer
/// (or unsigned) is refused, unless its key is trusted for `name` by a pattern naming it exactly
/// (an explicit hand-over). A vendor trusted for `*` thus cannot publish a newer version of
/// another vendor's connector; removing the first key from the list frees the name.
pub fn keep_publisher(
    provenance: &Provenance,
    name: &str,
    source: &str,
    earlier: &[String],
    keys: &[TrustedKey],
) -> Result<(), String> {
    let publishers: Vec<&TrustedKey> = keys
        .iter()
        .filter(|k| earlier.contains(&k.key_id))
        .collect();
    if publishers.is_empty() || matches!(provenance, Provenance::Bundled) {
        return Ok(());
    }
    let this = match provenance {
        Provenance::Signed { key_id, .. } => {
            if publishers.iter().any(|k| &k.key_id == key_id) {
                return Ok(());
            }
            let key = keys.iter().find(|k| &k.key_id == key_id);
            if key.is_some_and(|k| Patterns::parse(&k.connectors).is_ok_and(|p| p.names(name))) {
                return Ok(());
            }
            provenance.to_string()
        }
        Provenance::Unsigned { .. } => "an unsigned file".to_string(),
        Provenance::Bundled => unreachable!("returned above"),
    };
    let named: Vec<String> = publishers
        .iter()
        .map(|k| format!("{:?} (key {})", k.name, k.key_id))
        .collect();
    Err(format!(
        "{source} holds a version of {name}, which is published by {}; {this} may not publish it: hand it over by trusting the new key for {name} by name (`--connectors {name}`), or remove {} from the trust list if it no longer publishes {name}",
        named.join(" and "),
        publishers[0].name
    ))
}

/// A short digest of the trust list, so an audit entry kept "once" is kept again once the list
/// changes (a file loaded, refused after a key's removal, and loaded after it is trusted again).
pub fn generation(keys: &[TrustedKey]) -> String {
    let mut text = String::new();
    for key in keys {
        text.push_str(&format!(
            "{}\n{}\n{}\n",
            key.name, key.public_key, key.connectors
        ));
    }
    crate::runtime::cache::content_hash(text.as_bytes())[..12].to_string()
}

/// A key's connector-name patterns, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns(Vec<String>);

impl Patterns {
    /// Parses `acme-*,crm`: comma-separated patterns of lower-case letters, digits, `-` and `*`.
    pub fn parse(text: &str) -> Result<Patterns, String> {
        let mut patterns = Vec::new();
        for pattern in text.split(',').map(str::trim) {
            if pattern.is_empty() {
                return Err(format!(
                    "{text:?} has an empty pattern; write names or patterns separated by commas, e.g. acme-*,crm"
                ));
            }
            if let Some(bad) = pattern
                .chars()
                .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '*'))
            {
                return Err(format!(
                    "{pattern:?} holds {bad:?}; a pattern is a connector name (lower-case letters, digits, '-') where '*' stands for any run of characters"
                ));
            }
            patterns.push(pattern.to_string());
        }
        Ok(Patterns(patterns))
    }

    /// Whether a pattern grants `name` (a bundled name only by an exact pattern).
    pub fn grants(&self, name: &str) -> bool {
        if BUNDLED_NAMES.contains(&name) {
            return self.0.iter().any(|p| p == name);
        }
        self.0.iter().any(|p| glob(p, name))
    }

    /// Whether a pattern is exactly `name` (no wildcard).
    pub fn names(&self, name: &str) -> bool {
        self.0.iter().any(|p| p == name)
    }

    fn grants_by_wildcard(&self, name: &str) -> bool {
        self.0.iter().any(|p| p.contains('*') && glob(p, name))
    }
}

impl std::fmt::Display for Patterns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// `*` matches any run of characters; everything else itself.
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(connectors: &str, public_key: &[u8]) -> TrustedKey {
        TrustedKey {
            name: "acme".into(),
            public_key: signature::public_key_text(public_key),
            key_id: signature::key_id(public_key),
            connectors: connectors.into(),
            added_at: String::new(),
            added_by: String::new(),
        }
    }

    #[test]
    fn patterns_match_names_and_bundled_names_only_exactly() {
        let patterns = Patterns::parse("acme-*, crm,*-sync").unwrap();
        assert!(patterns.grants("acme-billing"));
        assert!(patterns.grants("crm"));
        assert!(patterns.grants("ledger-sync"));
        assert!(!patterns.grants("crm2"));
        assert!(!patterns.grants("acme"));
        let everything = Patterns::parse("*").unwrap();
        assert!(everything.grants("anything"));
        assert!(!everything.grants("connectwise"));
        assert!(
            Patterns::parse("connectwise")
                .unwrap()
                .grants("connectwise")
        );
        assert!(glob("a*b*c", "a-x-b-y-c"));
        assert!(!glob("a*b*c", "a-c"));
        assert!(!glob("ab*ba", "aba"));
        for bad in ["", "acme,", "Acme", "acme/x"] {
            assert!(Patterns::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_name_stays_with_its_publisher_unless_handed_over() {
        let (_, first) = signature::generate();
        let (_, second) = signature::generate();
        let mut acme = key("*", &first);
        acme.name = "acme".into();
        let mut rival = key("*", &second);
        rival.name = "rival".into();
        let by = |k: &TrustedKey| Provenance::Signed {
            key: k.name.clone(),
            key_id: k.key_id.clone(),
        };
        let earlier = vec![acme.key_id.clone()];
        let keys = [acme.clone(), rival.clone()];
        keep_publisher(&by(&acme), "crm", "f", &earlier, &keys).unwrap();
        let taken = keep_publisher(&by(&rival), "crm", "f", &earlier, &keys).unwrap_err();
        assert!(
            taken.contains("published by \"acme\"") && taken.contains("--connectors crm"),
            "{taken}"
        );
        let unsigned = Provenance::Unsigned {
            untrusted_key: None,
        };
        assert!(keep_publisher(&unsigned, "crm", "f", &earlier, &keys).is_err());
        // Handed over by name, or the first publisher no longer trusted: allowed.
        rival.connectors = "crm".into();
        keep_publisher(
            &by(&rival),
            "crm",
            "f",
            &earlier,
            &[acme.clone(), rival.clone()],
        )
        .unwrap();
        keep_publisher(&unsigned, "crm", "f", &earlier, &[rival.clone()]).unwrap();
        assert_ne!(generation(&[acme.clone()]), generation(&[acme, rival]));
    }

    #[test]
    fn files_are_admitted_by_signature_and_then_by_name() {
        const EMPTY: &[u8] = b"\0asm\x0d\0\x01\0";
        let (private, public) = signature::generate();
        let signed = signature::sign(EMPTY, &private).unwrap();
        let keys = [key("acme-*", &public)];

        let admitted = admit(&signed, "a.wasm", &keys, false).unwrap();
        assert_eq!(
            allow_name(&admitted, "acme-crm", "a.wasm").unwrap(),
            Provenance::Signed {
                key: "acme".into(),
                key_id: signature::key_id(&public)
            }
        );
        let other_name = allow_name(&admitted, "billing", "a.wasm").unwrap_err();
        assert!(
            other_name.contains("trusted only for acme-*"),
            "{other_name}"
        );

        let unsigned = admit(EMPTY, "u.wasm", &keys, false).unwrap_err().reason;
        assert!(unsigned.contains("not signed") && unsigned.contains("--allow-unsigned"));
        let allowed = admit(EMPTY, "u.wasm", &keys, true).unwrap();
        assert_eq!(
            allow_name(&allowed, "anything", "u.wasm").unwrap(),
            Provenance::Unsigned {
                untrusted_key: None
            }
        );
        assert!(allow_name(&allowed, "connectwise", "u.wasm").is_err());

        let untrusted = admit(&signed, "a.wasm", &[], false).unwrap_err().reason;
        assert!(untrusted.contains("not on the trust list") && untrusted.contains("trust add"));
        let loose = admit(&signed, "a.wasm", &[], true).unwrap();
        assert_eq!(
            allow_name(&loose, "acme-crm", "a.wasm").unwrap(),
            Provenance::Unsigned {
                untrusted_key: Some(signature::key_id(&public))
            }
        );

        let mut tampered = signed.clone();
        tampered[6] ^= 1;
        let refused = admit(&tampered, "t.wasm", &keys, true).unwrap_err();
        assert!(
            refused.reason.contains("tampered") && refused.by_content,
            "{refused:?}"
        );
        // Not WebAssembly: refused for what it is, before the compiler sees it.
        let garbage = admit(b"not a component", "x.wasm", &keys, true).unwrap_err();
        assert!(garbage.by_content && garbage.reason.contains("not a valid WebAssembly component"));
    }
}
