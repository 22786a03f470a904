//! hub-bench command line: `load`, `idle`, `rooms` and `report` (see `hub-bench --help`).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::Parser;
use hub_bench::args::{Cli, Command, Output};
use hub_bench::{backend, c250k, idle, load, report, rooms};

fn main() -> Result<()> {
    match Cli::parse().command {
        // One thread each: the coordinator and every worker are their own processes.
        Command::C250k { cfg } => {
            let problems = c250k::coordinator::main(*cfg)?;
            if problems.is_empty() {
                return Ok(());
            }
            eprintln!("c250k: the run failed its check:");
            for p in problems {
                eprintln!("  {p}");
            }
            std::process::exit(1)
        }
        Command::C250kWorker { cfg } => c250k::worker::main(*cfg),
        // One thread: the scripts pin it to one CPU, and a `{}` answer needs no more.
        Command::Backend { cfg } => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("runtime")?
            .block_on(backend::run(&cfg))
            .context("backend"),
        command => tokio::runtime::Runtime::new()
            .context("runtime")?
            .block_on(run(command)),
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Load { cfg, out } => {
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
            emit(&out, &serde_json::to_string(&result)?)?;
        }
        Command::Idle { cfg, out } => {
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
            emit(&out, &serde_json::to_string(&r)?)?;
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
        Command::Rooms { cfg, out } => {
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
                emit(&out, &line).map_err(std::io::Error::other)
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
            emit(&out, &serde_json::to_string(&summary)?)?;
        }
        Command::Report {
            results,
            ours,
            peer,
            baseline,
        } => {
            let text = std::fs::read_to_string(&results)
                .with_context(|| format!("read {}", results.display()))?;
            let results = report::Results::parse(&text)
                .with_context(|| format!("parse {}", results.display()))?;
            let names = report::Names {
                ours: &ours,
                peer: &peer,
                baseline: &baseline,
            };
            print!("{}", report::render(&results, names));
        }
        Command::C250k { .. } | Command::C250kWorker { .. } | Command::Backend { .. } => {
            unreachable!("run on their own")
        }
    }
    Ok(())
}

/// Print the JSON line and append it to `--json` when given.
fn emit(out: &Output, line: &str) -> Result<()> {
    println!("{line}");
    if let Some(path) = &out.json {
        let mut file = open_append(path)?;
        writeln!(file, "{line}")?;
    }
    Ok(())
}

fn open_append(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))
}
