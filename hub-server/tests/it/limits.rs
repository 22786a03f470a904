//! Must-hold 6: limits — slow consumers are cut off without slowing others, oversize frames close
//! with 1009, floods are rate limited (error, then 1008), foreign Origins get 403, and a client that
//! stops answering pings is dropped together with its Redis metadata; past `max_connections`, 503.
//! (A connection that never finishes its HTTP request is `http-accept`'s to close: its own test.)

use std::time::{Duration, Instant};

use serde_json::json;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::support::client::open;
use crate::support::flood::Flood;
use crate::support::{
    Client, Event, Hub, RECV_TIMEOUT, RedisServer, assert_nothing_more, connect_n, marker,
};

/// `kind:seq:micros-since-base:` at the start of a content; returns (kind, seq, micros).
fn parse_stamp(content: &str) -> Option<(&str, usize, u64)> {
    let mut parts = content.splitn(4, ':');
    Some((
        parts.next()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_closed_and_others_keep_receiving_on_time() {
    // × 32 KiB ≈ 12.5 MiB: twice what the never-reading socket's kernel buffers (~4 MiB on
    // loopback) and its hub queue (64 frames, 2 MiB) can hold.
    const FLOOD: usize = 400;
    const PROBES: usize = 20;
    // Alone this test sees ~100 ms worst case on 2 cores (debug build); with the whole suite in
    // parallel up to ~800 ms. A hub that waits on the slow socket (per-send timeouts, blocking
    // sends) stalls the room for seconds or for good. The bounds are that, with slack for a
    // loaded machine: the probes' too, as a backlog still draining after the cut is seconds.
    const FLOOD_LATENCY_MAX: Duration = Duration::from_millis(1500);
    const PROBE_LATENCY_MAX: Duration = Duration::from_millis(1000);

    let (
        hub,
        Flood {
            room: flood,
            mut sender,
            mut fast,
            mut slow,
        },
    ) = Flood::start(Hub::builder("hub-l").env("HUB_SEND_QUEUE", "64")).await;
    // From here on `slow` is never polled: its socket buffers fill, then its hub queue.

    let base = Instant::now();
    let reader = tokio::spawn(async move {
        let mut got: Vec<(String, usize, Duration)> = Vec::new();
        while got.len() < FLOOD + PROBES {
            let text = fast.recv_text_within(Duration::from_secs(5)).await;
            // Every frame here is a chat message whose content starts with a stamp.
            let content = text
                .split_once(r#""content":""#)
                .map(|(_, c)| c)
                .unwrap_or_default();
            let (kind, seq, micros) =
                parse_stamp(content).unwrap_or_else(|| panic!("unexpected frame: {:.200}", text));
            let latency = base.elapsed().saturating_sub(Duration::from_micros(micros));
            got.push((kind.to_owned(), seq, latency));
        }
        (fast, got)
    });

    let padding = "x".repeat(32 * 1024);
    for seq in 0..FLOOD {
        let content = format!("flood:{seq}:{}:{padding}", base.elapsed().as_micros());
        sender.say(&flood, &content).await;
        // ~10 MiB/s: a healthy hub keeps up with it, so any latency is the hub waiting on `slow`.
        if seq % 4 == 3 {
            tokio::time::sleep(Duration::from_millis(12)).await;
        }
    }
    // The hub lets go of the slow consumer without its cooperation (it still is not reading).
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.connections().await != Some(2) {
        assert!(
            Instant::now() < deadline,
            "slow consumer still counted 5 s after the flood: connections = {:?}",
            hub.connections().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for seq in 0..PROBES {
        sender
            .say(
                &flood,
                &format!("probe:{seq}:{}:", base.elapsed().as_micros()),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (mut fast, got) = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("fast reader did not finish")
        .expect("fast reader panicked");

    let floods: Vec<usize> = got.iter().filter(|g| g.0 == "flood").map(|g| g.1).collect();
    let probes: Vec<usize> = got.iter().filter(|g| g.0 == "probe").map(|g| g.1).collect();
    assert_eq!(
        floods,
        (0..FLOOD).collect::<Vec<_>>(),
        "fast client: flood lost, duplicated or reordered"
    );
    assert_eq!(
        probes,
        (0..PROBES).collect::<Vec<_>>(),
        "fast client: probes lost, duplicated or reordered"
    );
    let worst = |kind: &str| {
        got.iter()
            .filter(|g| g.0 == kind)
            .map(|g| g.2)
            .max()
            .unwrap_or_default()
    };
    let (worst_flood, worst_probe) = (worst("flood"), worst("probe"));
    let mut slowest: Vec<_> = got
        .iter()
        .filter(|g| g.0 == "flood")
        .map(|g| (g.2, g.1))
        .collect();
    slowest.sort_unstable_by(|x, y| y.cmp(x));
    eprintln!(
        "slowest flood deliveries (latency, seq): {:?}",
        &slowest[..5]
    );
    eprintln!(
        "slow consumer test: worst latency during flood {worst_flood:?}, after {worst_probe:?}"
    );
    assert!(
        worst_flood < FLOOD_LATENCY_MAX,
        "fast client waited {worst_flood:?} during the flood"
    );
    assert!(
        worst_probe < PROBE_LATENCY_MAX,
        "fast client waited {worst_probe:?} after the flood"
    );

    // Now drain the slow socket: it ends (4000 if a close frame made it) before the flood does.
    let (code, frames) = slow.expect_close(Duration::from_secs(10)).await;
    eprintln!(
        "slow consumer: close code {code:?} after {} frames",
        frames.len()
    );
    assert!(
        frames.len() < FLOOD,
        "slow consumer got the whole flood: it was never cut off"
    );
    if let Some(code) = code {
        assert_eq!(code, 4000, "slow consumer close code");
    }
    // Whether or not its close frame got through, the hub closed it for being slow (counted as
    // its session ends, a moment after the socket); only it: the two others are still open and
    // get each other's markers with nothing before them.
    let closed_slow = r#"realtime_hub_connections_closed_total{reason="slow_consumer"}"#;
    hub.wait_metric(closed_slow, 1.0, RECV_TIMEOUT).await;
    assert_nothing_more(&mut [&mut sender, &mut fast]).await;
    assert_eq!(hub.metric(closed_slow).await, 1.0, "closed as slow once");
}

#[tokio::test]
async fn oversize_message_closes_with_1009() {
    let hub = Hub::builder("hub-l").start().await;
    let [mut a, mut b, mut c] = connect_n(&hub).await;

    // Just under the default 64 KiB limit is delivered…
    let fits = "y".repeat(60_000);
    a.say("general", &fits).await;
    let frame = b.recv_json().await;
    assert_eq!(
        frame["content"].as_str().map(str::len),
        Some(60_000),
        "60 000-byte message not delivered"
    );

    // …one over it closes the sender with 1009 and reaches nobody.
    let too_big = "z".repeat(64 * 1024 + 1);
    a.say("general", &too_big).await;
    let (code, frames) = a.expect_close(Duration::from_secs(5)).await;
    assert_eq!(
        code,
        Some(1009),
        "close code for an oversize message; frames before: {frames:?}"
    );
    // It reached nobody: a marker said after it is b's next frame.
    let mark = marker("oversize");
    c.say("general", &mark).await;
    b.expect_marker(&mark).await;
    b.send_json(&json!({"type": "ping"})).await;
    assert_eq!(b.recv_json().await, json!({"type": "pong"}));
}

#[tokio::test]
async fn rate_limit_flood_gets_error_then_close_1008() {
    // Defaults: 100 messages/s with a burst of 200.
    let hub = Hub::builder("hub-l").start().await;
    let mut a = Client::connect(&hub).await;
    let mut b = Client::connect(&hub).await;

    let start = Instant::now();
    let mut seen = Vec::new();
    let mut closed = None;
    'flood: for i in 0..1000 {
        if a.send(tokio_tungstenite::tungstenite::Message::text(
            json!({"type": "message", "content": format!("f{i}")}).to_string(),
        ))
        .await
        .is_err()
        {
            break;
        }
        // Look at what the hub said so far without waiting, and stop once it has closed us, so our
        // writes do not make the kernel reset the connection before we read the close frame.
        while let Some(event) = a.next_event(Duration::ZERO).await {
            match event {
                Event::Frame(f) => seen.push(f),
                Event::Close(code) => {
                    closed = Some(code);
                    break 'flood;
                }
                other => panic!(
                    "rate-limited client: the connection ended without a close frame ({other:?}). If \
                     this is a reset, the hub dropped the TCP connection with our flood still unread \
                     instead of finishing the close handshake, so its error and close frames were lost"
                ),
            }
        }
    }
    let elapsed = start.elapsed();
    let code = match closed {
        Some(code) => {
            // Polling once more lets tungstenite send our close reply: a clean handshake.
            let _ = a.next_event(Duration::from_millis(100)).await;
            code
        }
        None => {
            let (code, frames) = a.expect_close(Duration::from_secs(5)).await;
            seen.extend(frames);
            code
        }
    };
    assert!(
        seen.iter()
            .any(|f| f["type"] == "error" && f["code"] == "rate_limited"),
        "no rate_limited error frame before the close; frames: {seen:?}"
    );
    assert_eq!(code, Some(1008), "close code after a flood");

    // What got through is about the burst, not the flood: all of it reached b before a marker
    // said after the close.
    let mut c = Client::connect(&hub).await;
    let mark = marker("flood");
    c.say("general", &mark).await;
    let mut delivered = 0usize;
    loop {
        let f = b.recv_json().await;
        if f["content"] == mark.as_str() {
            break;
        }
        assert_eq!(f["from"], a.id.as_str(), "{f}");
        delivered += 1;
    }
    let allowed = 200 + (100.0 * elapsed.as_secs_f64()).ceil() as usize + 10;
    eprintln!(
        "rate limit: {delivered} of the flood delivered in {elapsed:?} (allowed ≤ {allowed})"
    );
    assert!(
        delivered >= 150,
        "only {delivered} messages got through: the burst of 200 is not honoured"
    );
    assert!(
        delivered <= allowed,
        "{delivered} messages got through in {elapsed:?}: not rate limited"
    );
}

async fn assert_origin(hub: &Hub, origin: &str, allowed: bool) {
    match open(&hub.ws_url(), Some(origin)).await {
        Ok(ws) => {
            assert!(
                allowed,
                "hub {} upgraded a WebSocket from Origin {origin}",
                hub.name
            );
            Client::from_ws(ws).await;
        }
        Err(WsError::Http(resp)) => {
            assert!(
                !allowed,
                "hub {} refused Origin {origin}: HTTP {}",
                hub.name,
                resp.status()
            );
            assert_eq!(
                resp.status().as_u16(),
                403,
                "Origin {origin} refused with the wrong status"
            );
        }
        Err(e) => panic!("hub {} Origin {origin}: {e}", hub.name),
    }
}

#[tokio::test]
async fn foreign_origin_gets_403_and_allowed_origins_are_upgraded() {
    let default = Hub::builder("hub-l").start().await;
    assert_origin(&default, "http://localhost:9081", true).await;
    assert_origin(&default, "http://127.0.0.1:8080", true).await;
    assert_origin(&default, "http://evil.example", false).await;
    assert_origin(&default, "http://localhost.evil.example", false).await;

    let listed = Hub::builder("hub-l")
        .env(
            "HUB_ALLOWED_ORIGINS",
            "http://chat.example,https://other.example:8443",
        )
        .start()
        .await;
    assert_origin(&listed, "http://chat.example", true).await;
    assert_origin(&listed, "https://other.example:8443", true).await;
    assert_origin(&listed, "http://chat.example.evil", false).await;
    assert_origin(&listed, "https://other.example", false).await;

    let any = Hub::builder("hub-l")
        .env("HUB_ALLOWED_ORIGINS", "*")
        .start()
        .await;
    assert_origin(&any, "http://evil.example", true).await;
}

#[tokio::test]
async fn unanswered_pings_drop_the_client_and_its_presence() {
    let redis = RedisServer::start().await;
    let hub = Hub::builder("hub-l")
        .redis(&redis)
        .api(crate::api::KEY)
        .env("HUB_PING_INTERVAL", "200ms")
        .env("HUB_PONG_TIMEOUT", "1s")
        .env("HUB_PRESENCE_LEAVE_DELAY", "0s")
        .start()
        .await;
    // `silent` answers the hub's pings (tungstenite does, while we poll it) until its presence
    // entry is seen; from then on it is never polled, so its pings go unanswered.
    let mut silent = Client::connect(&hub).await;
    let mut alive = Client::connect(&hub).await;
    // Anonymous clients are users of their own: their presence entry is named by the client id.
    let instance = silent.welcome["instance_id"]
        .as_str()
        .expect("instance id")
        .to_owned();
    let entries = "rthub:presence:{general}";
    let silent_field = format!("{instance}|{}", silent.id);
    let alive_field = format!("{instance}|{}", alive.id);

    let deadline = Instant::now() + Duration::from_secs(10);
    while !redis.hgetall(entries).await.contains_key(&silent_field) {
        assert!(
            Instant::now() < deadline,
            "{silent_field} not written while the client was connected"
        );
        for c in [&mut silent, &mut alive] {
            if let Some(event) = c.next_event(Duration::from_millis(20)).await {
                assert!(
                    matches!(event, Event::Frame(_)),
                    "client {}: {event:?}",
                    c.id
                );
            }
        }
    }
    // The hub's pong deadline runs from a ping `silent` answered, at or before this instant.
    let stopped = Instant::now();
    let users = redis.hgetall("rthub:presence-users:{general}").await;
    assert_eq!(
        users.get(&*silent.id).map(String::as_str),
        Some("1"),
        "{users:?}"
    );

    // `alive` keeps polling (and so answering pings) while we watch the silent client's entry;
    // anything it gets meanwhile is kept, and there must be nothing (see the pong below).
    let watch = async {
        loop {
            if !redis.hgetall(entries).await.contains_key(&silent_field) {
                return stopped.elapsed();
            }
            assert!(
                stopped.elapsed() < Duration::from_secs(5),
                "{silent_field} still there 5 s after the client went silent"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mut meanwhile = Vec::new();
    let gone_after = {
        let polled = async {
            loop {
                if let Some(event) = alive.next_event(RECV_TIMEOUT).await {
                    meanwhile.push(event);
                }
            }
        };
        tokio::select! {
            gone_after = watch => gone_after,
            () = polled => unreachable!("polls until the watch ends"),
        }
    };
    eprintln!("silent client's presence gone {gone_after:?} after it stopped answering");
    // Pong timeout 1 s, pings every 200 ms: dropped within ~1.2 s of `stopped`, its entry removed at
    // once (leave delay 0); the other 1.3 s are slack for a loaded machine.
    assert!(
        gone_after < Duration::from_millis(2500),
        "silent client dropped only after {gone_after:?}"
    );

    assert!(
        redis.hgetall(entries).await.contains_key(&alive_field),
        "a client that answers pings lost its presence"
    );
    // The pong is the marker: nothing came to `alive` while it was watched, nor since.
    alive.send_json(&json!({"type": "ping"})).await;
    assert_eq!(alive.recv_json().await, json!({"type": "pong"}));
    assert!(meanwhile.is_empty(), "alive got {meanwhile:?}");
    assert_eq!(
        hub.connections().await,
        Some(1),
        "the silent client is still counted"
    );
    // Its socket is closed, and the hub says why (the close code itself may not reach the client:
    // polled again, tungstenite first writes the pongs it owes and finds the socket gone).
    let (code, _) = silent.expect_close(Duration::from_secs(5)).await;
    eprintln!("silent client closed with {code:?}");
    let closed = r#"realtime_hub_connections_closed_total{reason="pong_timeout"}"#;
    hub.wait_metric(closed, 1.0, RECV_TIMEOUT).await;
}

#[tokio::test]
async fn connections_over_max_connections_get_503_and_a_freed_place_comes_back() {
    let hub = Hub::builder("hub-full")
        .env("HUB_MAX_CONNECTIONS", "3")
        .start()
        .await;
    let url = hub.ws_url();
    // Ten upgrades at once.
    let attempts: Vec<_> = (0..10).map(|_| open(&url, None)).collect();
    let (mut admitted, mut refused) = (Vec::new(), 0);
    for attempt in futures_util::future::join_all(attempts).await {
        match attempt {
            Ok(ws) => admitted.push(Client::from_ws(ws).await),
            Err(WsError::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 503, "refused with the wrong status");
                refused += 1;
            }
            Err(e) => panic!("unexpected handshake error: {e}"),
        }
    }
    assert_eq!((admitted.len(), refused), (3, 7), "3 admitted, 7 refused");

    // A client that leaves gives its place back.
    drop(admitted.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match open(&url, None).await {
            Ok(ws) => {
                Client::from_ws(ws).await;
                break;
            }
            Err(WsError::Http(resp)) if resp.status().as_u16() == 503 => {
                assert!(Instant::now() < deadline, "the freed place never came back");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("unexpected handshake error: {e}"),
        }
    }
}
