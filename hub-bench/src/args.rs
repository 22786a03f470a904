//! The command line: one subcommand per mode, each mode's flags declared on its own config struct
//! (`--help` lists them; an unknown or misspelt flag is an error, never a silent default).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::backend::BackendConfig;
use crate::c250k::coordinator::C250kConfig;
use crate::c250k::worker_state::WorkerConfig;
use crate::idle::IdleConfig;
use crate::load::LoadConfig;
use crate::rooms::RoomsConfig;

#[derive(Debug, Parser)]
#[command(
    name = "hub-bench",
    about = "Load tool: fan-out throughput, latency and memory of WebSocket hubs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One load point: subscribers in one room, open-loop publishers, then the accounting.
    Load {
        #[command(flatten)]
        cfg: LoadConfig,
        #[command(flatten)]
        out: Output,
    },
    /// Memory per idle connection (then optionally hold them open).
    Idle {
        #[command(flatten)]
        cfg: IdleConfig,
        #[command(flatten)]
        out: Output,
    },
    /// Join and leave cost by rooms held, and what happens while they are held.
    Rooms {
        #[command(flatten)]
        cfg: Box<RoomsConfig>,
        #[command(flatten)]
        out: Output,
    },
    /// Many live connections over many hubs: connect time, memory, broadcast, personal messages,
    /// a hub killed and recovered from (bench/c250k.sh runs it).
    C250k {
        #[command(flatten)]
        cfg: Box<C250kConfig>,
    },
    /// One generator process of `c250k` (started by it).
    #[command(hide = true)]
    C250kWorker {
        #[command(flatten)]
        cfg: Box<WorkerConfig>,
    },
    /// A backend for the hooks that answers every call with `200 {}` at once (bench/proxy.sh).
    Backend {
        #[command(flatten)]
        cfg: BackendConfig,
    },
    /// Render the Markdown report of a results file.
    Report {
        /// JSON lines written by the other modes (and bench/run.sh).
        results: PathBuf,
        /// The target reported as ours.
        #[arg(long, default_value = "ours")]
        ours: String,
        /// The target compared with ours.
        #[arg(long, default_value = "socketio")]
        peer: String,
        /// Ours without history, the baseline of the history cost.
        #[arg(long, default_value = "ours-nohist")]
        baseline: String,
    },
}

/// Where a mode's JSON result goes besides stdout.
#[derive(Debug, Clone, clap::Args)]
pub struct Output {
    /// Append each JSON result line to this file too.
    #[arg(long, value_name = "RESULTS.jsonl")]
    pub json: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::client::Protocol;
    use crate::rooms::Hold;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("hub-bench").chain(line.split_whitespace()))
    }

    #[test]
    fn load_flags_as_the_bench_scripts_pass_them() {
        let cli = parse(
            "load --target ours --proto hub --url ws://a/ws,ws://b/ws --subscribers 10 \
             --publishers 2 --rate 5000 --duration 1.5s --drain 250ms --hub-pid 1,2 --hub-pid 3 \
             --redis-pid 4 --redis-addr 127.0.0.1:6379 --json r.jsonl",
        )
        .expect("valid");
        let Command::Load { cfg, out } = cli.command else {
            panic!("not load: {cli:?}")
        };
        assert_eq!(cfg.connect.urls, ["ws://a/ws", "ws://b/ws"]);
        assert_eq!(cfg.proto, Protocol::Hub);
        assert_eq!((cfg.subscribers, cfg.publishers, cfg.rate), (10, 2, 5000.0));
        assert_eq!(cfg.duration, Duration::from_millis(1500));
        assert_eq!(cfg.drain, Duration::from_millis(250));
        assert_eq!(cfg.warmup, Duration::from_secs(1), "default");
        assert_eq!(cfg.hub_pids, [1, 2, 3]);
        assert_eq!(cfg.redis_pids, [4]);
        assert_eq!(cfg.redis_addr.as_deref(), Some("127.0.0.1:6379"));
        assert_eq!(cfg.room, "bench", "default");
        assert!(!cfg.publishers_outside, "default: publishers are members");
        assert!(cfg.backend_pids.is_empty(), "default");
        assert_eq!(out.json, Some(PathBuf::from("r.jsonl")));
    }

    #[test]
    fn load_flags_as_bench_proxy_passes_them() {
        let cli = parse(
            "load --target proxy-on --proto hub --url ws://a/ws --subscribers 10 --publishers 32 \
             --publishers-outside --backend-pid 7 --rate 200000",
        )
        .expect("valid");
        let Command::Load { cfg, .. } = cli.command else {
            panic!("not load: {cli:?}")
        };
        assert!(cfg.publishers_outside);
        assert_eq!(cfg.backend_pids, [7]);
    }

    #[test]
    fn idle_flags() {
        let cli = parse(
            "idle --target t --proto socketio --url ws://a/ --connections 5 --settle 1s \
             --hold 3600s --hub-pid 9",
        )
        .expect("valid");
        let Command::Idle { cfg, out } = cli.command else {
            panic!("not idle: {cli:?}")
        };
        assert_eq!(cfg.proto, Protocol::SocketIo);
        assert_eq!(cfg.connections, 5);
        assert_eq!(cfg.hold, Duration::from_secs(3600));
        assert_eq!(cfg.connect.connect_concurrency, 256, "default");
        assert_eq!(
            cfg.connect.connect_timeout,
            Duration::from_secs(30),
            "default"
        );
        assert_eq!(out.json, None);
    }

    #[test]
    fn rooms_flags() {
        let cli = parse(
            "rooms --target t --url ws://a/ws --rooms 2000 --per-client 99 --prefix p- \
             --hold-until go --hold-max 600s --keep-general true --ready r --probe-log l \
             --hub-pid 1 --redis-pid-file f --marks 10,100",
        )
        .expect("valid");
        let Command::Rooms { cfg, .. } = cli.command else {
            panic!("not rooms: {cli:?}")
        };
        assert!(cfg.keep_general);
        assert_eq!(cfg.marks, [10, 100]);
        assert!(matches!(cfg.hold(), Hold::Until { max, .. } if max == Duration::from_secs(600)));
        let cli = parse("rooms --target t --url ws://a/ws --hold 2s").expect("valid");
        let Command::Rooms { cfg, .. } = cli.command else {
            panic!("not rooms")
        };
        assert!(matches!(cfg.hold(), Hold::For(d) if d == Duration::from_secs(2)));
        assert!(!cfg.keep_general, "default");
        assert_eq!(cfg.marks, [1000, 10_000, 50_000, 100_000], "default");
        // Holding for a time and until a file are exclusive.
        assert!(parse("rooms --target t --url u --hold 2s --hold-until f").is_err());
    }

    #[test]
    fn report_flags() {
        let cli = parse("report results.jsonl --peer other").expect("valid");
        let Command::Report {
            results,
            peer,
            ours,
            ..
        } = cli.command
        else {
            panic!("not report")
        };
        assert_eq!(results, PathBuf::from("results.jsonl"));
        assert_eq!((ours.as_str(), peer.as_str()), ("ours", "other"));
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        use clap::error::ErrorKind;
        let kind = |line: &str| parse(line).expect_err(line).kind();
        // A misspelt flag used to be taken silently as the default.
        assert_eq!(
            kind("load --target t --proto hub --url u --subscriber 10"),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            kind("idle --target t --proto mqtt --url u"),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            kind("load --target t --proto hub --url u --duration 10"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("load --target t --proto hub --url u --hub-pid x"),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            kind("load --target t --proto hub"),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(kind("frobnicate"), ErrorKind::InvalidSubcommand);
        assert_eq!(kind("load --help"), ErrorKind::DisplayHelp);
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
