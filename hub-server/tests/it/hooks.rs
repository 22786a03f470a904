//! Issue 23.1-4: the backend proxies on real hubs (and a real Redis where messages cross hubs),
//! against a real HTTP backend (`support::backend`) that checks the signature of every request.
//! The connect proxy admits with the backend's user, grants and `subs`, or closes 4001 with its
//! message; the subscribe proxy refuses with the backend's code; the publish proxy lets through,
//! replaces or refuses (a refused message reaches nobody on either hub: a marker follows it);
//! rpc frames get `rpc_result` or an error with their `ref`. A slow backend fails closed while
//! the session still answers pings; past `proxy_concurrency` a call is `unavailable` at once; a
//! backend that is down fails closed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::backend::{Backend, HOOK_SECRET, Reply, Seen};
use crate::support::client::Ws;
use crate::support::hub::HubBuilder;
use crate::support::{Client, Hub, RECV_TIMEOUT, RedisServer, marker, room};

const KEY: &str = "hooks-test-api-key-0123456789";

/// A hub signing with the backend's secret, with the given extra settings.
fn hub(name: &str, extra: &[(&str, &str)]) -> HubBuilder {
    Hub::builder(name)
        .env("HUB_HOOK_SECRET", HOOK_SECRET)
        .envs(extra)
}

/// Opens a WebSocket to `hub` with these request headers (a browser's cookie, say).
async fn open_with_headers(hub: &Hub, headers: &[(&str, &str)]) -> Ws {
    let mut request = hub.ws_url().into_client_request().expect("request");
    for (name, value) in headers {
        request.headers_mut().insert(
            tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                .expect("name"),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    let (ws, _) = tokio::time::timeout(RECV_TIMEOUT, tokio_tungstenite::connect_async(request))
        .await
        .expect("handshake in time")
        .expect("handshake");
    ws
}

/// The next frame is an `error` with `code` and these `ref` / `room` (`None`: absent).
async fn expect_error(
    client: &mut Client,
    code: &str,
    reference: Option<&str>,
    room: Option<&str>,
) -> Value {
    let f = client.recv_json().await;
    assert_eq!(
        (
            f["type"].as_str(),
            f["code"].as_str(),
            f["ref"].as_str(),
            f["room"].as_str()
        ),
        (Some("error"), Some(code), reference, room),
        "client {}: {f}",
        client.id
    );
    f
}

/// The connect proxy's answers by cookie: `sid=ana` / `sid=bo` are users, anything else is
/// refused with a message.
fn connect_answer(seen: &Seen) -> Reply {
    let cookie = seen.body["headers"]["cookie"].as_str().unwrap_or_default();
    match cookie {
        "sid=ana" => Reply::ok(json!({
            "user": {"id": "ana", "name": "Ana"},
            "rooms": ["team.*"],
            "read": ["news"],
            "subs": ["alerts"],
        })),
        "sid=bo" => Reply::ok(json!({"user": {"id": "bo", "name": "Bo"}, "rooms": ["team.*"]})),
        _ => Reply::ok(json!({"error": {"message": "session expired: sign in again"}})),
    }
}

#[tokio::test]
async fn connect_proxy_admits_with_the_backends_user_grants_and_subs() {
    let backend = Backend::start(connect_answer).await;
    let hub = hub("hub-connect", &[("HUB_AUTH_MODE", "proxy")])
        .env("HUB_PROXY_CONNECT_URL", &backend.url("/connect"))
        .start()
        .await;
    let ws = open_with_headers(
        &hub,
        &[
            ("cookie", "sid=ana"),
            ("x-internal", "not for the backend"),
            ("user-agent", "test-ua"),
        ],
    )
    .await;
    let mut ana = Client::from_ws(ws).await;
    assert_eq!(ana.welcome["user"], json!({"id": "ana", "name": "Ana"}));
    let rooms = ana.welcome["rooms"].as_array().expect("rooms").clone();
    assert!(rooms.contains(&json!("alerts")), "subs joined: {rooms:?}");
    assert!(
        rooms.contains(&json!("user:ana")),
        "personal room: {rooms:?}"
    );
    assert!(
        !rooms.contains(&json!("lobby")),
        "no grant for the default room: {rooms:?}"
    );

    let posted = backend.seen("/connect");
    assert_eq!(posted.len(), 1, "{posted:?}");
    let body = &posted[0].body;
    assert_eq!(body["client_id"], ana.id.as_str());
    assert_eq!(body["hub"], "hub-connect");
    assert_eq!(body["remote_addr"], "127.0.0.1");
    assert_eq!(body["headers"]["cookie"], "sid=ana");
    assert_eq!(body["headers"]["user-agent"], "test-ua");
    assert!(
        body["headers"].get("x-internal").is_none(),
        "only proxy_headers: {body}"
    );
    assert_eq!(posted[0].headers["content-type"], "application/json");

    let ws = open_with_headers(&hub, &[("cookie", "sid=bo")]).await;
    let mut bo = Client::from_ws(ws).await;
    let team = format!("team.{}", room("x"));
    ana.join(&team).await;
    bo.join(&team).await;
    ana.say(&team, "hello from ana").await;
    let got = bo.recv_chat(1).await;
    assert_eq!(
        got[0]["user"],
        json!({"id": "ana", "name": "Ana"}),
        "{got:?}"
    );
    assert_eq!(got[0]["content"], "hello from ana");
    // `read` joins but does not publish; no grant, no join.
    ana.join("news").await;
    ana.say("news", "not allowed").await;
    expect_error(&mut ana, "forbidden", None, None).await;
    ana.send_json(&json!({"type": "join", "room": "secret"}))
        .await;
    expect_error(&mut ana, "forbidden", None, Some("secret")).await;
    // Tokens are not read in this mode.
    ana.auth("a.b.c").await;
    expect_error(&mut ana, "auth_off", None, None).await;
    assert_eq!(backend.bad_signatures(), 0);
    // Neither the secret nor what the cookies say ever reaches the hub's log.
    let log = hub.log();
    assert!(
        !log.contains(HOOK_SECRET) && !log.contains("sid=ana"),
        "{log}"
    );
}

#[tokio::test]
async fn connect_proxy_refusals_close_4001_with_the_backends_message() {
    let backend = Backend::start(connect_answer).await;
    let hub = hub("hub-refuse", &[("HUB_AUTH_MODE", "proxy")])
        .env("HUB_PROXY_CONNECT_URL", &backend.url("/connect"))
        .start()
        .await;
    let ws = open_with_headers(&hub, &[("cookie", "sid=stale")]).await;
    let mut refused = Client::unwelcomed(ws);
    let (code, before) = refused.expect_close(RECV_TIMEOUT).await;
    assert_eq!(code, Some(4001), "frames before: {before:?}");
    assert!(before.is_empty(), "no welcome: {before:?}");
    assert_eq!(
        refused.close_reason.as_deref(),
        Some("session expired: sign in again")
    );
    assert_eq!(backend.seen("/connect").len(), 1);

    // A hub that signs with another secret: the backend refuses it (401), the client is closed.
    let wrong = Hub::builder("hub-wrong-secret")
        .envs(&[
            ("HUB_AUTH_MODE", "proxy"),
            ("HUB_HOOK_SECRET", "not-the-backends-secret"),
        ])
        .env("HUB_PROXY_CONNECT_URL", &backend.url("/connect"))
        .start()
        .await;
    let ws = open_with_headers(&wrong, &[("cookie", "sid=ana")]).await;
    let mut client = Client::unwelcomed(ws);
    let (code, before) = client.expect_close(RECV_TIMEOUT).await;
    assert_eq!((code, before.len()), (Some(4001), 0), "{before:?}");
    assert_eq!(
        client.close_reason.as_deref(),
        Some("auth failed: the backend is unavailable")
    );
    assert_eq!(backend.bad_signatures(), 1);
}

#[tokio::test]
async fn subscribe_proxy_refuses_a_join_with_the_backends_code() {
    let backend = Backend::start(|seen| {
        let room = seen.body["room"].as_str().unwrap_or_default();
        match room.contains("deny") {
            true => {
                Reply::ok(json!({"error": {"code": "not_invited", "message": "ask the owner"}}))
            }
            false => Reply::ok(json!({})),
        }
    })
    .await;
    let hub = hub(
        "hub-subscribe",
        &[(
            "HUB_NAMESPACES",
            r#"{"gated":{"proxy_subscribe":true},"chat":{}}"#,
        )],
    )
    .env("HUB_PROXY_SUBSCRIBE_URL", &backend.url("/subscribe"))
    .start()
    .await;
    let mut client = Client::connect(&hub).await;
    let (ok, deny, free) = (
        format!("gated:{}", room("ok")),
        format!("gated:{}", room("deny")),
        format!("chat:{}", room("free")),
    );
    client.join(&ok).await;
    client
        .send_json(&json!({"type": "join", "room": deny}))
        .await;
    let err = expect_error(&mut client, "not_invited", None, Some(&deny)).await;
    assert_eq!(err["message"], "ask the owner");
    client.join(&free).await;
    let asked: Vec<Value> = backend
        .seen("/subscribe")
        .iter()
        .map(|s| s.body.clone())
        .collect();
    assert_eq!(
        asked.len(),
        2,
        "only gated rooms are asked about: {asked:?}"
    );
    assert_eq!(asked[0]["room"], ok.as_str());
    assert_eq!(asked[0]["client_id"], client.id.as_str());
    assert_eq!(
        asked[0]["user"]["id"],
        client.id.as_str(),
        "anonymous: the client id"
    );
    assert_eq!(asked[1]["room"], deny.as_str());
    // Refused means not a member: leaving it is `not_member`.
    client
        .send_json(&json!({"type": "leave", "room": deny}))
        .await;
    expect_error(&mut client, "not_member", None, None).await;
    assert_eq!(backend.bad_signatures(), 0);
}

/// The publish proxy's answers by content.
fn publish_answer(seen: &Seen) -> Reply {
    let content = seen.body["content"].as_str().unwrap_or_default();
    if content.contains("badword") {
        Reply::ok(json!({"error": {"code": "bad_word", "message": "mind your language"}}))
    } else if content == "replace me" {
        Reply::ok(json!({"content": "replaced by the backend"}))
    } else {
        Reply::ok(json!({}))
    }
}

#[tokio::test]
async fn a_refused_publish_reaches_nobody_on_either_hub_and_a_replaced_one_arrives_replaced() {
    let backend = Backend::start(publish_answer).await;
    let redis = RedisServer::start().await;
    let settings = [("HUB_NAMESPACES", r#"{"mod":{"proxy_publish":true}}"#)];
    let start = |name: &'static str| {
        hub(name, &settings)
            .redis(&redis)
            .env("HUB_PROXY_PUBLISH_URL", &backend.url("/publish"))
            .start()
    };
    let (a, b) = (start("hub-a").await, start("hub-b").await);
    let moderated = format!("mod:{}", room("talk"));
    let mut sender = crate::support::member(&a, &moderated).await;
    let mut near = crate::support::member(&a, &moderated).await;
    let mut far = crate::support::member(&b, &moderated).await;

    sender
        .send_json(&json!({"type": "message", "room": moderated, "content": "a badword here", "ref": "r1"}))
        .await;
    let err = expect_error(&mut sender, "bad_word", Some("r1"), None).await;
    assert_eq!(err["message"], "mind your language");
    sender
        .send_json(
            &json!({"type": "message", "room": moderated, "content": "replace me", "ref": "r2"}),
        )
        .await;
    let ack = sender.recv_json().await;
    assert_eq!(
        (ack["type"].as_str(), ack["ref"].as_str()),
        (Some("ack"), Some("r2")),
        "{ack}"
    );
    for listener in [&mut near, &mut far] {
        let got = listener.recv_chat(1).await;
        assert_eq!(
            got[0]["content"], "replaced by the backend",
            "client {}: {got:?}",
            listener.id
        );
        assert_eq!(got[0]["from"], sender.id.as_str());
    }
    // In order through the proxy, then a marker: nothing refused came before it.
    let contents: Vec<String> = (0..10).map(|i| format!("in order {i}")).collect();
    for content in &contents {
        sender.say(&moderated, content).await;
    }
    let end = marker("after-refusal");
    sender.say(&moderated, &end).await;
    for listener in [&mut near, &mut far] {
        let got = listener.recv_chat(contents.len()).await;
        let got: Vec<&str> = got.iter().filter_map(|f| f["content"].as_str()).collect();
        assert_eq!(got, contents, "client {}", listener.id);
        listener.expect_marker(&end).await;
    }
    let posted = backend.seen("/publish");
    assert_eq!(posted.len(), 2 + contents.len() + 1);
    assert_eq!(posted[0].body["content"], "a badword here");
    assert_eq!(posted[0].body["room"], moderated.as_str());
    assert_eq!(posted[0].body["user"]["id"], sender.id.as_str());
    assert_eq!(backend.bad_signatures(), 0);
}

#[tokio::test]
async fn rpc_frames_get_the_backends_result_or_its_error_with_their_ref() {
    let backend = Backend::start(|seen| match seen.body["method"].as_str() {
        Some("sum") => {
            let data = &seen.body["data"];
            let sum = data["a"].as_i64().unwrap_or(0) + data["b"].as_i64().unwrap_or(0);
            Reply::ok(json!({"data": {"sum": sum}}))
        }
        Some("crash") => Reply {
            status: 500,
            body: json!({"data": "a 5xx answer is not a result"}),
            delay: Duration::ZERO,
        },
        _ => Reply::ok(json!({"error": {"code": "no_such_method", "message": "unknown method"}})),
    })
    .await;
    let hub = hub("hub-rpc", &[])
        .env("HUB_PROXY_RPC_URL", &backend.url("/rpc"))
        .start()
        .await;
    let mut client = Client::connect(&hub).await;
    client
        .send_json(&json!({"type": "rpc", "method": "sum", "data": {"a": 2, "b": 40}, "ref": "c1"}))
        .await;
    assert_eq!(
        client.recv_json().await,
        json!({"type": "rpc_result", "ref": "c1", "data": {"sum": 42}})
    );
    client
        .send_json(&json!({"type": "rpc", "method": "nope", "ref": "c2"}))
        .await;
    let err = expect_error(&mut client, "no_such_method", Some("c2"), None).await;
    assert_eq!(err["message"], "unknown method");
    // A 5xx fails closed, whatever its body says.
    client
        .send_json(&json!({"type": "rpc", "method": "crash", "ref": "c5"}))
        .await;
    expect_error(&mut client, "unavailable", Some("c5"), None).await;
    let posted = backend.seen("/rpc");
    assert_eq!(posted.len(), 3);
    assert_eq!(posted[0].body["data"], json!({"a": 2, "b": 40}));
    assert_eq!(posted[0].body["user"]["id"], client.id.as_str());
    assert_eq!(posted[1].body["data"], Value::Null);

    // A hub without proxy_rpc_url answers at once, with the ref.
    let plain = Hub::builder("hub-no-rpc").start().await;
    let mut client = Client::connect(&plain).await;
    client
        .send_json(&json!({"type": "rpc", "method": "sum", "ref": "c3"}))
        .await;
    expect_error(&mut client, "not_available", Some("c3"), None).await;
    assert_eq!(backend.bad_signatures(), 0);
}

#[tokio::test]
async fn a_slow_backend_fails_closed_while_pings_are_answered() {
    let backend = Backend::start(|seen| {
        let slow = seen.body["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("slow"));
        Reply::ok(json!({})).after(if slow {
            Duration::from_secs(4)
        } else {
            Duration::ZERO
        })
    })
    .await;
    let hub = hub(
        "hub-slow",
        &[
            ("HUB_NAMESPACES", r#"{"mod":{"proxy_publish":true}}"#),
            ("HUB_PROXY_TIMEOUT", "1s"),
        ],
    )
    .api(KEY)
    .env("HUB_PROXY_PUBLISH_URL", &backend.url("/publish"))
    .start()
    .await;
    let moderated = format!("mod:{}", room("slow"));
    let mut sender = crate::support::member(&hub, &moderated).await;
    let mut listener = crate::support::member(&hub, &moderated).await;
    let sent = Instant::now();
    sender
        .send_json(
            &json!({"type": "message", "room": moderated, "content": "slow one", "ref": "s1"}),
        )
        .await;
    backend.wait_seen("/publish", 1).await;
    // The proxy call is pending: the session still reads and answers.
    for _ in 0..3 {
        let ping = Instant::now();
        sender.send_json(&json!({"type": "ping"})).await;
        assert_eq!(sender.recv_json().await, json!({"type": "pong"}));
        let took = ping.elapsed();
        assert!(took < Duration::from_millis(100), "pong after {took:?}");
        assert!(backend.seen("/publish").len() == 1 && sent.elapsed() < Duration::from_secs(1));
    }
    expect_error(&mut sender, "unavailable", Some("s1"), None).await;
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "failed after {waited:?}: proxy_timeout is 1s, the backend takes 4s"
    );
    let end = marker("after-timeout");
    sender.say(&moderated, &end).await;
    listener.expect_marker(&end).await;
    assert_eq!(
        hub_metrics_line(&hub, "publish", "timeout").await,
        Some(1.0)
    );
    assert_eq!(
        hub_metrics_line(&hub, "publish", "allowed").await,
        Some(1.0)
    );
}

/// `realtime_hub_proxy_calls_total{kind,outcome}` of `hub`, when it has an API listener.
async fn hub_metrics_line(hub: &Hub, kind: &str, outcome: &str) -> Option<f64> {
    hub.api_port?;
    let series = format!("realtime_hub_proxy_calls_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}");
    Some(hub.metric(&series).await)
}

#[tokio::test]
async fn past_proxy_concurrency_a_call_is_unavailable_at_once() {
    let backend = Backend::start(|seen| {
        let hold = seen.body["method"] == "hold";
        Reply::ok(json!({"data": "done"})).after(if hold {
            Duration::from_secs(3)
        } else {
            Duration::ZERO
        })
    })
    .await;
    let hub = hub(
        "hub-busy",
        &[("HUB_PROXY_CONCURRENCY", "2"), ("HUB_PROXY_TIMEOUT", "10s")],
    )
    .api(KEY)
    .env("HUB_PROXY_RPC_URL", &backend.url("/rpc"))
    .start()
    .await;
    // Two clients hold the two places (a session's rpc calls go one after another).
    let mut holders = [Client::connect(&hub).await, Client::connect(&hub).await];
    for (i, holder) in holders.iter_mut().enumerate() {
        holder
            .send_json(&json!({"type": "rpc", "method": "hold", "ref": format!("h{i}")}))
            .await;
    }
    backend.wait_seen("/rpc", 2).await;
    let mut third = Client::connect(&hub).await;
    let asked = Instant::now();
    third
        .send_json(&json!({"type": "rpc", "method": "quick", "ref": "q1"}))
        .await;
    expect_error(&mut third, "unavailable", Some("q1"), None).await;
    let took = asked.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "refused after {took:?}, not at once"
    );
    assert_eq!(
        backend.seen("/rpc").len(),
        2,
        "the refused call never reached the backend"
    );
    for (i, holder) in holders.iter_mut().enumerate() {
        let r = format!("h{i}");
        assert_eq!(
            holder.recv_json().await,
            json!({"type": "rpc_result", "ref": r, "data": "done"})
        );
    }
    // With the places free again, the same call goes through.
    third
        .send_json(&json!({"type": "rpc", "method": "quick", "ref": "q2"}))
        .await;
    assert_eq!(
        third.recv_json().await,
        json!({"type": "rpc_result", "ref": "q2", "data": "done"})
    );
    assert_eq!(hub_metrics_line(&hub, "rpc", "busy").await, Some(1.0));
    assert_eq!(hub_metrics_line(&hub, "rpc", "allowed").await, Some(3.0));
}

#[tokio::test]
async fn a_backend_that_is_down_fails_closed() {
    // A port nobody listens on: connections are refused.
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let gated = hub("hub-down-connect", &[("HUB_AUTH_MODE", "proxy")])
        .env("HUB_PROXY_CONNECT_URL", &format!("{down}/connect"))
        .start()
        .await;
    let mut client = Client::connect_unwelcomed(&gated).await;
    let (code, before) = client.expect_close(RECV_TIMEOUT).await;
    assert_eq!((code, before.len()), (Some(4001), 0), "{before:?}");
    assert_eq!(
        client.close_reason.as_deref(),
        Some("auth failed: the backend is unavailable")
    );

    let hub = hub("hub-down", &[("HUB_NAMESPACES", r#"{"mod":{"proxy_publish":true,"proxy_subscribe":true},"open":{"proxy_publish":true}}"#)])
        .api(KEY)
        .env("HUB_PROXY_PUBLISH_URL", &format!("{down}/publish"))
        .env("HUB_PROXY_SUBSCRIBE_URL", &format!("{down}/subscribe"))
        .env("HUB_PROXY_RPC_URL", &format!("{down}/rpc"))
        .start()
        .await;
    let mut sender = Client::connect(&hub).await;
    let gated_room = format!("mod:{}", room("down"));
    sender
        .send_json(&json!({"type": "join", "room": gated_room}))
        .await;
    expect_error(&mut sender, "unavailable", None, Some(&gated_room)).await;
    // A proxied room the client may join without asking (no proxy_subscribe), to publish in.
    let open = format!("open:{}", room("down"));
    sender.join(&open).await;
    let mut listener = crate::support::member(&hub, &open).await;
    sender
        .send_json(&json!({"type": "message", "room": open, "content": "lost?", "ref": "d1"}))
        .await;
    expect_error(&mut sender, "unavailable", Some("d1"), None).await;
    sender
        .send_json(&json!({"type": "rpc", "method": "m", "ref": "d2"}))
        .await;
    expect_error(&mut sender, "unavailable", Some("d2"), None).await;
    // The listener gets nothing before a marker sent through an unproxied path.
    let end = marker("after-down");
    sender.broadcast(&end).await;
    listener.expect_marker(&end).await;
    assert_eq!(
        hub_metrics_line(&hub, "publish", "unreachable").await,
        Some(1.0)
    );
    assert_eq!(
        hub_metrics_line(&hub, "subscribe", "unreachable").await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_join_waiting_on_the_subscribe_proxy_holds_up_neither_pings_nor_other_rooms() {
    let backend = Backend::start(|seen| {
        let slow = seen.body["room"]
            .as_str()
            .is_some_and(|r| r.contains("slow"));
        Reply::ok(json!({})).after(if slow {
            Duration::from_secs(2)
        } else {
            Duration::ZERO
        })
    })
    .await;
    let hub = hub(
        "hub-slow-join",
        &[
            ("HUB_NAMESPACES", r#"{"gated":{"proxy_subscribe":true}}"#),
            ("HUB_PROXY_TIMEOUT", "5s"),
        ],
    )
    .env("HUB_PROXY_SUBSCRIBE_URL", &backend.url("/subscribe"))
    .start()
    .await;
    let mut client = Client::connect(&hub).await;
    let (slow, quick) = (
        format!("gated:{}", room("slow")),
        format!("gated:{}", room("quick")),
    );
    let asked = Instant::now();
    client
        .send_json(&json!({"type": "join", "room": slow}))
        .await;
    backend.wait_seen("/subscribe", 1).await;
    let ping = Instant::now();
    client.send_json(&json!({"type": "ping"})).await;
    assert_eq!(client.recv_json().await, json!({"type": "pong"}));
    let took = ping.elapsed();
    assert!(took < Duration::from_millis(100), "pong after {took:?}");
    // Another room's join is not queued behind the slow one.
    client.join(&quick).await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "the quick join waited for the slow one: {:?}",
        asked.elapsed()
    );
    let joined = client.recv_json().await;
    assert_eq!(
        (joined["type"].as_str(), joined["room"].as_str()),
        (Some("joined"), Some(slow.as_str())),
        "{joined}"
    );
    assert!(asked.elapsed() >= Duration::from_millis(1900));
}
