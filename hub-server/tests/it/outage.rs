//! Must-hold 5: Redis outages. A killed Redis: local delivery goes on, /health says the bridge is
//! down, and after a restart on the same port the buffered cross-hub messages arrive exactly once
//! and in order. A stalled Redis (SIGSTOP) is noticed within seconds and delivery recovers.

use std::time::{Duration, Instant};

use crate::support::client::{contents_from, numbered};
use crate::support::hub::HubBuilder;
use crate::support::{
    Client, Event, Sent, TwoHubs, assert_nothing_more, assert_receives, assert_receives_one,
    member, room,
};

/// Local delivery must not wait on Redis: a same-hub message arrives within this. A delivery that
/// waited on the stalled Redis would take at least HUB_REDIS_TIMEOUT (1 s); below that, the bound
/// is slack for a loaded machine (a round trip is a few ms alone).
const LOCAL_MAX: Duration = Duration::from_millis(900);
/// Buffered cross-hub messages arrive within this after Redis is back.
const FLUSH_MAX: Duration = Duration::from_secs(10);

/// `from` says `content` in `room`; `to` (on the same hub) must get it within LOCAL_MAX.
async fn local_roundtrip(
    from: &mut Client,
    to: &mut Client,
    room: &str,
    content: &str,
) -> Duration {
    let start = Instant::now();
    from.say(room, content).await;
    let frame = to.recv_json_within(LOCAL_MAX).await;
    assert_eq!(frame["content"], content, "local delivery: {frame}");
    assert_eq!(frame["from"], from.id.as_str(), "local delivery: {frame}");
    start.elapsed()
}

struct Setup {
    hubs: TwoHubs,
    room: String,
    a1: Client,
    a2: Client,
    b1: Client,
}

/// Two hubs with a fast bridge, a1 and a2 on A, b1 on B, all in one room, the bridge proven to
/// work.
async fn setup() -> Setup {
    let hubs = TwoHubs::start_named(["hub-a", "hub-b"], HubBuilder::fast_bridge).await;
    let room = room("ops");
    let mut a1 = member(&hubs.a, &room).await;
    let mut a2 = member(&hubs.a, &room).await;
    let mut b1 = member(&hubs.b, &room).await;
    a1.say(&room, "before").await;
    for c in [&mut a2, &mut b1] {
        assert_receives_one(c, "message", Some(&room), &a1.id, "hub-a", "before").await;
    }
    Setup {
        hubs,
        room,
        a1,
        a2,
        b1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kill_keeps_local_delivery_and_flushes_the_buffer_after_restart() {
    let Setup {
        mut hubs,
        room,
        mut a1,
        mut a2,
        mut b1,
    } = setup().await;
    let (redis, a, b) = (&mut hubs.redis, &hubs.a, &hubs.b);

    redis.kill();
    // Local delivery goes on, without pause, while Redis is gone.
    let from_a1 = numbered("out-a1", 10);
    let mut worst = Duration::ZERO;
    for content in &from_a1 {
        worst = worst.max(local_roundtrip(&mut a1, &mut a2, &room, content).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("worst local latency with Redis killed: {worst:?}");
    let from_b1 = numbered("out-b1", 5);
    for content in &from_b1 {
        b1.say(&room, content).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.wait_health(503, "down", Duration::from_secs(5)).await;
    b.wait_health(503, "down", Duration::from_secs(5)).await;

    redis.restart().await;
    let restarted = Instant::now();
    // The buffered messages cross exactly once and in order, each side's.
    let got = b1.recv_chat_within(from_a1.len(), FLUSH_MAX).await;
    assert_eq!(
        contents_from(&got, &a1.id),
        from_a1,
        "B got A's buffered messages wrong: {got:#?}"
    );
    let left = FLUSH_MAX.saturating_sub(restarted.elapsed());
    for c in [&mut a1, &mut a2] {
        let got = c.recv_chat_within(from_b1.len(), left).await;
        assert_eq!(
            contents_from(&got, &b1.id),
            from_b1,
            "A got B's buffered messages wrong: {got:#?}"
        );
    }
    eprintln!(
        "buffers flushed {:?} after the restart",
        restarted.elapsed()
    );
    a.wait_health(200, "up", FLUSH_MAX).await;
    b.wait_health(200, "up", FLUSH_MAX).await;

    // The bridge is whole again: resubscribed on both sides, nothing duplicated.
    a1.say(&room, "after").await;
    b1.say(&room, "after-b").await;
    assert_receives_one(&mut b1, "message", Some(&room), &a1.id, "hub-a", "after").await;
    let b1_id = b1.id.clone();
    assert_receives_one(&mut a1, "message", Some(&room), &b1_id, "hub-b", "after-b").await;
    let (after, after_b) = (["after".to_owned()], ["after-b".to_owned()]);
    let a1_id = a1.id.clone();
    assert_receives(
        &mut a2,
        "message",
        Some(&room),
        &[
            Sent {
                from: &a1_id,
                hub: "hub-a",
                contents: &after,
            },
            Sent {
                from: &b1_id,
                hub: "hub-b",
                contents: &after_b,
            },
        ],
    )
    .await;
    assert_nothing_more(&mut [&mut a1, &mut a2, &mut b1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_redis_is_noticed_and_delivery_recovers_after_cont() {
    let Setup {
        hubs,
        room,
        mut a1,
        mut a2,
        mut b1,
    } = setup().await;
    let (redis, a, b) = (&hubs.redis, &hubs.a, &hubs.b);

    redis.stop();
    let stopped = Instant::now();
    // Keep chatting locally until hub A reports the stall; it must within ~5 s
    // (HUB_REDIS_PING_INTERVAL=500ms, HUB_REDIS_TIMEOUT=1s).
    let mut sent_in_stall = Vec::new();
    let mut worst = Duration::ZERO;
    loop {
        let content = format!("stall-{}", sent_in_stall.len());
        worst = worst.max(local_roundtrip(&mut a1, &mut a2, &room, &content).await);
        sent_in_stall.push(content);
        let health = a.health().await.expect("GET /health during the stall");
        if health.status == 503 && health.json()["bridge"] == "down" {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "hub A still reports {health:?} 5 s into the stall"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "stall noticed by hub A after {:?}; worst local latency meanwhile {worst:?}",
        stopped.elapsed()
    );
    b.wait_health(
        503,
        "down",
        Duration::from_secs(5).saturating_sub(stopped.elapsed()) + Duration::from_millis(500),
    )
    .await;

    redis.cont();
    a.wait_health(200, "up", FLUSH_MAX).await;
    b.wait_health(200, "up", FLUSH_MAX).await;
    let post = numbered("post", 5);
    for content in &post {
        a1.say(&room, content).await;
        local_roundtrip_expect(&mut a2, &a1.id, content).await;
    }
    let post_b = numbered("post-b", 3);
    for content in &post_b {
        b1.say(&room, content).await;
    }

    // b1 gets every post message exactly once and in order; what was sent during the stall may
    // come first (buffered and flushed), at most once each and in order — never after newer ones.
    let deadline = Instant::now() + FLUSH_MAX;
    let mut got = Vec::new();
    while !contents_from(&got, &a1.id).ends_with(&post) {
        match b1
            .next_event(deadline.saturating_duration_since(Instant::now()))
            .await
        {
            Some(Event::Frame(f)) => got.push(f),
            other => panic!("b1 after the stall: got {other:?}; frames so far: {got:#?}"),
        }
    }
    let from_a1 = contents_from(&got, &a1.id);
    let (stall_part, post_part) = from_a1.split_at(from_a1.len() - post.len());
    assert_eq!(post_part, post, "B got {from_a1:?}");
    let stall_seqs: Vec<usize> = stall_part
        .iter()
        .map(|c| {
            c.strip_prefix("stall-")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("B got {from_a1:?}"))
        })
        .collect();
    assert!(
        stall_seqs.windows(2).all(|w| w[0] < w[1]),
        "stall-time messages duplicated or reordered: {from_a1:?}"
    );
    eprintln!(
        "of {} messages sent during the stall, B got {}",
        sent_in_stall.len(),
        stall_seqs.len()
    );

    let b1_id = b1.id.clone();
    for c in [&mut a1, &mut a2] {
        let frames = c.recv_chat_within(post_b.len(), FLUSH_MAX).await;
        assert_eq!(
            contents_from(&frames, &b1_id),
            post_b,
            "A after the stall: {frames:#?}"
        );
    }
    assert_nothing_more(&mut [&mut a1, &mut a2, &mut b1]).await;
}

/// `to` gets `content` from `from` on the same hub within LOCAL_MAX.
async fn local_roundtrip_expect(to: &mut Client, from: &str, content: &str) {
    let frame = to.recv_json_within(LOCAL_MAX).await;
    assert_eq!(frame["content"], content, "local delivery: {frame}");
    assert_eq!(frame["from"], from, "local delivery: {frame}");
}
