//! Text a connector controls, made safe to print: a connector's error texts, check summaries,
//! choice labels, remote ids and report messages can carry terminal escape sequences (clear the
//! screen, retitle the terminal, move the cursor to overwrite a line) or line breaks that forge a
//! line of the host's own output. [`printable`] escapes every control character (C0, DEL, C1),
//! the line and paragraph separators and the bidirectional-formatting characters that reorder
//! what a terminal shows, as `\n`, `\r`, `\t` or `\u{1b}`; everything else is left as it is (a
//! backslash too, so ordinary text reads unchanged). [`json_pretty`] is `--json` output that
//! escapes the same characters the JSON way (`\u009b`; serde already writes `\u001b` for C0), so it
//! stays valid JSON and is as safe in a terminal as the plain output.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as it is.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every control, separator and bidi-formatting character escaped (`\n`, `\r`, `\t`,
/// `\u{1b}`), for printing on one line of a terminal. Borrowed when nothing needed escaping.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `value` as pretty JSON in which no character a terminal would act on appears raw: serde
/// escapes C0 controls; DEL, C1 controls, separators and bidi formatting are escaped here as
/// `\uXXXX`. They can only occur inside JSON strings, so the result is the same JSON value.
pub fn json_pretty<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    // Raw C0 characters in serde's output are its own line breaks and indentation.
    let unescaped = |c: char| unsafe_char(c) && c >= ' ';
    let text = serde_json::to_string_pretty(value)?;
    if !text.chars().any(unescaped) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unescaped(c) {
            // Every such character is in the Basic Multilingual Plane: one \u escape.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_keeps_text() {
        assert!(matches!(printable("plain text é ✓"), Cow::Borrowed(_)));
        assert_eq!(
            printable("\u{1b}[2J\u{1b}]0;owned\u{7}ok\r\nALL CHECKS PASSED\u{9b}31m\u{7f}\t"),
            "\\u{1b}[2J\\u{1b}]0;owned\\u{7}ok\\r\\nALL CHECKS PASSED\\u{9b}31m\\u{7f}\\t"
        );
        assert_eq!(printable("a\u{202e}b\u{2028}"), "a\\u{202e}b\\u{2028}");
    }

    #[test]
    fn json_stays_json() {
        let value = serde_json::json!({ "summary": "\u{1b}[2J\u{9b}1m\r\n\u{7f}\u{202e}" });
        let text = json_pretty(&value).unwrap();
        assert!(text.chars().all(|c| c == '\n' || !unsafe_char(c)), "{text}");
        assert!(
            text.contains("\\u001b[2J\\u009b1m\\r\\n\\u007f\\u202e"),
            "{text}"
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
