//! Must-hold 4: the client protocol on one hub — welcome, join/leave/message/broadcast/ping, plain
//! text to the default room, and an error frame (never a drop) for every kind of bad frame.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, Hub, RedisServer, assert_nothing_more, assert_receives_one, room};

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

/// RFC 3339 in UTC or with an offset, e.g. 2026-11-23T19:00:00.123Z.
fn is_rfc3339(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s[19..].contains(['+', '-']))
}

#[tokio::test]
async fn welcome_frame_describes_the_client_and_the_hub() {
    let redis = RedisServer::start().await;
    let hub = Hub::with_redis("hub-p", &redis).await;
    let c1 = Client::connect(&hub).await;
    let c2 = Client::connect(&hub).await;
    let w = &c1.welcome;
    assert_eq!(w["type"], "welcome");
    assert!(is_uuid(&w["client_id"]), "client_id is not a UUID: {w}");
    assert_eq!(w["hub"], "hub-p", "{w}");
    assert!(is_uuid(&w["instance_id"]), "instance_id is not a UUID: {w}");
    assert_eq!(
        w["rooms"],
        json!(["general", format!("user:{}", c1.id)]),
        "every client starts in general and its personal room: {w}"
    );
    assert_ne!(c1.id, c2.id, "client ids must be unique");
    assert_eq!(
        c2.welcome["instance_id"], w["instance_id"],
        "one process, one instance id"
    );

    let health = hub.health().await.expect("GET /health");
    assert_eq!(health.status, 200, "{health:?}");
    let body = health.json();
    assert_eq!(body["hub"], "hub-p", "{body}");
    assert_eq!(body["instance_id"], w["instance_id"], "{body}");
    assert_eq!(body["bridge"], "up", "{body}");
    assert_eq!(body["connections"], 2, "{body}");
}

#[tokio::test]
async fn join_leave_message_broadcast_and_ping() {
    let redis = RedisServer::start().await;
    let hub = Hub::with_redis("hub-p", &redis).await;
    let r = room("r");
    let mut a = Client::connect(&hub).await;
    let mut b = Client::connect(&hub).await;
    let mut c = Client::connect(&hub).await;
    a.join(&r).await;
    b.join(&r).await;

    a.say(&r, "hello").await;
    let frame = b.recv_json().await;
    assert_eq!(frame["type"], "message", "{frame}");
    assert_eq!(frame["room"], r.as_str(), "{frame}");
    assert_eq!(frame["from"], a.id.as_str(), "{frame}");
    assert_eq!(frame["content"], "hello", "{frame}");
    assert_eq!(frame["hub"], "hub-p", "{frame}");
    assert!(is_uuid(&frame["id"]), "message id is not a UUID: {frame}");
    assert!(
        is_rfc3339(&frame["timestamp"]),
        "timestamp not RFC 3339: {frame}"
    );

    a.send_json(&json!({"type": "ping"})).await;
    assert_eq!(a.recv_json().await, json!({"type": "pong"}));

    // No room → the default room, where all three are.
    a.send_json(&json!({"type": "message", "content": "to general"}))
        .await;
    let content = "to general";
    for x in [&mut b, &mut c] {
        assert_receives_one(x, "message", Some("general"), &a.id, "hub-p", content).await;
    }

    a.broadcast("to all").await;
    let content = "to all";
    for x in [&mut b, &mut c] {
        assert_receives_one(x, "broadcast", None, &a.id, "hub-p", content).await;
    }

    // After leaving, b hears nothing from r; after leaving general, nothing from general either.
    b.leave(&r).await;
    b.leave("general").await;
    a.say(&r, "after leave").await;
    a.say("general", "general after leave").await;
    let content = "general after leave";
    assert_receives_one(&mut c, "message", Some("general"), &a.id, "hub-p", content).await;
    // Rejoining works, and only new messages arrive.
    b.join(&r).await;
    a.say(&r, "welcome back").await;
    let content = "welcome back";
    assert_receives_one(&mut b, "message", Some(&r), &a.id, "hub-p", content).await;
    assert_nothing_more(&mut [&mut a, &mut b, &mut c]).await;
}

#[tokio::test]
async fn plain_text_goes_to_the_default_room() {
    let redis = RedisServer::start().await;
    let hub = Hub::with_redis("hub-p", &redis).await;
    let mut a = Client::connect(&hub).await;
    let mut b = Client::connect(&hub).await;
    a.send_text("just some words, not JSON").await;
    let content = "just some words, not JSON";
    assert_receives_one(&mut b, "message", Some("general"), &a.id, "hub-p", content).await;
    assert_nothing_more(&mut [&mut a, &mut b]).await;
}

#[tokio::test]
async fn bad_frames_get_an_error_and_the_connection_keeps_working() {
    let redis = RedisServer::start().await;
    let hub = Hub::with_redis("hub-p", &redis).await;
    let mut a = Client::connect(&hub).await;
    let mut b = Client::connect(&hub).await;

    let long_room = "x".repeat(65);
    let join = |room: &str| Message::text(json!({"type": "join", "room": room}).to_string());
    // (what is sent, the error code expected; None = any code, the frame is bad in more than one way)
    let cases: Vec<(&str, Message, Option<&str>)> = vec![
        (
            "truncated JSON",
            Message::text(r#"{"type":"message","room":"general","content":"#),
            Some("bad_json"),
        ),
        (
            "JSON with a syntax error",
            Message::text(r#"{"type": "ping",}"#),
            Some("bad_json"),
        ),
        (
            "unknown type",
            Message::text(r#"{"type":"dance"}"#),
            Some("unknown_type"),
        ),
        ("room with a space", join("has space"), Some("bad_room")),
        ("empty room", join(""), Some("bad_room")),
        ("65-char room", join(&long_room), Some("bad_room")),
        ("room with a slash", join("a/b"), Some("bad_room")),
        ("non-ASCII room", join("café"), Some("bad_room")),
        (
            "message to a bad room",
            Message::text(
                json!({"type": "message", "room": "no way!", "content": "x"}).to_string(),
            ),
            Some("bad_room"),
        ),
        (
            "binary frame",
            Message::binary(vec![1u8, 2, 3]),
            Some("binary_unsupported"),
        ),
        (
            "join without room",
            Message::text(r#"{"type":"join"}"#),
            None,
        ),
        (
            "content is a number",
            Message::text(r#"{"type":"message","room":"general","content":42}"#),
            None,
        ),
    ];
    for (what, frame, code) in cases {
        a.send(frame)
            .await
            .unwrap_or_else(|e| panic!("{what}: send failed: {e}"));
        let reply = a.recv_json().await;
        assert_eq!(
            reply["type"], "error",
            "{what}: expected an error frame, got {reply}"
        );
        assert!(
            reply["message"].is_string(),
            "{what}: error without message: {reply}"
        );
        if let Some(code) = code {
            assert_eq!(reply["code"], code, "{what}: {reply}");
        } else {
            assert!(
                reply["code"].is_string(),
                "{what}: error without code: {reply}"
            );
        }
        // The connection keeps working after every bad frame.
        a.send_json(&json!({"type": "ping"})).await;
        assert_eq!(
            a.recv_json().await,
            json!({"type": "pong"}),
            "{what}: no pong after the error"
        );
    }

    // A 64-char name of every allowed character class is fine.
    let max_room = format!("Az09_.:-{}", "r".repeat(56));
    assert_eq!(max_room.len(), 64);
    a.join(&max_room).await;

    // None of the bad frames reached anyone; good traffic still flows both ways.
    a.say("general", "still here").await;
    let content = "still here";
    assert_receives_one(&mut b, "message", Some("general"), &a.id, "hub-p", content).await;
    b.say("general", "me too").await;
    let content = "me too";
    assert_receives_one(&mut a, "message", Some("general"), &b.id, "hub-p", content).await;
    assert_nothing_more(&mut [&mut a, &mut b]).await;
}

#[tokio::test]
async fn the_welcome_comes_first_even_while_the_default_room_is_busy() {
    let hub = Hub::builder("hub-busy")
        .env("HUB_RATE_LIMIT_PER_SEC", "100000")
        .env("HUB_RATE_LIMIT_BURST", "100000")
        .start()
        .await;
    let mut talker = Client::connect(&hub).await;
    // Keep `general` busy while clients connect: a chat frame must never reach a new client
    // before its welcome (Client::connect asserts that the first frame is the welcome).
    // Not a time limit but a count: at least 50 clients connect while at least 1000 frames go to
    // `general`, however long a loaded machine takes for that (bounded).
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let flood = tokio::spawn({
        let sent = sent.clone();
        async move {
            while stopped.try_recv().is_err() {
                let n = sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                talker.send_text(&format!("busy {n}")).await;
                if (n + 1).is_multiple_of(50) {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut connected = 0;
    while connected < 50 || sent.load(std::sync::atomic::Ordering::Relaxed) < 1000 {
        assert!(
            std::time::Instant::now() < deadline,
            "60 s: {connected} clients connected while {sent:?} frames went to general"
        );
        let batch: Vec<_> = (0..10).map(|_| Client::connect(&hub)).collect();
        connected += futures_util::future::join_all(batch).await.len();
    }
    stop.send(()).expect("the flood task still runs");
    flood.await.expect("flood task");
}
