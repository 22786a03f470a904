//! `hub-server [--config FILE]` runs a hub; `hub-server healthcheck` asks a running one.

use std::process::ExitCode;

use anyhow::Context;
use hub_server::config::Settings;
use service_kit::cli::{Command, Program};

const PROGRAM: Program = Program {
    name: "hub-server",
    version: env!("CARGO_PKG_VERSION"),
    about: "Runs a realtime-hub WebSocket hub (rooms, local fan-out, a Redis bridge between hubs)",
    after_help: "\
Settings: built-in defaults, then FILE (TOML), then the environment: HUB_<KEY> for every key
(HUB_LISTEN, HUB_NAME, ...), and REDIS_URL, REDIS_CLUSTER_NODES (see the README's Configuration).",
};

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = PROGRAM.parse();
    let settings = Settings::load(args.config.as_deref())?;
    if args.command == Some(Command::Healthcheck) {
        return Ok(service_kit::healthcheck::run(settings.listen).await);
    }
    service_kit::log::init(settings.log_format);
    let listener = hub_server::listen(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    hub_server::run(listener, settings, service_kit::signal::stop()).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<service_kit::cli::Args, clap::Error> {
        PROGRAM.try_parse_from(std::iter::once("hub-server").chain(args.iter().copied()))
    }

    /// What the Dockerfile, compose file and Kubernetes manifests run, and `--config`.
    #[test]
    fn the_command_lines_in_use_parse() {
        assert_eq!(parse(&[]).expect("serve").command, None);
        let a = parse(&["healthcheck"]).expect("healthcheck");
        assert_eq!(a.command, Some(Command::Healthcheck));
        let a = parse(&["--config", "hub.toml"]).expect("config");
        assert_eq!(a.config.as_deref(), Some(std::path::Path::new("hub.toml")));
    }

    #[test]
    fn help_works_and_an_unknown_flag_is_a_usage_error() {
        let help = parse(&["--help"]).unwrap_err();
        assert_eq!((help.kind(), help.exit_code()), (ErrorKind::DisplayHelp, 0));
        let text = help.to_string();
        assert!(
            text.contains("Usage: hub-server [OPTIONS] [COMMAND]"),
            "{text}"
        );
        assert!(text.contains("REDIS_URL"), "{text}");
        let typo = parse(&["--confg", "hub.toml"]).unwrap_err();
        assert_eq!(
            (typo.kind(), typo.exit_code()),
            (ErrorKind::UnknownArgument, 2)
        );
    }
}
