//! What a component asks of the host, read without compiling it: its top-level imports and
//! exports, and for each import whether this host grants it and, when it does not, how to build
//! the connector so it does not ask. Used by `connectors check` to explain a refusal in seconds,
//! before a 20-second compile ends in a linker error.
//!
//! | import                                   | verdict                                          |
//! |------------------------------------------|--------------------------------------------------|
//! | `bss:integration/{http,settings,log}@1.x` | granted: the contract                            |
//! | `wasi:{cli,clocks,io,random}/…@0.2.x`    | granted, empty or harmless (no env, args, stdin; stdout and stderr go to the host log) |
//! | `wasi:{filesystem,sockets}/…@0.2.x`      | linked so WASI adapters link, but nothing is reachable (no preopened directory, no network) |
//! | `wasi:http/…`                            | refused: use `bss:integration/http`; ComponentizeJS needs `-d http fetch-event` |
//! | anything else                            | refused: not granted                             |

/// How the host answers one import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Part of the contract.
    Contract,
    /// A WASI interface the host links; the note says what the connector gets from it.
    Wasi(&'static str),
    /// Not linked: the component cannot load. The text says what to do.
    Refused(String),
}

/// A component's top-level imports and exports, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Surface {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Reads the top-level imports and exports of a component; an error says what the bytes are
/// instead (a core module, not WebAssembly at all).
pub fn surface(bytes: &[u8]) -> Result<Surface, String> {
    use wasmparser::{Encoding, Parser, Payload};
    let mut surface = Surface::default();
    if !bytes.starts_with(b"\0asm") {
        return Err("not WebAssembly (a .wasm starts with the bytes \\0asm)".into());
    }
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| format!("not a valid WebAssembly binary: {e}"))?;
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } if depth == 0 => {
                return Err("a core WebAssembly module, not a component: build for wasm32-wasip2 (Rust), or wrap it with `wasm-tools component new` and a WASI adapter".into());
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| format!("an unreadable import: {e}"))?;
                    surface.imports.push(import.name.name.to_string());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| format!("an unreadable export: {e}"))?;
                    surface.exports.push(export.name.name.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(surface)
}

/// Whether the host grants `import` (a name such as `wasi:io/streams@0.2.3`).
pub fn judge(import: &str) -> Verdict {
    let (path, version) = import.split_once('@').unwrap_or((import, ""));
    let Some((package, interface)) = path.split_once('/') else {
        return Verdict::Refused(format!(
            "{import} is a bare function or instance import; a connector imports only interfaces of bss:integration and WASI 0.2"
        ));
    };
    if package == "bss:integration" {
        return match interface {
            "http" | "settings" | "log" | "types" => Verdict::Contract,
            _ => Verdict::Refused(format!(
                "bss:integration/{interface} is not an interface a connector imports (it imports http, settings and log, and exports connector)"
            )),
        };
    }
    let wasi_0_2 = version.starts_with("0.2.");
    match package {
        "wasi:http" => Verdict::Refused(
            "the host does not grant wasi:http: send requests through bss:integration/http (the SDKs' HTTP helper does); a ComponentizeJS build imports it unless built with `-d http fetch-event` (disableFeatures: [\"http\", \"fetch-event\"])".into(),
        ),
        "wasi:cli" | "wasi:clocks" | "wasi:io" | "wasi:random" if wasi_0_2 => {
            Verdict::Wasi(match (package, interface) {
                ("wasi:cli", "stdout" | "stderr") => "written to the host's log, line by line",
                ("wasi:cli", "stdin") => "empty",
                ("wasi:cli", "environment") => "empty: no arguments, no environment variables",
                ("wasi:cli", "exit") => "ends the call (as a trap)",
                ("wasi:cli", _) => "no terminal",
                ("wasi:clocks", _) => "the host's clocks",
                ("wasi:random", _) => "the host's random numbers",
                _ => "streams and polling for the other interfaces",
            })
        }
        "wasi:filesystem" | "wasi:sockets" if wasi_0_2 => Verdict::Wasi(
            "linked so that WASI adapters link, but empty: no directory is preopened and no socket may connect (HTTP goes through bss:integration/http)",
        ),
        "wasi:cli" | "wasi:clocks" | "wasi:io" | "wasi:random" | "wasi:filesystem" | "wasi:sockets" => {
            Verdict::Refused(format!(
                "{import}: this host links WASI 0.2 (0.2.x); build with a toolchain that targets WASI 0.2 (Rust's wasm32-wasip2, componentize-py, ComponentizeJS)"
            ))
        }
        _ => Verdict::Refused(format!(
            "{import} is not granted: a connector may import only bss:integration/{{http,settings,log}} and WASI 0.2"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_import_gets_its_verdict() {
        assert_eq!(judge("bss:integration/http@1.3.0"), Verdict::Contract);
        assert!(matches!(judge("wasi:io/streams@0.2.3"), Verdict::Wasi(_)));
        assert!(matches!(
            judge("wasi:filesystem/preopens@0.2.0"),
            Verdict::Wasi(_)
        ));
        let Verdict::Refused(fix) = judge("wasi:http/types@0.2.10") else {
            panic!("wasi:http is not granted");
        };
        assert!(fix.contains("bss:integration/http") && fix.contains("-d http fetch-event"));
        assert!(matches!(
            judge("wasi:io/streams@0.3.0"),
            Verdict::Refused(_)
        ));
        assert!(matches!(
            judge("acme:evil/backdoor@1.0.0"),
            Verdict::Refused(_)
        ));
        assert!(matches!(
            judge("bss:integration/connector@1.3.0"),
            Verdict::Refused(_)
        ));
        assert_eq!(judge("bss:integration/types@1.3.0"), Verdict::Contract);
    }

    #[test]
    fn a_core_module_and_garbage_are_told_apart_from_components() {
        // The smallest core module: magic and version 1.
        let module = b"\0asm\x01\0\0\0";
        assert!(
            surface(module)
                .unwrap_err()
                .contains("core WebAssembly module")
        );
        assert!(surface(b"garbage").unwrap_err().contains("not WebAssembly"));
    }
}
