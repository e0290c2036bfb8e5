//! Reading ConnectWise forward, one page at a time, from the host's cursor: the only condition
//! sent is built from a cursor checked to be an RFC 3339 timestamp.

use serde_json::Value;

use crate::client::{Client, encode};
use crate::push_context::rejected;
use crate::types::ConnectorError;

/// Whether `text` is an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS`, optional fraction, then `Z` or
/// an offset `±HH:MM`.
pub fn is_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if b.len() < 20
        || !(digits(0..4) && digits(5..7) && digits(8..10) && digits(11..13))
        || !(digits(14..16) && digits(17..19))
        || (b[4], b[7], b[13], b[16]) != (b'-', b'-', b':', b':')
        || !matches!(b[10], b'T' | b't')
    {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

/// Reads one page forward (records with id above the token) of records changed at or after `since`.
/// The only condition sent is `lastUpdated>=[since]`, built from the cursor the host hands over and
/// nothing else (a pulled record's own stamp goes back to the host untouched, however it is
/// written); a cursor that is not an RFC 3339 timestamp is refused before anything is sent, and
/// conditions ConnectWise refuses come back as a rejection of field `conditions` naming them.
pub fn pull_page(
    client: &Client,
    path: &str,
    since: Option<&str>,
    page_token: Option<&str>,
) -> Result<(Vec<Value>, Option<String>), ConnectorError> {
    let mut query = format!("pageSize={}", crate::client::PAGE_SIZE);
    let mut conditions = None;
    if let Some(since) = since {
        if !is_timestamp(since) {
            return Err(ConnectorError::Internal(format!(
                "the pull cursor {since:?} is not an RFC 3339 timestamp; no conditions were sent to ConnectWise"
            )));
        }
        let text = format!("lastUpdated>=[{since}]");
        query.push_str(&format!("&conditions={}", encode(&text)));
        conditions = Some(text);
    }
    if let Some(token) = page_token {
        let id: i64 = token.parse().map_err(|_| {
            ConnectorError::Internal(format!(
                "page token {token:?} is not one this connector gave"
            ))
        })?;
        query.push_str(&format!("&pageId={id}"));
    }
    let url = format!("{}/{path}?{query}", client.api());
    let response = client.send_raw(
        crate::host::Method::Get,
        url,
        None,
        &[("pagination-type", "forward-only")],
    )?;
    let answer = match (client.check(&response), &conditions) {
        (Err(ConnectorError::Rejected(problems)), Some(conditions)) => {
            let said: Vec<String> = problems
                .iter()
                .map(|p| {
                    if p.field.is_empty() {
                        p.message.clone()
                    } else {
                        format!("{}: {}", p.field, p.message)
                    }
                })
                .collect();
            return Err(rejected(
                "conditions",
                format!(
                    "ConnectWise refused the conditions {conditions:?} of a {path} pull: {}",
                    said.join("; ")
                ),
            ));
        }
        (answer, _) => answer?,
    };
    let items = match answer {
        Value::Array(items) => items,
        other => {
            return Err(ConnectorError::Internal(format!(
                "ConnectWise answered {path} with {}",
                other
            )));
        }
    };
    let next = if items.len() < crate::client::PAGE_SIZE
        && crate::client::link_target(&response, "next").is_none()
    {
        None
    } else {
        items
            .last()
            .and_then(|r| r.get("id"))
            .and_then(Value::as_i64)
            .map(|id| id.to_string())
    };
    Ok((items, next))
}

#[cfg(test)]
mod tests {
    use super::is_timestamp;

    #[test]
    fn cursors_must_be_timestamps() {
        for good in [
            "2026-01-31T12:00:00Z",
            "2026-01-31T12:00:00.123Z",
            "2026-01-31T12:00:00+01:00",
        ] {
            assert!(is_timestamp(good), "{good}");
        }
        for bad in [
            "2015-12-24T22: 08: 22Z",
            "2026-01-31",
            "2026-01-31T12:00:00",
            "2026-01-31T12:00:00Z] or id>[0",
            "2026-01-31 12:00:00Z",
            "",
        ] {
            assert!(!is_timestamp(bad), "{bad}");
        }
    }
}
