//! The Rust SDK's conformance run: every scenario of `clients/conformance/scenarios.json` (the
//! same file the JavaScript SDK's runners play), against real hub-server processes, a real
//! redis-server and TCP proxies that break connections. One line per scenario; the run fails if
//! any scenario does.
//!
//! `cargo test -p hub-client --test conformance [-- NAME…]` runs every scenario, or those named.
//! The hub is `target/debug/hub-server`, built first with `cargo build -p hub-server` (or
//! `HUB_SERVER_BIN`); each scenario's logs are kept under the temp directory when it fails.
//! `CONFORMANCE_VERBOSE=1` prints what each check saw.

mod agent;
mod checks;
mod runner;
mod scenario;
#[allow(
    dead_code,
    reason = "shared with the integration tests: each test binary uses a part"
)]
#[path = "../support/mod.rs"]
mod support;
mod world;

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use runner::Runner;
use scenario::{Defaults, Scenario};

fn main() -> ExitCode {
    // Arguments cargo's test harness would take are accepted and ignored; others name scenarios.
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    match run(&names) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("conformance (rust): {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(names: &[String]) -> Result<bool, String> {
    let file = scenario::load()?;
    let unknown: Vec<&String> = names
        .iter()
        .filter(|n| !file.scenarios.iter().any(|s| &s.name == *n))
        .collect();
    if !unknown.is_empty() {
        return Err(format!("no scenario named {unknown:?}"));
    }
    support::bins::check_redis()?;
    println!("conformance (rust): hub-server from cargo build -p hub-server (or HUB_SERVER_BIN)");
    let hub_bin = support::bins::hub_server()?;
    let log_root =
        std::env::temp_dir().join(format!("hub-client-conformance-{}", std::process::id()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let chosen: Vec<&Scenario> = file
        .scenarios
        .iter()
        .filter(|s| names.is_empty() || names.contains(&s.name))
        .collect();
    println!(
        "conformance (rust): {} scenarios from {}",
        chosen.len(),
        scenario::path().display()
    );
    let mut failed = Vec::new();
    for s in chosen {
        let started = Instant::now();
        let log_dir = world::log_dir(&log_root, &s.name);
        std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
        let outcome = runtime.block_on(play(s, &file.defaults, &hub_bin, &log_dir));
        let secs = started.elapsed().as_secs_f64();
        match outcome {
            Ok(summary) => {
                println!("scenario {:<26} ok      {secs:6.1} s  {summary}", s.name);
                let _ = std::fs::remove_dir_all(&log_dir);
            }
            Err(why) => {
                println!(
                    "scenario {:<26} FAILED  {secs:6.1} s  ({})",
                    s.name, s.title
                );
                println!("    {}", why.replace('\n', "\n    "));
                println!("    logs: {}", log_dir.display());
                failed.push(s.name.clone());
            }
        }
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    if failed.is_empty() {
        let _ = std::fs::remove_dir_all(&log_root);
        println!("conformance (rust): all passed");
        Ok(true)
    } else {
        println!("conformance (rust): FAILED: {}", failed.join(", "));
        Ok(false)
    }
}

/// Plays one scenario: its steps in order, the first failure ends it.
async fn play(
    s: &Scenario,
    defaults: &Defaults,
    hub_bin: &Path,
    log_dir: &Path,
) -> Result<String, String> {
    let mut runner = Runner::start(s, defaults, hub_bin, log_dir).await?;
    let mut checks = 0;
    let mut result = Ok(());
    for (i, step) in s.steps.iter().enumerate() {
        let outcome = match (&step.action, &step.check) {
            (Some(action), None) => runner.act(step, action).await,
            (None, Some(check)) => runner.check(step, check).await.map(|summary| {
                checks += 1;
                if std::env::var_os("CONFORMANCE_VERBOSE").is_some() {
                    println!("    {check}: {summary}");
                }
            }),
            _ => Err("a step has \"do\" or \"check\"".to_owned()),
        };
        if let Err(why) = outcome {
            let written = s.written.get(i).map_or("", String::as_str);
            result = Err(format!("step {} {written}:\n{why}", i + 1));
            break;
        }
    }
    runner.finish().await;
    result.map(|()| format!("{} steps, {checks} checks", s.steps.len()))
}
