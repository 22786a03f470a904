//! Entry point: arguments, settings, tracing, bind, run (or answer the healthcheck).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use hub_client_web::cli::{self, Command};
use hub_client_web::config::{LogFormat, Settings};
use hub_client_web::{health, shutdown};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hub-client-web: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    let args = cli::parse(std::env::args().skip(1))?;
    if args.command == Command::Help {
        println!("{}", cli::USAGE);
        return Ok(ExitCode::SUCCESS);
    }
    let settings = Settings::load(args.config.as_deref())?;

    if args.command == Command::Healthcheck {
        let addr = health::probe_addr(settings.listen);
        return Ok(match health::check(addr, Duration::from_secs(3)).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        });
    }

    init_tracing(settings.log_format);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        hub_url = %settings.hub_target().describe(),
        sign_in = settings.jwt_secret.is_some(),
        status_apis = settings.api_urls().len(),
        "serving the chat page"
    );
    hub_client_web::run(listener, settings, shutdown::signal()).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal: in Docker and CI logs they are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
