//! `hub-server [--config FILE]` runs a hub; `hub-server healthcheck` asks a running one.

use std::path::PathBuf;

use anyhow::{Context, bail};
use hub_server::config::Settings;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut config_file: Option<PathBuf> = None;
    let mut healthcheck = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => {
                config_file = Some(args.next().context("--config needs a file path")?.into())
            }
            "healthcheck" => healthcheck = true,
            "-h" | "--help" => {
                println!(
                    "usage: hub-server [--config FILE.toml] [healthcheck]\nSettings: see README (HUB_* environment variables, REDIS_URL)."
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?}; try --help"),
        }
    }
    let settings = Settings::load(config_file.as_deref())?;
    if healthcheck {
        std::process::exit(if hub_server::health::check(settings.listen).await {
            0
        } else {
            1
        });
    }
    hub_server::telemetry::init(settings.log_format);
    let listener = hub_server::listen(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    hub_server::run(listener, settings, hub_server::shutdown::signal()).await?;
    Ok(())
}
