//! `serve` compiles what lands in the plugins folder in a background child capped at
//! `BSS_HOST_COMPILE_MEMORY_MB` of writable memory: a component whose compile needs more is
//! refused (not retried, not compiled in the server), and compiles once the cap is raised.
//!
//! A test binary of its own: the compiling program, the background mode and the cap are
//! process-wide settings.

mod common;

use std::path::{Path, PathBuf};

use bss_host::runtime::compiler::{compile_in_background, compile_in_child_processes};
use bss_host::runtime::{LoadError, Runtime, RuntimeConfig};

#[tokio::test]
async fn a_background_compile_over_its_memory_cap_is_refused_until_the_cap_is_raised() {
    // SAFETY: this binary's only test sets the variable before it starts any thread that reads
    // the environment; the compiler children inherit it.
    unsafe { std::env::set_var("BSS_HOST_COMPILE_MEMORY_MB", "8") };
    compile_in_child_processes(PathBuf::from(env!("CARGO_BIN_EXE_bss-host")));
    compile_in_background();
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().join("cache")),
        ..RuntimeConfig::default()
    })
    .unwrap();
    let fixture = Path::new(common::FIXTURE_WASM);

    // 8 MiB is far below what Cranelift needs for the fixture.
    let refused = match runtime.load_file(fixture).await {
        Ok(_) => panic!("a compile over its memory cap loaded"),
        Err(error) => error,
    };
    assert!(
        matches!(refused, LoadError::CompileOverMemoryCap { cap_mib: 8, .. }),
        "{refused}"
    );
    assert!(
        refused
            .to_string()
            .contains("needs more memory to compile than the compiler may use (8 MiB"),
        "{refused}"
    );
    assert_eq!(runtime.compile_count(), 0);

    // SAFETY: as above; no compile is running.
    unsafe { std::env::set_var("BSS_HOST_COMPILE_MEMORY_MB", "4096") };
    let loaded = runtime
        .load_file(fixture)
        .await
        .expect("loads under the cap");
    assert_eq!(loaded.manifest().name, "fixture");
}
