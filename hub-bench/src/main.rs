//! hub-bench command line: `load`, `idle`, `rooms` and `report` (see `hub-bench help`).

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hub_bench::args::Flags;
use hub_bench::client::Protocol;
use hub_bench::{idle, load, report, rooms};

const USAGE: &str = "\
hub-bench load   --target NAME --proto hub|socketio --url WS_URL[,WS_URL…] --rate DELIVERIES_PER_S
                 [--subscribers 1000] [--publishers 4] [--room bench] [--duration 10s] [--warmup 1s]
                 [--drain 2s] [--payload-bytes 0] [--connect-concurrency 256] [--hub-pid PID,…]
                 [--redis-pid PID,…] [--redis-addr HOST:PORT] [--json RESULTS.jsonl]
hub-bench idle   --target NAME --proto hub|socketio --url WS_URL[,…] [--connections 10000]
                 [--settle 3s] [--hold 0s] [--hub-pid PID,…] [--json RESULTS.jsonl]
hub-bench rooms  --target NAME --url WS_URL[,…] [--rooms 100000] [--per-client 99] [--clients N]
                 [--marks 1000,10000,50000,100000] [--window 4] [--prefix rb-] [--settle 500ms]
                 [--leave-settle 6s]
                 [--block-timeout 300s] [--hold 0s | --hold-until FILE [--hold-max 600s]] [--keep-general false]
                 [--ready FILE] [--probe-log FILE] [--hub-pid PID,…] [--redis-pid PID,…]
                 [--redis-pid-file FILE] [--json RESULTS.jsonl]
hub-bench report RESULTS.jsonl [--ours ours] [--peer socketio] [--baseline ours-nohist]";

#[tokio::main]
async fn main() -> Result<()> {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    match command.as_str() {
        "load" => {
            let f = Flags::parse(argv)?;
            let cfg = load::LoadConfig {
                target: f.required("target")?,
                proto: f.required("proto")?.parse::<Protocol>()?,
                urls: f.all("url"),
                room: f.get("room", "bench".to_owned())?,
                subscribers: f.get("subscribers", 1000)?,
                publishers: f.get("publishers", 4)?,
                rate: f.get("rate", 50_000.0)?,
                duration: f.duration("duration", Duration::from_secs(10))?,
                warmup: f.duration("warmup", Duration::from_secs(1))?,
                drain: f.duration("drain", Duration::from_secs(2))?,
                payload_bytes: f.get("payload-bytes", 0)?,
                connect_concurrency: f.get("connect-concurrency", 256)?,
                connect_timeout: f.duration("connect-timeout", Duration::from_secs(30))?,
                hub_pids: f.pids("hub-pid")?,
                redis_pids: f.pids("redis-pid")?,
                redis_addr: f.required("redis-addr").ok(),
            };
            let result = load::run(&cfg)
                .await
                .with_context(|| format!("load point on {}", cfg.target))?;
            eprintln!(
                "{:>11} {:>5} subs offered {:>9.0}/s delivered {:>9.0}/s p50 {:>7.2} p99 {:>8.2} p99.9 {:>8.2} ms \
                 (tool send lag p99 {:.2}) lost {} dup {} reord {} disc {} hub {:.2} µs/del {:.1} µs/msg \
                 redis {:.2} µs/del {:.1} µs/msg{} CPU hub {:.0}% redis {:.0}% tool {:.0}% other {:.0}% steal {:.0}% {}{}",
                result.target,
                result.subscribers,
                result.offered_deliveries_per_s,
                result.delivered_per_s,
                result.latency.p50_ms,
                result.latency.p99_ms,
                result.latency.p999_ms,
                result.latency.send_lag_p99_ms,
                result.counts.lost,
                result.counts.duplicated,
                result.counts.reordered,
                result.disconnects,
                result.hub_cpu_us_per_delivery,
                result.hub_cpu_us_per_msg,
                result.redis_cpu_us_per_delivery,
                result.redis_cpu_us_per_msg,
                result
                    .redis_commands
                    .first()
                    .map(|c| format!(" ({} {:.2} µs/call)", c.command, c.usec_per_call))
                    .unwrap_or_default(),
                result.hub_cpu_pct,
                result.redis_cpu_pct,
                result.tool_cpu_pct,
                result.other_cpu_pct,
                result.steal_cpu_pct,
                if result.disturbed { "DISTURBED " } else { "" },
                if result.sustainable {
                    "ok"
                } else {
                    "NOT SUSTAINABLE"
                },
            );
            for (reason, n) in &result.disconnect_reasons {
                eprintln!("{:>11} disconnected: {n} × {reason}", "");
            }
            emit(&f, &serde_json::to_string(&result)?)?;
        }
        "idle" => {
            let f = Flags::parse(argv)?;
            let cfg = idle::IdleConfig {
                target: f.required("target")?,
                proto: f.required("proto")?.parse::<Protocol>()?,
                urls: f.all("url"),
                connections: f.get("connections", 10_000)?,
                connect_concurrency: f.get("connect-concurrency", 256)?,
                connect_timeout: f.duration("connect-timeout", Duration::from_secs(30))?,
                settle: f.duration("settle", Duration::from_secs(3))?,
                hold: f.duration("hold", Duration::ZERO)?,
                hub_pids: f.pids("hub-pid")?,
            };
            let (r, open) = idle::run(&cfg)
                .await
                .with_context(|| format!("idle run on {}", cfg.target))?;
            eprintln!(
                "{:>9} idle: {} connected ({} failed{}), {:.0} connects/s, hub RSS {} → {} KiB = {:.2} KiB per connection",
                r.target,
                r.connected,
                r.failed,
                r.first_error
                    .as_deref()
                    .map(|e| format!(", first: {e}"))
                    .unwrap_or_default(),
                r.connect_per_s,
                r.rss_before_kib,
                r.rss_after_kib,
                r.rss_per_connection_bytes / 1024.0
            );
            emit(&f, &serde_json::to_string(&r)?)?;
            if !cfg.hold.is_zero() {
                let held = open.len();
                eprintln!(
                    "{:>9} idle: holding {held} connections for {:?}",
                    r.target, cfg.hold
                );
                let closed = idle::hold(open, cfg.hold).await;
                eprintln!(
                    "{:>9} idle: {closed} of {held} closed by the server",
                    r.target
                );
            }
        }
        "rooms" => {
            let f = Flags::parse(argv)?;
            let hold = match f.required("hold-until") {
                Ok(file) => rooms::Hold::Until {
                    file: file.into(),
                    max: f.duration("hold-max", Duration::from_secs(600))?,
                },
                Err(_) => rooms::Hold::For(f.duration("hold", Duration::ZERO)?),
            };
            let marks = f
                .all("marks")
                .iter()
                .map(|m| m.parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .context("--marks: room counts")?;
            let cfg = rooms::RoomsConfig {
                target: f.required("target")?,
                urls: f.all("url"),
                rooms: f.get("rooms", 100_000)?,
                per_client: f.get("per-client", 99)?,
                clients: f.required("clients").ok().map(|c| c.parse()).transpose()?,
                marks: if marks.is_empty() {
                    vec![1000, 10_000, 50_000, 100_000]
                } else {
                    marks
                },
                window: f.get("window", 4)?,
                prefix: f.get("prefix", "rb-".to_owned())?,
                connect_concurrency: f.get("connect-concurrency", 256)?,
                connect_timeout: f.duration("connect-timeout", Duration::from_secs(30))?,
                block_timeout: f.duration("block-timeout", Duration::from_secs(300))?,
                settle: f.duration("settle", Duration::from_millis(500))?,
                leave_settle: f.duration("leave-settle", Duration::from_secs(6))?,
                hold,
                keep_general: f.get("keep-general", false)?,
                ready: f.required("ready").ok().map(Into::into),
                probe_log: f.required("probe-log").ok().map(Into::into),
                hub_pids: f.pids("hub-pid")?,
                redis_pids: f.pids("redis-pid")?,
                redis_pid_file: f.required("redis-pid-file").ok().map(Into::into),
            };
            let summary = rooms::run(&cfg, |r| {
                eprintln!(
                    "{:>9} rooms: {:>5} {:>6} → {:>6} rooms: {:>6} in {:>6.2} s = {:>7.1} µs each (wall), \
                     latency p50 {:>6} p99 {:>7} max {:>7} µs, CPU hub {:>5.1} redis {:>5.1} tool {:>5.1} µs each, \
                     others {:>3.0}% CPU, hub RSS {} KiB, {} errors{}",
                    r.target,
                    format!("{:?}", r.op).to_lowercase(),
                    r.rooms_before,
                    r.rooms_after,
                    r.ops,
                    r.wall_s,
                    r.us_per_op,
                    r.latency_p50_us,
                    r.latency_p99_us,
                    r.latency_max_us,
                    r.hub_cpu_us_per_op,
                    r.redis_cpu_us_per_op,
                    r.tool_cpu_us_per_op,
                    r.other_cpu_pct,
                    r.hub_rss_kib,
                    r.errors,
                    r.first_error
                        .as_deref()
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default(),
                );
                let line = serde_json::to_string(r).map_err(std::io::Error::other)?;
                emit(&f, &line).map_err(std::io::Error::other)
            })
            .await
            .with_context(|| format!("rooms run on {}", cfg.target))?;
            eprintln!(
                "{:>9} rooms: hub RSS {} KiB connected, {} KiB with {} rooms held = {:.0} bytes per room, {} KiB after leaving; \
                 held {:.1} s, {} messages received meanwhile",
                summary.target,
                summary.rss_connected_kib,
                summary.rss_held_kib,
                summary.rooms,
                summary.rss_per_room_bytes,
                summary.rss_left_kib,
                summary.held_s,
                summary.messages_while_held
            );
            emit(&f, &serde_json::to_string(&summary)?)?;
        }
        "report" => {
            let Some(path) = argv.next() else {
                bail!("usage:\n{USAGE}")
            };
            let f = Flags::parse(argv)?;
            let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
            let results = report::Results::parse(&text).with_context(|| format!("parse {path}"))?;
            let (ours, peer, baseline) = (
                f.get("ours", "ours".to_owned())?,
                f.get("peer", "socketio".to_owned())?,
                f.get("baseline", "ours-nohist".to_owned())?,
            );
            let names = report::Names {
                ours: &ours,
                peer: &peer,
                baseline: &baseline,
            };
            print!("{}", report::render(&results, names));
        }
        _ => bail!("usage:\n{USAGE}"),
    }
    Ok(())
}

/// Print the JSON line and append it to `--json` when given.
fn emit(f: &Flags, line: &str) -> Result<()> {
    println!("{line}");
    if let Ok(path) = f.required("json") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("open {path}"))?;
        writeln!(file, "{line}")?;
    }
    Ok(())
}
