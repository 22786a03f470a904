//! Issue 24.2-3: the SSE fallback runs the WebSocket session's rules. An SSE client and a
//! WebSocket client chat across two hubs (metrics by transport); ids are single-use, expire
//! unopened, and never reach the hub's log; a foreign Origin is refused on every route; the rate
//! limit and the slow-consumer rule close an SSE client as they close a WebSocket one.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::hub::HubBuilder;
use crate::support::sse::{SseClient, SseEvent, make_session, send_raw};
use crate::support::{Client, Hub, RECV_TIMEOUT, TwoHubs, marker, member, room};

const SSE_OPEN: &str = r#"realtime_hub_transport_connections{transport="sse"}"#;
const WS_OPEN: &str = r#"realtime_hub_transport_connections{transport="ws"}"#;
const SSE_ACCEPTED: &str = r#"realtime_hub_transport_connections_accepted_total{transport="sse"}"#;

fn with_api(builder: HubBuilder) -> HubBuilder {
    builder.api(crate::api::KEY)
}

#[tokio::test]
async fn an_sse_client_and_a_websocket_client_chat_across_two_hubs() {
    let hubs = TwoHubs::start_named(["hub-sse-a", "hub-sse-b"], with_api).await;
    let chat = room("sse");
    let mut sse = SseClient::connect(&hubs.a).await;
    sse.join(&chat).await;
    let mut ws = member(&hubs.b, &chat).await;

    sse.say(&chat, "over sse").await;
    let got = ws.recv_json().await;
    assert_eq!(
        (
            got["type"].as_str(),
            got["content"].as_str(),
            got["from"].as_str()
        ),
        (Some("message"), Some("over sse"), Some(sse.id.as_str())),
        "{got}"
    );
    ws.say(&chat, "over ws").await;
    let got = sse.recv_json().await;
    assert_eq!(
        (
            got["type"].as_str(),
            got["content"].as_str(),
            got["from"].as_str()
        ),
        (Some("message"), Some("over ws"), Some(ws.id.as_str())),
        "{got}"
    );
    // Nothing else for the SSE client (no echo of its own message, no duplicate): the next chat
    // frame is a marker said after all that.
    let mark = marker("sse");
    ws.say(&chat, &mark).await;
    let next = sse.recv_json().await;
    assert_eq!(next["content"], mark.as_str(), "{next}");

    // Counted by transport: hub a has the SSE session, hub b the WebSocket.
    assert_eq!(hubs.a.metric(SSE_OPEN).await, 1.0);
    assert_eq!(hubs.a.metric(SSE_ACCEPTED).await, 1.0);
    assert_eq!(hubs.a.metric(WS_OPEN).await, 0.0);
    assert_eq!(hubs.b.metric(WS_OPEN).await, 1.0);
    assert_eq!(hubs.b.metric(SSE_OPEN).await, 0.0);
    assert_eq!(hubs.a.metric("realtime_hub_connections").await, 1.0);

    // A client that goes away ends its session: the gauge comes back to 0.
    drop(sse);
    wait_gone(&hubs.a).await;
    let closed = r#"realtime_hub_connections_closed_total{reason="client"}"#;
    assert_eq!(hubs.a.metric(closed).await, 1.0);
}

#[tokio::test]
async fn ids_are_single_use_expire_unopened_and_never_reach_the_log() {
    // A short lifetime for the test (the default, 30 s, is checked in config's unit tests), and
    // the debug log on: whatever the hub logs about these sessions, the ids are not in it.
    let hub = Hub::builder("hub-sse-ids")
        .env("HUB_SSE_SESSION_TTL", "2s")
        .env("RUST_LOG", "debug")
        .start()
        .await;
    let mut ids = Vec::new();
    let client = SseClient::connect(&hub).await;
    ids.push(client.session.clone());

    // Opened once: a second GET with it is refused, with a JSON error saying why.
    let again = SseClient::open(hub.port, &client.session, None, None).await;
    let refused = again.err().expect("a used id is refused");
    assert_eq!(refused.status, 404, "{refused:?}");
    assert_eq!(refused.json()["error"], "unknown_session", "{refused:?}");
    // The running session still takes frames through its id.
    client.send_ok(&[json!({"type": "ping"})]).await;

    // Unopened for longer than its lifetime: gone.
    let made = make_session(hub.port, &json!({"token": null}), None).await;
    let late = made.json()["session"].as_str().expect("an id").to_owned();
    ids.push(late.clone());
    let fresh = make_session(hub.port, &json!({}), None).await;
    let fresh = fresh.json()["session"].as_str().expect("an id").to_owned();
    ids.push(fresh.clone());
    assert_eq!(late.len(), 32, "128 bits in hex: {late}");
    assert_ne!(late, fresh);
    // Opened within its lifetime: works.
    let mut opened = SseClient::open(hub.port, &fresh, None, None)
        .await
        .expect("a fresh id opens");
    assert_eq!(opened.recv_json().await["type"], "welcome");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = SseClient::open(hub.port, &late, None, None).await;
    let refused = expired.err().expect("an expired id is refused");
    assert_eq!(refused.status, 404, "{refused:?}");
    // Frames for an id that never ran, or for nothing like an id, or not JSON at all.
    let body = json!({"session": late, "frames": [{"type": "ping"}]}).to_string();
    let unknown = send_raw(hub.port, &body, None).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert_eq!(unknown.json()["error"], "unknown_session");
    let garbage = send_raw(hub.port, "{\"session\": 3}", None).await;
    assert_eq!(garbage.status, 400, "{garbage:?}");
    assert_eq!(garbage.json()["error"], "bad_request");
    let no_id = crate::support::http::get(hub.port, "/sse")
        .await
        .expect("GET");
    assert_eq!(no_id.status, 400, "{no_id:?}");

    // An ended session's id no longer sends.
    let ended = opened.session.clone();
    drop(opened);
    let deadline = Instant::now() + RECV_TIMEOUT;
    loop {
        let body = json!({"session": ended, "frames": [{"type": "ping"}]}).to_string();
        let sent = send_raw(hub.port, &body, None).await;
        if sent.status == 404 {
            break;
        }
        assert_eq!(sent.status, 204, "{sent:?}");
        assert!(
            Instant::now() < deadline,
            "the ended session still takes frames"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let log = hub.log();
    assert!(log.contains("client connected"), "debug log on:\n{log}");
    for id in &ids {
        assert!(
            !log.contains(id.as_str()),
            "session id {id} in the log:\n{log}"
        );
    }
}

#[tokio::test]
async fn a_foreign_origin_is_refused_on_every_sse_route() {
    let hub = Hub::builder("hub-sse-origin").start().await;
    let evil = Some("http://evil.example");
    let page = Some("http://localhost:9081");
    let made = make_session(hub.port, &json!({}), evil).await;
    assert_eq!(made.status, 403, "{made:?}");
    assert_eq!(made.json()["error"], "origin_not_allowed");

    // An allowed page gets its id, with the CORS header that lets it read it.
    let made = make_session(hub.port, &json!({}), page).await;
    assert_eq!(made.status, 200, "{made:?}");
    assert_eq!(made.header("access-control-allow-origin"), page);
    let id = made.json()["session"].as_str().expect("an id").to_owned();
    // The foreign origin cannot open it, nor send with it (and does not use it up).
    let opened = SseClient::open(hub.port, &id, evil, None).await;
    assert_eq!(opened.err().expect("refused").status, 403);
    let body = json!({"session": id, "frames": [{"type": "ping"}]}).to_string();
    assert_eq!(send_raw(hub.port, &body, evil).await.status, 403);
    let mut client = SseClient::open(hub.port, &id, page, None)
        .await
        .expect("the page opens its id");
    assert_eq!(client.recv_json().await["type"], "welcome");
    assert_eq!(send_raw(hub.port, &body, page).await.status, 204);
    assert_eq!(client.recv_json().await, json!({"type": "pong"}));
    // The preflight of a page's fetch.
    let preflight = crate::support::http::request(
        hub.port,
        "OPTIONS",
        "/sse/send",
        &[("Origin", "http://evil.example")],
        None,
    )
    .await
    .expect("OPTIONS");
    assert_eq!(preflight.status, 403);
}

#[tokio::test]
async fn the_rate_limit_closes_an_sse_client_with_1008() {
    // Defaults: 100 frames/s, a burst of 200, closed after 20 refused in a row.
    let hub = Hub::builder("hub-sse-rate").start().await;
    let mut client = SseClient::connect(&hub).await;
    let mut watcher = Client::connect(&hub).await;
    let flood: Vec<_> = (0..50)
        .map(|i| json!({"type": "message", "content": format!("f{i}")}))
        .collect();
    let mut refused_at = None;
    for batch in 0..20 {
        let sent = client.send(&flood).await;
        if sent.status == 404 {
            refused_at = Some(batch);
            break;
        }
        assert_eq!(sent.status, 204, "{sent:?}");
    }
    assert!(refused_at.is_some(), "1000 frames at once and still open");
    let (code, reason, frames) = client.expect_close(RECV_TIMEOUT).await;
    assert_eq!((code, reason.as_str()), (1008, "rate limit exceeded"));
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "error" && f["code"] == "rate_limited"),
        "no rate_limited error before the close: {frames:?}"
    );
    // About the burst got through to the others, then a marker.
    let mark = marker("rate");
    let mut other = Client::connect(&hub).await;
    other.say("general", &mark).await;
    let mut delivered = 0;
    loop {
        let f = watcher.recv_json().await;
        if f["content"] == mark.as_str() {
            break;
        }
        assert_eq!(f["from"], client.id.as_str(), "{f}");
        delivered += 1;
    }
    assert!(
        (150..=400).contains(&delivered),
        "{delivered} of 1000 got through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sse_client_that_stops_reading_is_closed_as_a_slow_consumer() {
    let hub = with_api(Hub::builder("hub-sse-slow"))
        .unlimited()
        .start()
        .await;
    let flood = room("flood");
    let mut sender = member(&hub, &flood).await;
    // A small receive buffer: the kernel holds less of the unread stream before the hub's queue
    // starts to fill.
    let made = make_session(hub.port, &json!({}), None).await;
    let id = made.json()["session"].as_str().expect("an id").to_owned();
    let mut slow = SseClient::open(hub.port, &id, None, Some(4096))
        .await
        .expect("opens");
    assert_eq!(slow.recv_json().await["type"], "welcome");
    slow.join(&flood).await;
    let closed_slow = r#"realtime_hub_connections_closed_total{reason="slow_consumer"}"#;
    assert_eq!(hub.metric(closed_slow).await, 0.0);

    // 60 KiB messages, never read by `slow`: its queue passes `send_queue_bytes` (1 MiB).
    let padding = "x".repeat(60 * 1024);
    let mut sent = 0;
    while sent < 600 && hub.metric(closed_slow).await == 0.0 {
        for _ in 0..8 {
            sender.say(&flood, &format!("m{sent}:{padding}")).await;
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        hub.metric(closed_slow).await,
        1.0,
        "not closed after {sent} messages"
    );
    assert!(sent * 60 < 16 * 1024, "closed only after {sent} messages");
    // Read what the kernel held: the stream ends with the close event, code 4000.
    let (code, reason, frames) = slow.expect_close(Duration::from_secs(30)).await;
    assert_eq!(
        (code, reason.as_str()),
        (4000, "slow consumer"),
        "after {} frames",
        frames.len()
    );
    assert!(
        matches!(slow.next_event(RECV_TIMEOUT).await, Some(SseEvent::End)),
        "the stream ends after its close event"
    );
    wait_gone(&hub).await;
}

/// Until `hub` has no SSE session running (`wait_metric` is for counts that only go up).
async fn wait_gone(hub: &Hub) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub.metric(SSE_OPEN).await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "hub {}: an SSE session still runs",
            hub.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
