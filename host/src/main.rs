//! The `bss-host` command: parses the command line and runs it.

use bss_host::runtime::compiler;
use bss_host::safe_text::printable;
use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // OS strings: a path argument need not be UTF-8 (clap takes them as such too).
    let arguments: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if arguments.get(1).map(std::ffi::OsString::as_os_str)
        == Some(std::ffi::OsStr::new(compiler::CHILD_COMMAND))
    {
        return std::process::ExitCode::from(compiler::child_main(&arguments[2..]) as u8);
    }
    // A component's compile (hundreds of MB at its peak) runs in a child that takes the peak
    // with it (BSS_HOST_COMPILE_IN_PROCESS=1 compiles here instead, for comparison).
    if let Err(error) = compiler::check_memory_setting() {
        eprintln!("error: {}", printable(&error));
        return std::process::ExitCode::FAILURE;
    }
    if std::env::var_os("BSS_HOST_COMPILE_IN_PROCESS").is_none()
        && let Ok(program) = std::env::current_exe()
    {
        compiler::compile_in_child_processes(program);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BSS_HOST_LOG")
                .unwrap_or_else(|_| "info,cw_sandbox=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = bss_host::cli::Cli::parse();
    match bss_host::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) if error.is::<bss_host::cli::SomeRecordsFailed>() => {
            eprintln!("error: {}", printable(&format!("{error:#}")));
            std::process::ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {}", printable(&format!("{error:#}")));
            std::process::ExitCode::FAILURE
        }
    }
}
