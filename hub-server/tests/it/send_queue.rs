//! Issue 14.2: a client's send queue is bounded in bytes (`send_queue_bytes`, 1 MiB by default),
//! not only in frames (`send_queue`, 1024). A client that stops reading while 60 KiB messages flow
//! is closed as a slow consumer (counted in `slow_consumers`) once its queue holds a MiB — long
//! before 1024 frames (60 MiB) — and the hub's memory grows by little more than that bound.

use std::time::{Duration, Instant};

use crate::support::flood::Flood;
use crate::support::{Hub, assert_nothing_more};

/// Content of each message: 60 KiB, under `max_message_bytes` (64 KiB).
const SIZE: usize = 60 * 1024;
/// Give up after this many: 36 MiB, well short of the frame bound's 1024 frames (60 MiB) plus
/// what the kernel buffers for the unread socket.
const MAX_MESSAGES: usize = 600;

async fn slow_consumers(hub: &Hub) -> u64 {
    let health = hub.health().await.expect("health");
    health.json()["messages"]["slow_consumers"]
        .as_u64()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_once_its_queue_passes_the_byte_bound() {
    // The default byte bound (1 MiB) and frame bound (1024) are what is under test.
    let (
        hub,
        Flood {
            room: flood,
            mut sender,
            mut fast,
            slow,
        },
    ) = Flood::start(Hub::builder("hub-sqb")).await;
    assert_eq!(slow_consumers(&hub).await, 0);
    let rss_before = hub.rss_kib();

    // `fast` reads everything; `slow` is never polled again.
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while n < MAX_MESSAGES {
            let text = fast.recv_text_within(Duration::from_secs(10)).await;
            if text.contains("\"content\":\"m") {
                n += 1;
            }
        }
        fast
    });
    let padding = "x".repeat(SIZE);
    let mut sent = 0;
    let mut closed_at = None;
    let mut rss_max = rss_before;
    while sent < MAX_MESSAGES {
        sender.say(&flood, &format!("m{sent}:{padding}")).await;
        sent += 1;
        if sent % 8 == 0 {
            // Paced so that the hub and `fast` keep up: only `slow` falls behind.
            tokio::time::sleep(Duration::from_millis(20)).await;
            rss_max = rss_max.max(hub.rss_kib());
            if closed_at.is_none() && slow_consumers(&hub).await > 0 {
                closed_at = Some(sent);
            }
        }
    }
    let mut fast = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the reading client got every message in time")
        .expect("reader");
    let closed_at = closed_at.unwrap_or_else(|| {
        panic!(
            "not closed as a slow consumer after {MAX_MESSAGES} messages of {SIZE} bytes\n{}",
            hub.log()
        )
    });
    let growth_mib = (rss_max.saturating_sub(rss_before)) as f64 / 1024.0;
    eprintln!(
        "slow consumer closed after {closed_at} messages ({:.1} MiB sent); hub RSS {} KiB -> max {} KiB (+{growth_mib:.1} MiB)",
        (closed_at * SIZE) as f64 / (1024.0 * 1024.0),
        rss_before,
        rss_max
    );
    // The kernel holds several MiB of the unread socket before the hub's queue even starts to
    // fill (~4-6 MiB on loopback); the byte bound adds 1 MiB. The frame bound alone would have
    // waited for 1024 queued frames: 60 MiB more.
    assert!(
        closed_at * SIZE < 16 * 1024 * 1024,
        "closed only after {closed_at} messages"
    );
    assert!(
        growth_mib < 16.0,
        "hub RSS grew by {growth_mib:.1} MiB for one slow client with a 1 MiB bound"
    );
    // Closed as a slow consumer, once.
    let closed_slow = r#"realtime_hub_connections_closed_total{reason="slow_consumer"}"#;
    hub.wait_metric(closed_slow, 1.0, Duration::from_secs(10))
        .await;
    // The slow client is gone, the others are not: they get each other's markers, nothing before.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.connections().await != Some(2) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hub.connections().await, Some(2));
    assert_nothing_more(&mut [&mut sender, &mut fast]).await;
    assert_eq!(hub.metric(closed_slow).await, 1.0, "closed as slow once");
    // `slow_consumers` means the same thing in /health and /metrics: clients closed as slow
    // consumers (issue 25.7; /health used to count every frame refused, here dozens).
    assert_eq!(slow_consumers(&hub).await, 1, "/health's slow_consumers");
    assert_eq!(hub.metric("realtime_hub_slow_consumers_total").await, 1.0);
    drop(slow);
}
