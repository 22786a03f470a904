//! Issue 25.7, bounded and honest at the edges, against real hubs and a real Redis: messages
//! still queued for a channel the hub left are not counted as `missed`.

use std::time::Duration;

use serde_json::json;

use crate::support::{Client, Event, Hub, RedisServer, room};

async fn redis_counter(hub: &Hub, name: &str) -> u64 {
    let health = hub.health().await.expect("health").json();
    health["redis"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no redis.{name} in {health}"))
}

/// A member of room `r` on hub2 joins and leaves it in a loop while hub1 publishes to it
/// steadily: each leave unsubscribes hub2 with messages still queued for the channel, each join
/// subscribes it again. Nothing is lost (hub2 only stopped listening), so nothing may be counted
/// as missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_leave_loop_counts_nothing_missed() {
    let redis = RedisServer::start().await;
    let hub1 = Hub::builder("edge1")
        .redis(&redis)
        .env("HUB_HISTORY_SIZE", "0")
        .env("HUB_RATE_LIMIT_PER_SEC", "100000")
        .env("HUB_RATE_LIMIT_BURST", "100000")
        .start()
        .await;
    let hub2 = Hub::builder("edge2")
        .redis(&redis)
        .env("HUB_HISTORY_SIZE", "0")
        .start()
        .await;
    let r = room("loop");
    let mut talker = Client::connect(&hub1).await;
    talker.join(&r).await;
    let mut member = Client::connect(&hub2).await;

    let talk_room = r.clone();
    let talk = tokio::spawn(async move {
        // ~2,000 messages a second for the length of the loop.
        let mut sent = 0u64;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
        while tokio::time::Instant::now() < deadline {
            for _ in 0..20 {
                talker.say(&talk_room, &format!("m{sent}")).await;
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (talker, sent)
    });
    let mut received = 0;
    for _ in 0..40 {
        member.send_json(&json!({"type": "join", "room": r})).await;
        loop {
            let frame = member.recv_json().await;
            match frame["type"].as_str() {
                Some("joined") => break,
                Some("message") => received += 1,
                _ => {}
            }
        }
        // Take what arrives for a moment, then leave with more on its way.
        let until = tokio::time::Instant::now() + Duration::from_millis(50);
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            match member.next_event(left).await {
                Some(Event::Frame(frame)) if frame["type"] == "message" => received += 1,
                Some(Event::Frame(_)) => {}
                Some(other) => panic!("hub2's member: {other:?}"),
                None => break,
            }
        }
        member.send_json(&json!({"type": "leave", "room": r})).await;
        // Up to `left`: messages of the room may still be in the queue before it.
        loop {
            let frame = member.recv_json().await;
            if frame["type"] == "left" {
                break;
            }
        }
    }
    let (_talker, sent) = talk.await.expect("talker");
    println!("{sent} messages sent; {received} received during 40 joins on hub2");
    assert!(received > 0, "the loop never overlapped the traffic");
    assert_eq!(
        redis_counter(&hub2, "missed").await,
        0,
        "hub2 counted messages as missed while only its subscription came and went\n{}",
        hub2.log()
    );
}
