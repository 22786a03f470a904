//! Idle mode: open many connections that do nothing and report what each one costs the hubs in
//! resident memory (VmRSS after − before, summed over the hub processes, divided by the connections);
//! then, if asked, keep them open a while, so something else can measure the hubs with them held.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::task::JoinSet;

use crate::client::{ConnectOpts, Protocol, Ws, open_many};
use crate::error::BenchError;
use crate::procstat;

/// `hub-bench idle`: memory per idle connection.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleConfig {
    /// Label in the results.
    #[arg(long)]
    pub target: String,
    #[arg(long, value_enum)]
    pub proto: Protocol,
    #[command(flatten)]
    pub connect: ConnectOpts,
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// How long to wait after the last connect before reading RSS, so the hubs finish their set-up.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub settle: Duration,
    /// How long to keep the connections open after the report ([`hold`]); zero: close at once.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    /// Hub processes whose RSS is measured (repeat or separate with commas).
    #[arg(long = "hub-pid", value_name = "PID", value_delimiter = ',')]
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

/// Opens the connections and measures them; returns them still open, for [`hold`].
pub async fn run(cfg: &IdleConfig) -> Result<(IdleResult, Vec<Ws>), BenchError> {
    let rss = || procstat::rss_kib_sum(&cfg.hub_pids);
    let before = rss()?;
    let start = Instant::now();
    let results = open_many(cfg.proto, &cfg.connect, None, cfg.connections, 0).await;
    let elapsed = start.elapsed().as_secs_f64();
    let first_error = results
        .iter()
        .find_map(|r| r.as_ref().err().map(ToString::to_string));
    let open: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
    tokio::time::sleep(cfg.settle).await;
    let after = rss()?;
    let connected = open.len();
    let result = IdleResult {
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
    };
    Ok((result, open))
}

/// Keeps the connections open for `duration`, or until the servers have closed them all, reading
/// each one: a connection nobody reads never answers the server's pings, and the server drops it
/// as dead. Returns how many the servers closed meanwhile.
pub async fn hold(open: Vec<Ws>, duration: Duration) -> usize {
    let mut readers = JoinSet::new();
    for ws in open {
        readers.spawn(read_until_closed(ws));
    }
    let mut closed = 0;
    let _ = tokio::time::timeout(duration, async {
        while readers.join_next().await.is_some() {
            closed += 1;
        }
    })
    .await;
    closed
}

/// tungstenite queues the pong for a ping it reads and sends it on the next read.
async fn read_until_closed(mut ws: Ws) {
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_close() {
            break;
        }
    }
}

fn per_connection_bytes(before_kib: u64, after_kib: u64, connections: usize) -> f64 {
    if connections == 0 {
        return 0.0;
    }
    after_kib.saturating_sub(before_kib) as f64 * 1024.0 / connections as f64
}

#[cfg(test)]
mod tests {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    use super::*;

    #[test]
    fn per_connection_cost() {
        assert_eq!(per_connection_bytes(1000, 1080, 10), 8192.0);
        assert_eq!(per_connection_bytes(1000, 900, 10), 0.0);
        assert_eq!(per_connection_bytes(1000, 2000, 0), 0.0);
    }

    #[tokio::test]
    async fn hold_answers_pings_and_counts_what_the_server_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut sockets = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                sockets.push(tokio_tungstenite::accept_async(tcp).await.unwrap());
            }
            let mut pongs = 0;
            for ws in &mut sockets {
                ws.send(Message::Ping(b"alive?"[..].into())).await.unwrap();
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Pong(data) = msg {
                        assert_eq!(&data[..], b"alive?");
                        pongs += 1;
                        break;
                    }
                }
                ws.close(None).await.unwrap();
            }
            pongs
        });
        let mut open = Vec::new();
        for _ in 0..2 {
            open.push(
                crate::wire::connect(&url, Default::default(), None)
                    .await
                    .unwrap()
                    .0,
            );
        }
        // Returns as soon as the server has closed both, long before the bound.
        let started = Instant::now();
        assert_eq!(hold(open, Duration::from_secs(30)).await, 2);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(server.await.unwrap(), 2, "a ping went unanswered");
    }
}
