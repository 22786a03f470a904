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

/// 600 sockets each send a 100 KB header line and never finish their request. Each may hold at
/// most `max_header_bytes` (16 KiB): they are answered 431 and closed, and the hub's RSS barely
/// moves (it grew by 72 MiB before the cap). Sockets that stop half-way through a small head are
/// counted in `/health` as `handshakes` while they wait, and no more than `max_handshakes` of
/// them are let in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_in_their_handshake_are_bounded_counted_and_capped_in_bytes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let hub = Hub::builder("edge-handshake")
        .env("HUB_MAX_HANDSHAKES", "200")
        .env("HUB_HANDSHAKE_TIMEOUT", "30s")
        .start()
        .await;
    let addr = format!("127.0.0.1:{}", hub.port);
    let rss_before = hub.rss_kib();
    let line = vec![b'a'; 100 * 1024];
    let mut refused = 0;
    for _ in 0..3 {
        // 200 at a time: the handshake bound.
        let mut sockets = Vec::new();
        for _ in 0..200 {
            sockets.push(TcpStream::connect(&addr).await.expect("connect"));
        }
        let sends = sockets.iter_mut().map(|s| {
            let line = &line;
            async move {
                let head = b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: ";
                let _ = s.write_all(head).await;
                let _ = tokio::time::timeout(Duration::from_secs(5), s.write_all(line)).await;
                let mut answer = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
                String::from_utf8_lossy(&answer).into_owned()
            }
        });
        for answer in futures_util::future::join_all(sends).await {
            assert!(
                answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 503"),
                "a 100 KB head: {answer:?}"
            );
            refused += 1;
        }
    }
    let grown_mib = hub.rss_kib().saturating_sub(rss_before) as f64 / 1024.0;
    println!("600 over-long heads refused; hub RSS grew {grown_mib:.1} MiB");
    assert_eq!(refused, 600);
    assert!(
        grown_mib < 16.0,
        "600 over-long heads grew the hub by {grown_mib:.1} MiB"
    );

    // Half a head, then silence: each waits in its handshake, counted; past 200, refused at once.
    let half_head = async |n: usize| {
        let mut sockets = Vec::new();
        for _ in 0..n {
            let mut s = TcpStream::connect(&addr).await.expect("connect");
            let _ = s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").await;
            sockets.push(s);
        }
        sockets
    };
    let mut waiting = half_head(150).await;
    let health = hub.health().await.expect("health").json();
    // The probe's own connection is in its handshake too while it is answered.
    assert_eq!(health["handshakes"], 151, "{health}");
    assert_eq!(health["connections"], 0, "{health}");
    let mut more = half_head(100).await;
    let mut refused_at_once = 0;
    for s in &mut more {
        let mut answer = [0u8; 12];
        if let Ok(Ok(12)) =
            tokio::time::timeout(Duration::from_millis(500), s.read_exact(&mut answer)).await
        {
            assert_eq!(&answer, b"HTTP/1.1 503");
            refused_at_once += 1;
        }
    }
    assert_eq!(refused_at_once, 50, "past max_handshakes (200)");
    waiting.append(&mut more);
    drop(waiting);
    // Closed handshakes give their places back: a real client gets in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let health = hub.health().await.expect("health").json();
        // Only the probe's own connection is left in its handshake.
        if health["handshakes"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "handshakes never went back: {health}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut client = Client::connect(&hub).await;
    client.send_json(&json!({"type": "ping"})).await;
    assert_eq!(client.recv_json().await["type"], "pong");
}

/// Issue 25.7: an API request whose body never completes is cut off like a slow header — with a
/// valid key too — answered 408 and its connection closed, after `handshake_timeout`.
#[tokio::test]
async fn an_api_body_that_never_completes_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const KEY: &str = "edge-body-key-0123456789";
    let hub = Hub::builder("edge-body")
        .api(KEY)
        .env("HUB_HANDSHAKE_TIMEOUT", "1s")
        .start()
        .await;
    let mut s = TcpStream::connect(("127.0.0.1", hub.api_port()))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"room\":"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("the hub closes the connection")
        .expect("read");
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(5)).contains(&waited),
        "cut off after {waited:?}"
    );
}
