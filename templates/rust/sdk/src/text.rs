//! Small text helpers for URLs and timestamps (no panics on any input).

/// Percent-encodes a query value or path segment (everything but `A-Z a-z 0-9 - _ . ~`).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `[("a", Some("1")), ("b", None)]` → `a=1` (absent values skipped).
pub fn query<K: AsRef<str>, V: AsRef<str>>(
    params: impl IntoIterator<Item = (K, Option<V>)>,
) -> String {
    params
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", encode(k.as_ref()), encode(v.as_ref()))))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes `%XX` escapes (and `+` as a space); malformed escapes are kept as they are.
pub fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = core::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query parameter of a URL (absolute or relative), decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let without_fragment = url.split('#').next().unwrap_or("");
    let (_, query) = without_fragment.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

/// Whether `text` is an RFC 3339 timestamp (`2026-01-31T12:00:00Z`; a fraction and an offset allowed).
pub fn is_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |from: usize, n: usize| {
        b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
    };
    if !(digits(0, 4)
        && b.get(4) == Some(&b'-')
        && digits(5, 2)
        && b.get(7) == Some(&b'-')
        && digits(8, 2))
    {
        return false;
    }
    if !matches!(b.get(10), Some(b'T' | b't')) {
        return false;
    }
    if !(digits(11, 2)
        && b.get(13) == Some(&b':')
        && digits(14, 2)
        && b.get(16) == Some(&b':')
        && digits(17, 2))
    {
        return false;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1, 2) && b.get(i + 3) == Some(&b':') && digits(i + 4, 2) && i + 6 == b.len()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(encode("a b/é"), "a%20b%2F%C3%A9");
        assert_eq!(query([("a", Some("1 2")), ("b", None)]), "a=1%202");
        assert_eq!(
            query_param("x?pageId=12&b=%41", "pageId").as_deref(),
            Some("12")
        );
        assert_eq!(query_param("x?b=%41", "b").as_deref(), Some("A"));
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("100%"), "100%");
        assert!(is_timestamp("2026-01-31T12:00:00Z"));
        assert!(is_timestamp("2026-01-31T12:00:00.123+02:00"));
        assert!(!is_timestamp("2026-01-31 12:00:00Z"));
        assert!(!is_timestamp("2026-01-31T12:00:00"));
    }
}
