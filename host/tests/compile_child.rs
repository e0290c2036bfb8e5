//! A compile stopped before it ended is not a verdict on the component. The compiler child is
//! killed (as the kernel's out-of-memory killer would) through a stand-in program: the load fails
//! as stopped, naming the signal, the component is not refused for what it is, and the next load
//! of the same file compiles it (through the real binary) and serves it. A wrong memory cap stops
//! the command; a command's own compile is not capped (`compile_cap.rs` has the capped one).
//!
//! A test binary of its own: which program compiles is a process-wide setting.

mod common;

use std::os::unix::fs::PermissionsExt;

use bss_host::app::{App, Connectors, OpenOptions};
use bss_host::registry::RegistryError;
use bss_host::runtime::LoadError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_compile_is_tried_again_and_not_refused_as_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let (data, plugins) = (dir.path().join("data"), dir.path().join("plugins"));
    std::fs::create_dir_all(&plugins).unwrap();
    // Dies by SIGKILL while `die` exists, else is the real compiler child.
    let die = dir.path().join("die");
    let program = dir.path().join("compiler.sh");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nif [ -e '{}' ]; then cat >/dev/null; kill -KILL $$; fi\nexec '{}' \"$@\"\n",
            die.display(),
            env!("CARGO_BIN_EXE_bss-host")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    bss_host::runtime::compiler::compile_in_child_processes(program);

    let app = App::open_with(
        &data,
        OpenOptions {
            plugins: Some(&plugins),
            allow_unsigned: true,
            connectors: Connectors::None,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let file = plugins.join("fixture.wasm");
    std::fs::copy(common::FIXTURE_WASM, &file).unwrap();

    std::fs::write(&die, b"").unwrap();
    let error = match app.registry.load_file(&file).await {
        Ok(_) => panic!("a killed compile loaded"),
        Err(error) => error,
    };
    assert!(
        matches!(
            &error,
            RegistryError::Load(LoadError::CompileStopped { reason, .. })
                if reason.contains("signal: 9")
        ),
        "{error:?}"
    );
    assert!(!error.is_for_content(), "{error}");
    let said = error.to_string();
    assert!(
        said.contains("could not be compiled this time") && said.contains("tried again"),
        "{said}"
    );
    assert!(!said.contains("not a valid"), "{said}");

    std::fs::remove_file(&die).unwrap();
    let loaded = app
        .registry
        .load_file(&file)
        .await
        .expect("the same file loads once its compile is not stopped");
    assert_eq!(loaded.connector.manifest().name, "fixture");
}

#[test]
fn a_wrong_memory_cap_is_named_and_a_commands_own_compile_is_not_capped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // `connectors check` compiles into the author's cache: an empty one of its own here, so the
    // fixture is compiled (not found compiled by another test).
    let cache = dir.path().join("cache");
    let check = |cap: Option<&str>| {
        let mut command =
            common::cli::HOST.command(&data, &["connectors", "check", common::FIXTURE_WASM]);
        command.env("XDG_CACHE_HOME", &cache);
        if let Some(cap) = cap {
            command.env("BSS_HOST_COMPILE_MEMORY_MB", cap);
        }
        command.output().unwrap()
    };
    let wrong = check(Some("lots"));
    let said = common::cli::text(&wrong);
    assert!(!wrong.status.success(), "{said}");
    assert!(
        said.contains("BSS_HOST_COMPILE_MEMORY_MB=lots is not a number of MiB"),
        "{said}"
    );
    // 8 MiB is far below what Cranelift needs for the fixture, but only `serve`'s background
    // compiles are capped: the author's command compiles it.
    let fine = check(Some("8"));
    let said = common::cli::text(&fine);
    assert!(
        fine.status.success()
            && said.contains("ok: this host loads it")
            && !said.contains("from the compile cache"),
        "{said}"
    );
}
