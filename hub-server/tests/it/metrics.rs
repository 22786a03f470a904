//! `/metrics` (issues 12 and 13). As a real Prometheus server sees it: Debian's `prometheus`
//! scrapes two bridged hubs' API listeners; both targets must be `up` through Prometheus's own
//! query API, a counter moved by chat must be read back there with the value the hub itself
//! reports, and `realtime_hub_redis_up` must go to 0 when Redis is killed and back to 1 when it
//! returns. Each family moves when it should, on the hub where it should: frames and bytes, the
//! cross-hub lag on the receiving hub only, publish round trips, recoveries by result, errors by
//! code, slow consumers, the rate limit, auth failures by reason, closes by reason, the bridge's
//! buffer during an outage; `promtool check metrics` finds no problem in any exposition.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::prometheus::{Prometheus, promtool_check_metrics, value};
use crate::support::token::{OTHER_SECRET, SECRET, claims, hs256};
use crate::support::{Client, Hub, RedisServer, room};

/// Every sample of an exposition by its series, as written (`name{label="v"}`).
fn samples(exposition: &str) -> HashMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// The value of `series` in an exposition; it must be there.
fn at(exposition: &str, series: &str) -> f64 {
    samples(exposition)
        .get(series)
        .copied()
        .unwrap_or_else(|| panic!("no series {series} in\n{exposition}"))
}

/// Scrapes `hub` until `done` accepts the value of `series`, at most `within`; returns the
/// exposition it accepted.
async fn wait_for(hub: &Hub, series: &str, within: Duration, done: impl Fn(f64) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let text = hub.metrics().await;
        let v = samples(&text).get(series).copied();
        if v.is_some_and(&done) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "hub {}: {series} = {v:?}, not as expected within {within:?}\n{text}",
            hub.name
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn promtool_clean(hub: &Hub, text: &str) {
    let (ok, said) = promtool_check_metrics(text);
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics on {}: {said}\n{text}",
        hub.name
    );
}

/// Sends `frame` (a join) and reads up to its `joined`, skipping the replay.
async fn join_with(client: &mut Client, frame: &Value) -> Value {
    client.send_json(frame).await;
    loop {
        let f = client.recv_json().await;
        if f["type"] == "joined" {
            return f;
        }
        assert_eq!(f["replayed"], true, "before joined: {f}");
    }
}

#[tokio::test]
async fn a_real_prometheus_scrapes_both_hubs_and_reads_back_what_chat_moved() {
    let redis = RedisServer::start().await;
    let h1 = Hub::builder("prom1")
        .redis(&redis)
        .api(crate::api::KEY)
        .start()
        .await;
    let h2 = Hub::builder("prom2")
        .redis(&redis)
        .api(crate::api::KEY)
        .start()
        .await;
    let targets: Vec<String> = [&h1, &h2]
        .iter()
        .map(|h| format!("127.0.0.1:{}", h.api_port.expect("api port")))
        .collect();
    let prometheus = Prometheus::start(&targets).await;

    let up = prometheus
        .wait_for("up", Duration::from_secs(30), |r| {
            r.len() == 2 && r.iter().all(|s| value(s) == 1.0)
        })
        .await;
    let mut instances: Vec<&str> = up
        .iter()
        .filter_map(|s| s["metric"]["instance"].as_str())
        .collect();
    instances.sort_unstable();
    let mut want: Vec<&str> = targets.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(instances, want, "{up:?}");
    let redis_up = prometheus
        .wait_for("realtime_hub_redis_up", Duration::from_secs(10), |r| {
            r.len() == 2
        })
        .await;
    assert!(redis_up.iter().all(|s| value(s) == 1.0), "{redis_up:?}");

    // Chat moves hub2's delivered counter: 10 messages from hub1 to 3 members on hub2.
    let r = room("prom");
    let mut sender = Client::connect(&h1).await;
    sender.join(&r).await;
    let mut receivers = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&h2).await;
        c.join(&r).await;
        receivers.push(c);
    }
    for i in 0..10 {
        sender.say(&r, &format!("m{i}")).await;
    }
    for c in &mut receivers {
        c.recv_chat(10).await;
    }
    // Prometheus must come to hold what hub2 itself reports (read again each time: anything
    // else hub2 delivers meanwhile moves both).
    let instance = &targets[1];
    let query = format!("realtime_hub_messages_delivered_total{{instance=\"{instance}\"}}");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let (seen, delivered) = loop {
        let delivered = at(&h2.metrics().await, "realtime_hub_messages_delivered_total");
        let seen = prometheus.query(&query).await;
        if seen.len() == 1 && value(&seen[0]) == delivered {
            break (seen, delivered);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus never read hub2's {delivered} delivered: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(delivered >= 30.0, "10 messages to 3 members: {delivered}");
    assert_eq!(seen[0]["metric"]["job"], Value::from("realtime-hub"));
    // Connections too: hub2 has 3.
    let query = format!("realtime_hub_connections{{instance=\"{instance}\"}}");
    prometheus
        .wait_for(&query, Duration::from_secs(15), |r| {
            r.len() == 1 && value(&r[0]) == 3.0
        })
        .await;

    for hub in [&h1, &h2] {
        promtool_clean(hub, &hub.metrics().await);
    }
}

#[tokio::test]
async fn chat_moves_frames_bytes_round_trips_and_the_lag_on_the_receiving_hub_only() {
    let redis = RedisServer::start().await;
    let h1 = Hub::builder("fam1")
        .redis(&redis)
        .api(crate::api::KEY)
        .start()
        .await;
    let h2 = Hub::builder("fam2")
        .redis(&redis)
        .api(crate::api::KEY)
        .start()
        .await;
    let r = room("fam");
    let mut a = Client::connect(&h1).await;
    let mut b = Client::connect(&h2).await;
    let joined = a.join(&r).await;
    b.join(&r).await;
    // What h1 observed so far: other hubs' presence diffs of these joins, say.
    let lag = "realtime_hub_cross_hub_lag_seconds_count";
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lag_before = at(&h1.metrics().await, lag);
    // Everything `a` sends is read by h1, nothing else is: its bytes in are exactly these.
    let mut sent_bytes = json!({"type": "join", "room": r}).to_string().len();
    for i in 0..10 {
        let content = format!("m{i}");
        sent_bytes += json!({"type": "message", "room": r, "content": content})
            .to_string()
            .len();
        a.say(&r, &content).await;
    }
    b.recv_chat(10).await;

    let m2 = wait_for(&h2, lag, Duration::from_secs(10), |n| n >= 10.0).await;
    let m1 = wait_for(
        &h1,
        "realtime_hub_bridge_publish_round_trip_seconds_count",
        Duration::from_secs(10),
        |n| n >= 1.0,
    )
    .await;
    // h1's own 10 messages came back to it from Redis: not a cross-hub lag.
    assert!(
        at(&m1, lag) - lag_before < 10.0,
        "h1 counted its own messages: {lag_before} then {}",
        at(&m1, lag)
    );
    let mean_lag = at(&m2, "realtime_hub_cross_hub_lag_seconds_sum") / at(&m2, lag);
    assert!(
        (0.0..2.0).contains(&mean_lag),
        "lag on loopback: {mean_lag}"
    );
    assert!(
        at(
            &m2,
            "realtime_hub_cross_hub_lag_seconds_bucket{le=\"+Inf\"}"
        ) >= 10.0
    );
    assert!(at(&m1, "realtime_hub_bridge_published_total") >= 10.0);
    assert!(at(&m2, "realtime_hub_bridge_received_total") >= 10.0);
    assert_eq!(
        at(&m1, "realtime_hub_messages_received_total"),
        11.0,
        "join + 10"
    );
    assert_eq!(
        at(&m1, "realtime_hub_received_bytes_total"),
        sent_bytes as f64
    );
    // b got a welcome, a joined and 10 chat frames of well over 100 bytes each.
    assert!(at(&m2, "realtime_hub_sent_bytes_total") > 1000.0, "{m2}");
    // The 10 messages, and presence diffs of a's joins.
    let delivered = at(&m2, "realtime_hub_messages_delivered_total");
    assert!((10.0..20.0).contains(&delivered), "{m2}");
    for (m, hub) in [(&m1, "fam1"), (&m2, "fam2")] {
        assert_eq!(
            at(m, "realtime_hub_connections_accepted_total"),
            1.0,
            "{hub}"
        );
        assert_eq!(at(m, "realtime_hub_connections"), 1.0, "{hub}");
        assert_eq!(at(m, "realtime_hub_redis_up"), 1.0, "{hub}");
        assert_eq!(at(m, "realtime_hub_bridge_buffered"), 0.0, "{hub}");
        // general, the client's personal room and the room, broadcast, control.
        assert_eq!(
            at(m, "realtime_hub_redis_subscribed_channels"),
            5.0,
            "{hub}"
        );
    }

    // Errors by code, on the hub that answered them.
    a.send_text(r#"{"type":"nope"}"#).await;
    a.send_json(&json!({"type": "message", "room": r, "content": ""}))
        .await;
    for code in ["unknown_type", "empty_content"] {
        let f = a.recv_json().await;
        assert_eq!(
            (f["type"].as_str(), f["code"].as_str()),
            (Some("error"), Some(code))
        );
    }
    let m1 = h1.metrics().await;
    for (code, n) in [
        ("unknown_type", 1.0),
        ("empty_content", 1.0),
        ("bad_json", 0.0),
    ] {
        assert_eq!(
            at(
                &m1,
                &format!("realtime_hub_errors_total{{code=\"{code}\"}}")
            ),
            n
        );
    }

    // Recoveries by result, on the hub the client rejoined.
    let mut c = Client::connect(&h2).await;
    let epoch = joined["epoch"].as_str().expect("epoch");
    let back = join_with(
        &mut c,
        &json!({"type": "join", "room": r, "since": {"epoch": epoch, "offset": 5}}),
    )
    .await;
    assert_eq!(back["recovered"], true, "{back}");
    let other = room("fam-other");
    let lost = join_with(
        &mut c,
        &json!({"type": "join", "room": other, "since": {"epoch": "00000000", "offset": 1}}),
    )
    .await;
    assert_eq!(lost["reason"], "epoch_changed", "{lost}");
    c.join(&room("fam-plain")).await;
    let m2 = h2.metrics().await;
    for (result, n) in [("recovered", 1.0), ("epoch_changed", 1.0), ("too_old", 0.0)] {
        assert_eq!(
            at(
                &m2,
                &format!("realtime_hub_recoveries_total{{result=\"{result}\"}}")
            ),
            n
        );
    }

    // Clients that leave are counted as such, once their sessions end.
    drop(b);
    drop(c);
    let closed = "realtime_hub_connections_closed_total{reason=\"client\"}";
    let m2 = wait_for(&h2, closed, Duration::from_secs(10), |n| n == 2.0).await;
    assert_eq!(at(&m2, "realtime_hub_connections_accepted_total"), 2.0);

    // The process and the runtime.
    let m1 = h1.metrics().await;
    assert!(
        at(&m1, "realtime_hub_process_resident_memory_bytes") > 1e6,
        "{m1}"
    );
    assert!(at(&m1, "realtime_hub_process_open_fds") >= 5.0, "{m1}");
    assert!(
        at(&m1, "realtime_hub_process_cpu_seconds_total") > 0.0,
        "{m1}"
    );
    assert!(at(&m1, "realtime_hub_tokio_workers") >= 1.0, "{m1}");
    assert!(at(&m1, "realtime_hub_tokio_alive_tasks") >= 2.0, "{m1}");
    let started = at(&m1, "realtime_hub_process_start_time_seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!((now - 120.0..=now).contains(&started), "{started} vs {now}");
    promtool_clean(&h1, &m1);
    promtool_clean(&h2, &m2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_and_a_flood_over_the_rate_limit_are_counted() {
    let slow_hub = Hub::builder("fam-slow")
        .api(crate::api::KEY)
        .env("HUB_SEND_QUEUE", "4")
        .env("HUB_RATE_LIMIT_PER_SEC", "1000000")
        .env("HUB_RATE_LIMIT_BURST", "1000000")
        .start()
        .await;
    let limited_hub = Hub::builder("fam-limit")
        .api(crate::api::KEY)
        .env("HUB_RATE_LIMIT_PER_SEC", "1")
        .env("HUB_RATE_LIMIT_BURST", "1")
        .env("HUB_RATE_LIMIT_MAX_REJECTS", "3")
        .start()
        .await;
    let before = slow_hub.metrics().await;
    assert_eq!(at(&before, "realtime_hub_slow_consumers_total"), 0.0);

    let r = room("slow");
    let mut sender = Client::connect(&slow_hub).await;
    let mut slow = Client::connect(&slow_hub).await;
    sender.join(&r).await;
    slow.join(&r).await;
    // `slow` never reads again: ~14 MiB fill its kernel buffers, then its queue.
    let padding = "x".repeat(60 * 1024);
    for i in 0..240 {
        sender.say(&r, &format!("{i}{padding}")).await;
    }
    let series = "realtime_hub_slow_consumers_total";
    let m = wait_for(&slow_hub, series, Duration::from_secs(20), |n| n == 1.0).await;
    assert_eq!(
        at(
            &m,
            "realtime_hub_connections_closed_total{reason=\"slow_consumer\"}"
        ),
        1.0
    );
    assert_eq!(at(&m, "realtime_hub_rate_limited_total"), 0.0);
    promtool_clean(&slow_hub, &m);
    drop(slow);

    let mut flooder = Client::connect(&limited_hub).await;
    for _ in 0..10 {
        // The hub may close before the last ones are written: what matters is what it counted.
        let _ = flooder
            .send(tokio_tungstenite::tungstenite::Message::text(
                r#"{"type":"ping"}"#,
            ))
            .await;
    }
    let (code, _) = flooder.expect_close(Duration::from_secs(5)).await;
    assert_eq!(code, Some(1008));
    let closed = "realtime_hub_connections_closed_total{reason=\"rate_limit\"}";
    let m = wait_for(&limited_hub, closed, Duration::from_secs(10), |n| n == 1.0).await;
    assert!(
        at(&m, "realtime_hub_rate_limited_total") >= 4.0,
        "3 in a row, then the 4th closes"
    );
    assert_eq!(
        at(&m, "realtime_hub_errors_total{code=\"rate_limited\"}"),
        1.0,
        "told once"
    );
    assert_eq!(at(&m, "realtime_hub_slow_consumers_total"), 0.0);
}

#[tokio::test]
async fn refused_tokens_are_counted_by_reason() {
    let hub = Hub::builder("fam-auth")
        .api(crate::api::KEY)
        .env("HUB_AUTH_MODE", "jwt")
        .env("HUB_JWT_SECRETS", SECRET)
        .env("HUB_AUTH_TIMEOUT", "1s")
        .start()
        .await;
    let mut forged = Client::connect_unwelcomed(&hub).await;
    forged
        .auth(&hs256(OTHER_SECRET, &claims("u1", "Ana", 600)))
        .await;
    let mut expired = Client::connect_unwelcomed(&hub).await;
    expired
        .auth(&hs256(SECRET, &claims("u2", "Bo", -3600)))
        .await;
    let mut silent = Client::connect_unwelcomed(&hub).await;
    silent.send_json(&json!({"type": "ping"})).await;
    let f = silent.recv_json().await;
    assert_eq!(f["code"], "unauthenticated", "{f}");
    let good = Client::connect_with_token(&hub, &hs256(SECRET, &claims("u3", "Cy", 600))).await;
    for c in [&mut forged, &mut expired, &mut silent] {
        let (code, _) = c.expect_close(Duration::from_secs(5)).await;
        assert_eq!(code, Some(4001));
    }
    let closed = "realtime_hub_connections_closed_total{reason=\"auth_failed\"}";
    let m = wait_for(&hub, closed, Duration::from_secs(10), |n| n == 3.0).await;
    for (reason, n) in [
        ("bad_signature", 1.0),
        ("expired", 1.0),
        ("no_token", 1.0),
        ("malformed", 0.0),
    ] {
        assert_eq!(
            at(
                &m,
                &format!("realtime_hub_auth_failures_total{{reason=\"{reason}\"}}")
            ),
            n,
            "{reason}"
        );
    }
    assert_eq!(
        at(&m, "realtime_hub_errors_total{code=\"unauthenticated\"}"),
        1.0
    );
    assert_eq!(at(&m, "realtime_hub_users"), 1.0);
    assert_eq!(at(&m, "realtime_hub_connections"), 1.0);
    promtool_clean(&hub, &m);
    drop(good);
}

#[tokio::test]
async fn a_redis_kill_flips_redis_up_to_0_in_prometheus_buffers_messages_and_back_to_1() {
    let mut redis = RedisServer::start().await;
    let hub = Hub::builder("fam-outage")
        .redis(&redis)
        .api(crate::api::KEY)
        .env("HUB_REDIS_PING_INTERVAL", "250ms")
        .env("HUB_REDIS_TIMEOUT", "500ms")
        .env("HUB_RECONNECT_MAX", "500ms")
        .start()
        .await;
    let target = format!("127.0.0.1:{}", hub.api_port.expect("api port"));
    let prometheus = Prometheus::start(std::slice::from_ref(&target)).await;
    let up = |want: f64| move |r: &[Value]| r.len() == 1 && value(&r[0]) == want;
    prometheus
        .wait_for("realtime_hub_redis_up", Duration::from_secs(30), up(1.0))
        .await;
    let reconnects = at(&hub.metrics().await, "realtime_hub_bridge_reconnects_total");

    let r = room("outage");
    let mut a = Client::connect(&hub).await;
    a.join(&r).await;
    redis.kill();
    prometheus
        .wait_for("realtime_hub_redis_up", Duration::from_secs(20), up(0.0))
        .await;
    // Messages sent meanwhile wait in the outage buffer, in order.
    for i in 0..5 {
        a.say(&r, &format!("held {i}")).await;
    }
    let buffered = "realtime_hub_bridge_buffered";
    wait_for(&hub, buffered, Duration::from_secs(10), |n| n == 5.0).await;

    redis.restart().await;
    prometheus
        .wait_for("realtime_hub_redis_up", Duration::from_secs(30), up(1.0))
        .await;
    let m = wait_for(&hub, buffered, Duration::from_secs(15), |n| n == 0.0).await;
    assert!(
        at(&m, "realtime_hub_bridge_reconnects_total") > reconnects,
        "reconnects did not move: {m}"
    );
    // Prometheus saw the outage too: redis_up's minimum over the last minute is 0.
    let seen = prometheus
        .query("min_over_time(realtime_hub_redis_up[1m])")
        .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(value(&seen[0]), 0.0, "{seen:?}");
    promtool_clean(&hub, &m);
}
