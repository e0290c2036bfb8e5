//! The `log.write` import, defined by hand so that its line is lifted lazily. The generated
//! bindings would copy the whole line into a `String` before the host sees it; here the line
//! arrives as a [`WasmStr`] (a pointer into the guest's memory), at most `host.max-string-bytes` of
//! it is copied, and the rest is only counted. What bounds a line at all is wasmtime's hostcall
//! fuel, which the runtime sets per call to `host.max-answer-bytes`: a longer line fails the call
//! (`answer too large`) before anything is copied. The definition shadows the generated one in the
//! same linker, for the newest interface that components of older minors also resolve to.

use std::future::Future;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, WasmStr};

use super::CallState;
use super::log::LogSource;
use crate::contract::bindings::log as wit_log;

/// Replaces the generated `write` of the log interface with the lazily lifted one, in the
/// newest minor's interface, which older minors resolve to (a name of another minor would be a
/// separate instance holding `write` alone, and shadow the generated one for them).
pub fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    let interface = format!("bss:integration/log@{}", crate::contract::CONTRACT_VERSION);
    linker.allow_shadowing(true);
    let defined = linker
        .instance(&interface)
        .and_then(|mut log| log.func_wrap_async("write", write));
    linker.allow_shadowing(false);
    defined
}

/// `line` cut to at most `max` bytes on a character boundary, and whether it was cut.
pub fn cut_line(line: &str, max: u64) -> (&str, bool) {
    let Ok(max) = usize::try_from(max) else {
        return (line, false);
    };
    if line.len() <= max {
        return (line, false);
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    (&line[..end], true)
}

type Done<'a> = Box<dyn Future<Output = wasmtime::Result<()>> + Send + 'a>;

fn write(
    store: StoreContextMut<'_, CallState>,
    (level, line): (wit_log::Level, WasmStr),
) -> Done<'_> {
    let written = (|| {
        let state = store.data();
        let max = state.context.options().max_string_bytes;
        // Borrowed from guest memory (validated as UTF-8, not copied).
        let text = line.to_str(&store)?;
        let (kept, was_cut) = cut_line(&text, max);
        let kept = if was_cut {
            std::borrow::Cow::Owned(format!(
                "{kept} [cut at {max} bytes (host.max-string-bytes) of {}]",
                text.len()
            ))
        } else {
            std::borrow::Cow::Borrowed(kept)
        };
        state.log.lock().unwrap_or_else(|p| p.into_inner()).line(
            super::host_level(level),
            LogSource::Log,
            &kept,
        );
        Ok(())
    })();
    Box::new(async move { written })
}

#[cfg(test)]
mod tests {
    use super::cut_line;

    #[test]
    fn lines_are_cut_on_character_boundaries() {
        assert_eq!(cut_line("short", 10), ("short", false));
        assert_eq!(cut_line("abcdef", 3), ("abc", true));
        // "é" is two bytes: a cut inside it keeps the character out whole.
        assert_eq!(cut_line("aé", 2), ("a", true));
    }
}
