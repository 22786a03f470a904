//! Must-hold 8: SIGTERM closes every client with 1001 (going away) and the process exits 0 within
//! the grace period.

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::support::{Client, Hub, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_clients_with_1001_and_exits_0() {
    const GRACE: Duration = Duration::from_secs(3);
    let redis = RedisServer::start().await;
    let mut hub = Hub::builder("hub-s")
        .redis(&redis)
        .env("HUB_SHUTDOWN_GRACE", "3s")
        .start()
        .await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(Client::connect(&hub).await);
    }
    clients[0].join("elsewhere").await;

    let start = Instant::now();
    hub.sigterm();
    // Read every client at once: each must answer its close handshake for the hub to finish.
    let closes = join_all(clients.iter_mut().map(|c| c.expect_close(GRACE))).await;
    for (i, (code, frames)) in closes.into_iter().enumerate() {
        assert_eq!(
            code,
            Some(1001),
            "client {i}: close code on SIGTERM; frames before: {frames:?}"
        );
    }
    let status = hub
        .wait_exit(GRACE + Duration::from_secs(1))
        .await
        .unwrap_or_else(|| panic!("hub still running {:?} after SIGTERM", start.elapsed()));
    eprintln!(
        "hub exited {:?} after SIGTERM with {status}",
        start.elapsed()
    );
    assert!(status.success(), "hub exit status after SIGTERM: {status}");
    assert!(hub.log().lines().count() > 0, "hub wrote no log at all");
}
