//! The `cw-sandbox` command: runs the sandbox until interrupted, for people trying a connector by hand.
//! Prints the URL to type as "ConnectWise URL" and the credentials to use; flags set credentials and faults.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use cw_sandbox::{Faults, Sandbox, SandboxConfig};

/// A local stand-in for the ConnectWise Manage REST API.
#[derive(Debug, Parser)]
#[command(name = "cw-sandbox", version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Company id (the first half of the API user name).
    #[arg(long, default_value = "sandbox")]
    company: String,
    /// API public key.
    #[arg(long, default_value = "sandbox-public")]
    public_key: String,
    /// API private key.
    #[arg(long, default_value = "sandbox-private")]
    private_key: String,
    /// Answer every Nth API request with 429.
    #[arg(long, value_name = "N")]
    rate_limit_every: Option<u32>,
    /// Retry-After seconds of those 429s.
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    retry_after: u32,
    /// Answer every Nth API request with a server error.
    #[arg(long, value_name = "N")]
    server_error_every: Option<u32>,
    /// Answer this fraction (0.0-1.0) of API requests with a server error.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    server_error_rate: f64,
    /// Status of injected server errors (500 or 503).
    #[arg(long, value_name = "STATUS", default_value_t = 500)]
    server_error_status: u16,
    /// Seed of the random server errors.
    #[arg(long, default_value_t = 0x5eed)]
    seed: u64,
    /// Milliseconds added to every API response.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Answer every Nth API request with a truncated JSON body.
    #[arg(long, value_name = "N")]
    malformed_every: Option<u32>,
    /// Store the Nth POST but never answer it.
    #[arg(long, value_name = "N")]
    stall_post: Option<u64>,
    /// Do not log each request.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if !args.quiet {
        tracing_subscriber::fmt().with_target(false).init();
    }
    let faults = Faults {
        rate_limit_every: args.rate_limit_every,
        retry_after_secs: args.retry_after,
        server_error_every: args.server_error_every,
        server_error_rate: args.server_error_rate,
        server_error_status: args.server_error_status,
        seed: args.seed,
        latency: Duration::from_millis(args.latency_ms),
        malformed_every: args.malformed_every,
        stall_post: args.stall_post,
    };
    let config = SandboxConfig {
        company_id: args.company,
        public_key: args.public_key,
        private_key: args.private_key,
        faults,
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::start_on(args.listen, config).await?;
    println!("cw-sandbox: ConnectWise Manage stand-in listening");
    println!("  ConnectWise URL : {}", sandbox.base_url());
    println!("  API root        : {}", sandbox.api_url());
    println!("  Company id      : {}", sandbox.company_id());
    println!("  Public key      : {}", sandbox.public_key());
    println!("  Private key     : {}", sandbox.private_key());
    println!("  Client id       : any non-empty clientId header");
    println!(
        "  Callback key    : {}{}{} (signs deliveries to system/callbacks)",
        sandbox.base_url(),
        cw_sandbox::callbacks::KEYS_PATH,
        sandbox.signing_key().id
    );
    println!(
        "  Try             : curl -H 'clientId: test' -H 'Authorization: {}' {}/company/companies/statuses",
        sandbox.authorization_header(),
        sandbox.api_url()
    );
    println!("Press Ctrl-C to stop.");
    std::future::pending::<()>().await;
    Ok(())
}
