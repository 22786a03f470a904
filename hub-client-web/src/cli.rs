//! Command line: `hub-client-web [healthcheck] [--config FILE]`.

use std::path::PathBuf;

pub const USAGE: &str = "\
usage: hub-client-web [--config FILE]              serve the chat page
       hub-client-web healthcheck [--config FILE]  exit 0 when this server's /health answers 200

Settings: built-in defaults, then FILE (TOML), then the environment
(WEB_LISTEN, HUB_URL, WEB_TITLE, WEB_HUB_LABEL, WEB_RECONNECT_MIN, WEB_RECONNECT_MAX,
WEB_REQUEST_HEADER_TIMEOUT, WEB_LOG_FORMAT, WEB_JWT_SECRET, WEB_TOKEN_TTL, WEB_JWT_ISSUER,
WEB_JWT_AUDIENCE).";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Serve,
    Healthcheck,
    Help,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    pub config: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}\n\n{USAGE}")]
pub struct UsageError(String);

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, UsageError> {
    let mut command = Command::Serve;
    let mut config = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "healthcheck" if command == Command::Serve => command = Command::Healthcheck,
            "-h" | "--help" | "help" => command = Command::Help,
            "--config" => {
                let file = args
                    .next()
                    .ok_or_else(|| UsageError("--config needs a file".into()))?;
                config = Some(PathBuf::from(file));
            }
            other => match other.strip_prefix("--config=") {
                Some(file) => config = Some(PathBuf::from(file)),
                None => return Err(UsageError(format!("unexpected argument {other:?}"))),
            },
        }
    }
    Ok(Args { command, config })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, UsageError> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_commands_and_config() {
        assert_eq!(p(&[]).map(|a| a.command), Ok(Command::Serve));
        let a = p(&["healthcheck", "--config", "web.toml"]).expect("valid");
        assert_eq!(a.command, Command::Healthcheck);
        assert_eq!(a.config, Some(PathBuf::from("web.toml")));
        assert_eq!(
            p(&["--config=x.toml"]).map(|a| a.config),
            Ok(Some(PathBuf::from("x.toml")))
        );
        assert!(p(&["--config"]).is_err());
        assert!(p(&["serve-please"]).is_err());
    }
}
