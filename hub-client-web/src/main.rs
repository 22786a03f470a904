//! Entry point: arguments, settings, tracing, bind, run (or answer the healthcheck).

use std::process::ExitCode;

use anyhow::Context;
use hub_client_web::Settings;
use hub_client_web::cli::PROGRAM;
use service_kit::cli::Command;

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
    let args = PROGRAM.parse();
    let settings = Settings::load(args.config.as_deref())?;
    if args.command == Some(Command::Healthcheck) {
        return Ok(service_kit::healthcheck::run(settings.listen).await);
    }

    service_kit::log::init(settings.log_format);
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
    hub_client_web::run(listener, settings, service_kit::signal::stop()).await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
