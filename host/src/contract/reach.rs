//! A connector's declared reach (contract 1.4, `connector-manifest.reach`): the remote hosts it
//! will ever call, parsed once into typed patterns that an instance's `url` settings are checked
//! against — at `settings set`, and again whenever a call's settings are read (a newer version may
//! declare less than the one the settings were made for).
//!
//! | pattern | matches | does not match |
//! |---|---|---|
//! | `api.example.com` | `https://api.example.com`, `http://api.example.com:8080` | `x.api.example.com` |
//! | `*.myconnectwise.net` | `na.myconnectwise.net`, `api-eu.myconnectwise.net` | `myconnectwise.net`, `evilmyconnectwise.net` |
//! | `api.example.com:8443` | `https://api.example.com:8443` | `https://api.example.com` (443) |
//! | `10.1.2.3`, `[fd00::1]:8080` | that address (and port) | any name that resolves to it |
//!
//! Refused in a manifest: a bare `*`, a wildcard anywhere but a leading `*.`, a wildcard over a
//! single label (`*.com`), schemes, paths and anything that is not a host name or IP address. A
//! wildcard over a public suffix of two labels (`*.co.uk`) is not recognised as one (no public
//! suffix list): the reach is the connector author's statement, which the operator reads in
//! `connectors inspect`. An
//! empty reach means any host, as before 1.4: a remote installed at the customer's own address
//! (an on-premise ConnectWise) cannot be listed in advance.

use std::fmt;
use std::net::IpAddr;

use url::Host;

/// One declared pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachPattern {
    host: HostPattern,
    port: Option<u16>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.suffix`: any name ending in `.suffix`.
    Subdomains(String),
    Ip(IpAddr),
}

/// A connector's reach: none declared (any host), or these patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach(Vec<ReachPattern>);

impl Reach {
    /// Parses every pattern; the error lists each bad one with what a pattern looks like.
    pub fn parse(patterns: &[String]) -> Result<Reach, Vec<String>> {
        let mut parsed = Vec::new();
        let mut problems = Vec::new();
        for text in patterns {
            match ReachPattern::parse(text) {
                Ok(pattern) => parsed.push(pattern),
                Err(problem) => problems.push(format!("reach {text:?}: {problem}")),
            }
        }
        if problems.is_empty() {
            Ok(Reach(parsed))
        } else {
            Err(problems)
        }
    }

    /// No pattern declared: any host.
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request to `host`:`port` is within the reach.
    pub fn allows(&self, host: &Host<String>, port: u16) -> bool {
        self.is_any() || self.0.iter().any(|p| p.matches(host, port))
    }
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_any() {
            return f.write_str("any host (none declared)");
        }
        let texts: Vec<&str> = self.0.iter().map(|p| p.text.as_str()).collect();
        f.write_str(&texts.join(", "))
    }
}

impl ReachPattern {
    fn parse(text: &str) -> Result<ReachPattern, String> {
        let shape = "write a host name (api.example.com), *.domain (*.myconnectwise.net) or an IP address, each optionally with :port";
        let trimmed = text.trim();
        if trimmed.contains("://") || trimmed.contains('/') {
            return Err(format!("a pattern has no scheme or path; {shape}"));
        }
        let (host, port) = split_port(trimmed).map_err(|e| format!("{e}; {shape}"))?;
        let host = if let Some(ip) = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .or(Some(host))
            .and_then(|h| h.parse::<IpAddr>().ok())
        {
            HostPattern::Ip(ip)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            let suffix = suffix.trim_end_matches('.');
            if !is_host_name(suffix) {
                return Err(format!("{suffix:?} is not a host name; {shape}"));
            }
            if !suffix.contains('.') {
                return Err(format!(
                    "*.{suffix} would reach every host of a top-level domain; name the connector's own domain"
                ));
            }
            HostPattern::Subdomains(suffix.to_ascii_lowercase())
        } else if host.contains('*') {
            return Err(format!(
                "a wildcard may only be the first label (*.example.com); {shape}"
            ));
        } else if is_host_name(host) {
            HostPattern::Exact(host.trim_end_matches('.').to_ascii_lowercase())
        } else {
            return Err(format!(
                "{host:?} is not a host name or IP address; {shape}"
            ));
        };
        Ok(ReachPattern {
            host,
            port,
            text: trimmed.to_string(),
        })
    }

    fn matches(&self, host: &Host<String>, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match (&self.host, host) {
            (HostPattern::Exact(name), Host::Domain(domain)) => name == domain,
            (HostPattern::Subdomains(suffix), Host::Domain(domain)) => domain
                .strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
            (HostPattern::Ip(IpAddr::V4(ip)), Host::Ipv4(other)) => ip == other,
            (HostPattern::Ip(IpAddr::V6(ip)), Host::Ipv6(other)) => ip == other,
            _ => false,
        }
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) if end + 1 == text.len() => (text, None),
            Some(end) => match text[end + 1..].strip_prefix(':') {
                Some(port) => (&text[..=end], Some(port)),
                None => return Err("text after ] must be :port".into()),
            },
            None => return Err("[ without ]".into()),
        }
    } else if text.matches(':').count() == 1 {
        let (host, port) = text.split_once(':').expect("one colon");
        (host, Some(port))
    } else {
        (text, None)
    };
    let port = match port {
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port {port:?} is not a number from 1 to 65535"))?,
        ),
        None => None,
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    Ok((host, port))
}

fn is_host_name(text: &str) -> bool {
    let text = text.trim_end_matches('.');
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reach(patterns: &[&str]) -> Reach {
        Reach::parse(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn domain(name: &str) -> Host<String> {
        Host::Domain(name.into())
    }

    #[test]
    fn patterns_match_as_the_table_says() {
        let r = reach(&[
            "api.example.com",
            "*.myconnectwise.net",
            "pay.example.com:8443",
        ]);
        assert!(r.allows(&domain("api.example.com"), 443));
        assert!(r.allows(&domain("api.example.com"), 8080));
        assert!(!r.allows(&domain("x.api.example.com"), 443));
        assert!(r.allows(&domain("na.myconnectwise.net"), 443));
        assert!(reach(&["*.myconnectwise.net."]).allows(&domain("na.myconnectwise.net"), 443));
        assert!(r.allows(&domain("api-eu.myconnectwise.net"), 443));
        assert!(!r.allows(&domain("myconnectwise.net"), 443));
        assert!(!r.allows(&domain("evilmyconnectwise.net"), 443));
        assert!(r.allows(&domain("pay.example.com"), 8443));
        assert!(!r.allows(&domain("pay.example.com"), 443));
        assert!(!r.allows(&Host::Ipv4("10.0.0.1".parse().unwrap()), 443));
        let ips = reach(&["10.1.2.3", "[fd00::1]:8080"]);
        assert!(ips.allows(&Host::Ipv4("10.1.2.3".parse().unwrap()), 1));
        assert!(ips.allows(&Host::Ipv6("fd00::1".parse().unwrap()), 8080));
        assert!(!ips.allows(&Host::Ipv6("fd00::1".parse().unwrap()), 80));
        assert!(!ips.allows(&domain("10.1.2.3.nip.io"), 443));
        assert!(Reach::default().allows(&domain("anything.example"), 1));
        assert_eq!(
            r.to_string(),
            "api.example.com, *.myconnectwise.net, pay.example.com:8443"
        );
    }

    #[test]
    fn bad_patterns_are_named_with_the_fix() {
        for bad in [
            "*",
            "*.com",
            "api.*.example.com",
            "https://api.example.com",
            "api.example.com/path",
            "api.example.com:0",
            "api.example.com:https",
            "exa mple.com",
            "",
        ] {
            let problems = Reach::parse(&[bad.to_string()]).unwrap_err();
            assert_eq!(problems.len(), 1, "{bad:?}");
            assert!(problems[0].contains(&format!("{bad:?}")), "{problems:?}");
        }
    }
}
