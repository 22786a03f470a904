//! Idle mode: open many connections that do nothing and report what each one costs the hubs in
//! resident memory (VmRSS after − before, summed over the hub processes, divided by the connections).

use std::time::{Duration, Instant};

use crate::client::Protocol;
use crate::error::BenchError;
use crate::load::open_many;
use crate::procstat;

#[derive(Debug, Clone)]
pub struct IdleConfig {
    pub target: String,
    pub proto: Protocol,
    pub urls: Vec<String>,
    pub connections: usize,
    pub connect_concurrency: usize,
    pub connect_timeout: Duration,
    /// How long to wait after the last connect before reading RSS, so the hubs finish their set-up.
    pub settle: Duration,
    pub hub_pids: Vec<u32>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct IdleResult {
    pub kind: &'static str,
    pub target: String,
    pub protocol: Protocol,
    pub connections: usize,
    pub connected: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub connect_per_s: f64,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub rss_per_connection_bytes: f64,
}

pub async fn run(cfg: &IdleConfig) -> Result<IdleResult, BenchError> {
    let rss = || {
        cfg.hub_pids
            .iter()
            .map(|&p| procstat::rss_kib(p))
            .sum::<Result<u64, _>>()
    };
    let before = rss()?;
    let start = Instant::now();
    let results = open_many(
        cfg.proto,
        &cfg.urls,
        None,
        cfg.connections,
        0,
        cfg.connect_concurrency,
        cfg.connect_timeout,
    )
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    let first_error = results
        .iter()
        .find_map(|r| r.as_ref().err().map(ToString::to_string));
    let open: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
    tokio::time::sleep(cfg.settle).await;
    let after = rss()?;
    let connected = open.len();
    drop(open);
    Ok(IdleResult {
        kind: "idle",
        target: cfg.target.clone(),
        protocol: cfg.proto,
        connections: cfg.connections,
        connected,
        failed: cfg.connections - connected,
        first_error,
        connect_per_s: connected as f64 / elapsed,
        rss_before_kib: before,
        rss_after_kib: after,
        rss_per_connection_bytes: per_connection_bytes(before, after, connected),
    })
}

fn per_connection_bytes(before_kib: u64, after_kib: u64, connections: usize) -> f64 {
    if connections == 0 {
        return 0.0;
    }
    after_kib.saturating_sub(before_kib) as f64 * 1024.0 / connections as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_connection_cost() {
        assert_eq!(per_connection_bytes(1000, 1080, 10), 8192.0);
        assert_eq!(per_connection_bytes(1000, 900, 10), 0.0);
        assert_eq!(per_connection_bytes(1000, 2000, 0), 0.0);
    }
}
