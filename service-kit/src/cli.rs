//! The command line both servers take, `NAME [--config FILE] [healthcheck]`, parsed by clap:
//! `--help` and `--version` work, and an unknown argument is an error (exit code 2).

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// What a server was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
pub struct Args {
    /// TOML file of settings, read after the built-in defaults and before the environment
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Exit 0 when this server's /health answers 200, 1 otherwise (for container healthchecks)
    Healthcheck,
}

/// How one binary presents itself in `--help` and `--version`.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    pub name: &'static str,
    /// `env!("CARGO_PKG_VERSION")` of the binary's crate.
    pub version: &'static str,
    /// What running it without a subcommand does.
    pub about: &'static str,
    /// Shown after the options: where the settings come from.
    pub after_help: &'static str,
}

impl Program {
    /// The clap command: [`Args`] under this program's name.
    pub fn command(&self) -> clap::Command {
        Args::command()
            .name(self.name)
            .bin_name(self.name)
            .version(self.version)
            .about(self.about)
            .after_help(self.after_help)
    }

    /// Parses `args` (the program name first, as in `std::env::args()`).
    pub fn try_parse_from<I, T>(&self, args: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = self.command();
        let matches = command.try_get_matches_from_mut(args)?;
        Args::from_arg_matches(&matches).map_err(|e| e.format(&mut command))
    }

    /// Parses the process's arguments; on `--help` or `--version` prints and exits 0, on a bad
    /// argument prints the error and the usage and exits 2.
    pub fn parse(&self) -> Args {
        self.try_parse_from(std::env::args_os())
            .unwrap_or_else(|e| e.exit())
    }
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use super::*;

    const DEMO: Program = Program {
        name: "demo-server",
        version: "1.2.3",
        about: "Serves a demo",
        after_help: "Settings: DEMO_* variables.",
    };

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        DEMO.try_parse_from(std::iter::once("demo-server").chain(args.iter().copied()))
    }

    #[test]
    fn the_config_file_and_the_healthcheck_in_any_order() {
        let serve = parse(&[]).expect("no arguments");
        assert_eq!((serve.command, serve.config), (None, None));
        for args in [
            &["healthcheck", "--config", "a.toml"][..],
            &["--config", "a.toml", "healthcheck"],
            &["--config=a.toml", "healthcheck"],
        ] {
            let a = parse(args).expect("valid");
            assert_eq!(a.command, Some(Command::Healthcheck), "{args:?}");
            assert_eq!(a.config, Some(PathBuf::from("a.toml")), "{args:?}");
        }
    }

    #[test]
    fn help_and_version_are_answered() {
        for args in [&["--help"][..], &["-h"], &["help"]] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{args:?}");
            assert_eq!(e.exit_code(), 0);
            let text = e.to_string();
            assert!(text.contains("Serves a demo"), "{text}");
            assert!(text.contains("Usage: demo-server"), "{text}");
            assert!(text.contains("--config <FILE>"), "{text}");
            assert!(text.contains("healthcheck"), "{text}");
            assert!(text.contains("Settings: DEMO_* variables."), "{text}");
        }
        let e = parse(&["--version"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayVersion);
        assert_eq!(e.to_string().trim(), "demo-server 1.2.3");
    }

    #[test]
    fn an_unknown_or_incomplete_argument_is_an_error_with_exit_code_2() {
        for (args, kind, says) in [
            (
                &["--confg", "a.toml"][..],
                ErrorKind::UnknownArgument,
                "Usage: demo-server",
            ),
            (
                &["serve-please"],
                ErrorKind::InvalidSubcommand,
                "Usage: demo-server",
            ),
            (
                &["healthcheck", "extra"],
                ErrorKind::UnknownArgument,
                "Usage: demo-server healthcheck",
            ),
            (&["--config"], ErrorKind::InvalidValue, "'--config <FILE>'"),
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.kind(), kind, "{args:?}: {e}");
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(says), "{args:?}: {e}");
        }
    }
}
