//! The outbound allow-list: the origins (scheme, host, port) an instance's connector may reach.
//!
//! An instance's allowed origins come from its `url`-kind server variables. Each value is parsed once
//! into a typed [`Origin`]; a request is allowed only when its own origin equals one of them exactly.
//! Paths are ignored: the origin is the unit of trust, as in browsers.
//!
//! | setting value | allowed origin |
//! |---|---|
//! | `https://api.example.com` | `https://api.example.com:443` |
//! | `https://api.example.com/v4_6_release/apis/3.0` | `https://api.example.com:443` |
//! | `api.example.com` (no scheme) | `https://api.example.com:443` |
//! | `api.example.com:8443` | `https://api.example.com:8443` |
//! | `http://127.0.0.1:8080` | `http://127.0.0.1:8080` (reachable only with `host.allow-private-network`) |
//! | `http://2130706433:80` | `http://127.0.0.1:80` (every IPv4 spelling is normalised) |
//!
//! Refused: other schemes (`ftp://…`), user names or passwords in the URL (credentials belong in
//! secret settings), wildcards, and values without a host.

use std::fmt;

use url::{Host, Url};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A scheme, host and port: what a request is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    pub host: Host<String>,
    pub port: u16,
}

/// Why a value could not be used as an origin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a usable URL: {reason}")]
pub struct OriginError {
    pub value: String,
    pub reason: String,
}

impl Origin {
    /// Parses a `url`-kind setting (see the module table). A value without a scheme means https.
    pub fn parse_setting(value: &str) -> Result<Origin, OriginError> {
        let trimmed = value.trim();
        let fail = |reason: &str| OriginError {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if trimmed.is_empty() {
            return Err(fail(
                "it is empty; give a URL such as https://api.example.com",
            ));
        }
        if trimmed.contains('*') {
            return Err(fail("wildcards are not supported; give the exact host"));
        }
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_string()
        } else {
            format!("https://{trimmed}")
        };
        let url = Url::parse(&with_scheme)
            .map_err(|e| fail(&format!("{e}; give a URL such as https://api.example.com")))?;
        Origin::of_url(&url).map_err(|reason| fail(&reason))
    }

    /// The origin a request URL goes to, or why it cannot be used.
    pub fn of_url(url: &Url) -> Result<Origin, String> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(format!(
                    "scheme {other:?} is not supported; use http or https"
                ));
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "it carries a user name or password; put credentials in secret settings instead"
                    .into(),
            );
        }
        let host = match url.host() {
            Some(Host::Domain(domain)) => {
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                if domain.is_empty() {
                    return Err("it has no host".into());
                }
                Host::Domain(domain)
            }
            Some(Host::Ipv4(ip)) => Host::Ipv4(ip),
            Some(Host::Ipv6(ip)) => Host::Ipv6(ip),
            None => return Err("it has no host".into()),
        };
        let port = url.port_or_known_default().ok_or("it has no port")?;
        Ok(Origin { scheme, host, port })
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ipv6(ip) => write!(f, "{}://[{ip}]:{}", self.scheme.as_str(), self.port),
            host => write!(f, "{}://{host}:{}", self.scheme.as_str(), self.port),
        }
    }
}

/// The set of origins one instance may reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    origins: Vec<Origin>,
}

impl AllowedHosts {
    pub fn new(origins: impl IntoIterator<Item = Origin>) -> Self {
        let mut list: Vec<Origin> = Vec::new();
        for origin in origins {
            if !list.contains(&origin) {
                list.push(origin);
            }
        }
        AllowedHosts { origins: list }
    }

    pub fn allows(&self, origin: &Origin) -> bool {
        self.origins.contains(origin)
    }

    pub fn origins(&self) -> &[Origin] {
        &self.origins
    }
}

impl fmt::Display for AllowedHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.origins.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<String> = self.origins.iter().map(Origin::to_string).collect();
        f.write_str(&names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn accepted_forms_normalise_to_one_origin() {
        let cases = [
            ("https://api.example.com", "https://api.example.com:443"),
            (
                "https://API.Example.com./v4_6_release/apis/3.0",
                "https://api.example.com:443",
            ),
            ("api.example.com", "https://api.example.com:443"),
            ("api.example.com:8443", "https://api.example.com:8443"),
            ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080"),
            ("http://2130706433:80", "http://127.0.0.1:80"),
            ("http://0x7f000001/", "http://127.0.0.1:80"),
            ("http://[::1]:9000", "http://[::1]:9000"),
        ];
        for (value, expected) in cases {
            assert_eq!(
                Origin::parse_setting(value).unwrap().to_string(),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn refused_forms_say_how_to_fix_them() {
        let cases = [
            ("", "give a URL"),
            ("ftp://files.example.com", "use http or https"),
            ("https://user:pw@api.example.com", "secret settings"),
            ("https://*.example.com", "wildcards"),
            ("https://", "give a URL"),
        ];
        for (value, hint) in cases {
            let err = Origin::parse_setting(value).unwrap_err();
            assert!(err.to_string().contains(hint), "{value}: {err}");
        }
    }

    #[test]
    fn only_exact_origins_are_allowed() {
        let allowed = AllowedHosts::new([Origin::parse_setting("http://127.0.0.1:8080").unwrap()]);
        let same = Origin {
            scheme: Scheme::Http,
            host: Host::Ipv4(Ipv4Addr::LOCALHOST),
            port: 8080,
        };
        assert!(allowed.allows(&same));
        assert!(!allowed.allows(&Origin {
            port: 8081,
            ..same.clone()
        }));
        assert!(!allowed.allows(&Origin {
            scheme: Scheme::Https,
            ..same.clone()
        }));
        assert!(!allowed.allows(&Origin {
            host: Host::Domain("localhost".into()),
            ..same
        }));
    }
}
