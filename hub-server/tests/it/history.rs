//! Issue 11, history and recovery, against real hubs and a real Redis (and a standalone hub):
//! one script call per message, offsets, acks, recovery with `since` under load, late joiners,
//! all-or-nothing failures, outages, a crashed hub, and bounded keys and memory.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::client::numbered_range as numbered;
use crate::support::{Client, Hub, RedisServer, marker, room};

/// A hub with a fast bridge (outages noticed within ~1.5 s) and a rate limit that load tests
/// do not hit.
async fn hub(name: &str, redis: &RedisServer, extra: &[(&str, &str)]) -> Hub {
    Hub::builder(name)
        .redis(redis)
        .fast_bridge()
        .env("HUB_RATE_LIMIT_PER_SEC", "5000")
        .env("HUB_RATE_LIMIT_BURST", "5000")
        .envs(extra)
        .start()
        .await
}

/// Sends `frame` (a join) and reads the replay up to `joined`: every frame before it must be a
/// replayed message of the room.
async fn join_with(client: &mut Client, room: &str, extra: Value) -> (Vec<Value>, Value) {
    let mut frame = json!({"type": "join", "room": room});
    if let (Some(frame), Some(extra)) = (frame.as_object_mut(), extra.as_object()) {
        frame.extend(extra.clone());
    }
    client.send_json(&frame).await;
    let mut replayed = Vec::new();
    loop {
        let f = client.recv_json().await;
        if f["type"] == "joined" {
            assert_eq!(f["room"], room, "{f}");
            return (replayed, f);
        }
        assert_eq!(
            (f["type"].as_str(), f["replayed"].as_bool()),
            (Some("message"), Some(true)),
            "before joined: {f}"
        );
        replayed.push(f);
    }
}

/// Says each of `contents` in `room` with a `ref`, and waits for every ack: then all are stored.
async fn say_stored(client: &mut Client, room: &str, contents: &[String]) -> Vec<Value> {
    for content in contents {
        client
            .send_json(&json!({"type": "message", "room": room, "content": content, "ref": "s"}))
            .await;
    }
    let mut acks = Vec::with_capacity(contents.len());
    while acks.len() < contents.len() {
        let f = client.recv_json().await;
        assert_eq!(f["type"], "ack", "{f}");
        acks.push(f);
    }
    acks
}

/// Waits (at most 10 s) until `room`'s history in Redis holds a message past `offset`.
async fn wait_stored_past(redis: &RedisServer, room: &str, offset: u64) {
    let meta = format!("rthub:meta:{{{room}}}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stored: Option<u64> = redis.run(redis::cmd("HGET").arg(&meta).arg("o")).await;
        if stored.is_some_and(|o| o > offset) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{meta}: offset {stored:?}, nothing stored past {offset} in 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn since(joined_or_message: &Value, offset: u64) -> Value {
    json!({"since": {"epoch": joined_or_message["epoch"], "offset": offset}})
}

fn offsets(frames: &[Value]) -> Vec<u64> {
    frames
        .iter()
        .map(|f| {
            f["offset"]
                .as_u64()
                .unwrap_or_else(|| panic!("no offset: {f}"))
        })
        .collect()
}

fn contents(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn one_script_call_per_message_offsets_count_up_the_same_on_every_hub_and_acks_carry_them() {
    let redis = RedisServer::start().await;
    let hub1 = hub("hub1", &redis, &[]).await;
    let hub2 = hub("hub2", &redis, &[]).await;
    let r = room("offsets");
    let (mut a, mut b, mut c) = (
        Client::connect(&hub1).await,
        Client::connect(&hub2).await,
        Client::connect(&hub1).await,
    );
    let joined = a.join(&r).await;
    assert_eq!(joined["offset"], 0, "a new room starts at 0: {joined}");
    let epoch = joined["epoch"].as_str().expect("an epoch").to_owned();
    b.join(&r).await;
    c.join(&r).await;

    // Once the joins' presence writes and diffs (scripts and publishes too) are done.
    let publish = redis.settled_publish_count().await;
    let evalsha = redis.command_count("evalsha").await;
    for i in 0..10 {
        a.send_json(&json!({"type": "message", "room": r, "content": format!("m{i}"), "ref": format!("ref{i}")})).await;
    }
    let mut acks = Vec::new();
    for _ in 0..10 {
        acks.push(a.recv_json().await);
    }
    for (i, ack) in acks.iter().enumerate() {
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["ref"], format!("ref{i}"));
        assert_eq!(
            ack["offset"],
            i as u64 + 1,
            "acks carry the offsets in order: {acks:?}"
        );
    }
    let on_b = b.recv_chat(10).await;
    let on_c = c.recv_chat(10).await;
    for frames in [&on_b, &on_c] {
        assert_eq!(offsets(frames), (1..=10).collect::<Vec<u64>>());
        assert!(frames.iter().all(|f| f["epoch"] == epoch.as_str()));
        assert_eq!(
            contents(frames),
            numbered("m", 0..10)
                .iter()
                .map(|s| s.replace('-', ""))
                .collect::<Vec<_>>()
        );
    }
    let ids = |frames: &[Value]| frames.iter().map(|f| f["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&on_b), ids(&on_c), "the same messages on both hubs");
    assert_eq!(
        ids(&on_b),
        acks.iter().map(|a| a["id"].clone()).collect::<Vec<_>>()
    );

    b.say(&r, "from hub2").await;
    assert_eq!(a.recv_json().await["offset"], 11);
    assert_eq!(c.recv_json().await["offset"], 11);
    assert_eq!(
        redis.command_count("evalsha").await - evalsha,
        11,
        "one script call per message"
    );
    assert_eq!(
        redis.publish_count().await - publish,
        11,
        "its publish is inside the script"
    );
    assert_eq!(
        redis.command_count("eval").await,
        0,
        "the script is cached, never sent again"
    );
}

/// A sender on hub1 keeps talking while a reader on hub2 drops (no close frame) and recovers with
/// `since`, 20 times: the reader ends with every message exactly once, in order.
#[tokio::test]
async fn recovery_with_since_loses_nothing_and_repeats_nothing_twenty_times_under_load() {
    let redis = RedisServer::start().await;
    // ~300 messages a second and up to ~0.4 s away: more than the default 100 kept.
    let keep = [("HUB_HISTORY_SIZE", "1000"), ("HUB_RECOVERY_MAX", "1000")];
    let hub1 = hub("hub1", &redis, &keep).await;
    let hub2 = hub("hub2", &redis, &keep).await;
    let r = room("recover");
    let noise_room = room("noise");

    let mut sender = Client::connect(&hub1).await;
    let mut noise = Client::connect(&hub2).await;
    let mut reader = Client::connect(&hub2).await;
    let (_, joined) = join_with(&mut reader, &r, json!({})).await;
    let epoch = joined["epoch"].clone();
    let mut last = joined["offset"].as_u64().expect("offset");

    let stop = std::sync::Arc::new(tokio::sync::Notify::new());
    let sending = {
        let (stop, r, noise_room) = (stop.clone(), r.clone(), noise_room.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            let mut tick = tokio::time::interval(Duration::from_millis(3));
            loop {
                tokio::select! {
                    _ = stop.notified() => return n,
                    _ = tick.tick() => {}
                }
                sender.say(&r, &format!("n-{n}")).await;
                noise.say(&noise_room, "noise").await;
                n += 1;
            }
        })
    };

    let mut got: Vec<Value> = Vec::new();
    let mut rng_state = 0x2545_f491_u64;
    let mut next_ms = |lo: u64, hi: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        lo + rng_state % (hi - lo)
    };
    for round in 0..20 {
        let listen_until = Instant::now() + Duration::from_millis(next_ms(50, 150));
        while let Some(left) = listen_until.checked_duration_since(Instant::now()) {
            match reader.next_event(left).await {
                Some(crate::support::Event::Frame(f)) if f["type"] == "message" => {
                    last = f["offset"].as_u64().expect("live offset");
                    got.push(f);
                }
                Some(other) => panic!("round {round}: {other:?}"),
                None => break,
            }
        }
        drop(reader); // TCP closed without a close frame
        tokio::time::sleep(Duration::from_millis(next_ms(100, 300))).await;
        // Something was said while the reader was away (stored past what it saw), however slowly
        // a loaded machine lets the sender talk: the recovery below has something to replay.
        wait_stored_past(&redis, &r, last).await;
        reader = Client::connect(&hub2).await;
        let (replayed, joined) = join_with(
            &mut reader,
            &r,
            json!({"since": {"epoch": epoch, "offset": last}}),
        )
        .await;
        assert_eq!(joined["recovered"], true, "round {round}: {joined}");
        assert!(
            !replayed.is_empty(),
            "round {round}: the sender kept talking, something was missed"
        );
        if let Some(f) = replayed.last() {
            last = f["offset"].as_u64().expect("offset");
        }
        got.extend(replayed);
    }
    stop.notify_one();
    let sent = sending.await.expect("sender task");
    let want = numbered("n", 0..sent);
    // The rest, live; a message that never comes is reported below with the others lost (a
    // loaded machine may take a while: the wait is long, the assertions are what fail).
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < sent {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            break;
        };
        match reader.next_event(left).await {
            Some(crate::support::Event::Frame(f)) => got.push(f),
            other => {
                eprintln!("after {} of {sent}: {other:?}", got.len());
                break;
            }
        }
    }
    let got_contents = contents(&got);
    let missing: Vec<&String> = want.iter().filter(|w| !got_contents.contains(w)).collect();
    let lost = missing.len();
    if lost > 0 {
        eprintln!("first lost: {:?}", &missing[..lost.min(10)]);
    }
    let mut seen = HashSet::new();
    let duplicated = got_contents.iter().filter(|c| !seen.insert(*c)).count();
    let reordered = offsets(&got)
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .count();
    eprintln!("sent {sent}: lost {lost}, duplicated {duplicated}, reordered {reordered}");
    let all = offsets(&got);
    if let Some(at) = all.windows(2).position(|w| w[1] != w[0] + 1) {
        let around = &got[at.saturating_sub(3)..(at + 4).min(got.len())];
        let brief: Vec<String> = around
            .iter()
            .map(|f| {
                format!(
                    "{}{}",
                    f["offset"],
                    if f["replayed"] == true { "r" } else { "" }
                )
            })
            .collect();
        eprintln!("around the first break: {brief:?}");
    }
    assert_eq!((lost, duplicated, reordered), (0, 0, 0), "sent {sent}");
    assert_eq!(got_contents, want);
    // Nothing more: a marker said on the sender's hub after it all is the reader's next frame.
    let mut marker_sender = Client::connect(&hub1).await;
    let mark = marker("recovered");
    marker_sender.say(&r, &mark).await;
    reader.expect_marker(&mark).await;
}

#[tokio::test]
async fn a_late_joiner_gets_the_last_n_in_order_then_live() {
    let redis = RedisServer::start().await;
    let hub1 = hub("hub1", &redis, &[]).await;
    let hub2 = hub("hub2", &redis, &[]).await;
    let r = room("late");
    let mut a = Client::connect(&hub1).await;
    say_stored(&mut a, &r, &numbered("m", 0..30)).await;
    let mut late = Client::connect(&hub2).await;
    let (replayed, joined) = join_with(&mut late, &r, json!({"history": 10})).await;
    assert_eq!(joined["offset"], 30, "{joined}");
    assert_eq!(contents(&replayed), numbered("m", 20..30));
    assert_eq!(offsets(&replayed), (21..=30).collect::<Vec<u64>>());
    a.say(&r, "live").await;
    let live = late.recv_json().await;
    assert_eq!(
        (live["content"].as_str(), live["offset"].as_u64()),
        (Some("live"), Some(31))
    );
    assert!(live.get("replayed").is_none(), "{live}");
}

#[tokio::test]
async fn recovery_is_all_or_nothing_too_old_too_many_epoch_changed_unavailable() {
    let mut redis = RedisServer::start().await;
    let small = hub("small", &redis, &[("HUB_HISTORY_SIZE", "5")]).await;
    let strict = hub("strict", &redis, &[("HUB_RECOVERY_MAX", "10")]).await;
    let mut talker = Client::connect(&small).await;
    let r_old = room("old");
    let (_, joined) = join_with(&mut talker, &r_old, json!({})).await;
    say_stored(&mut talker, &r_old, &numbered("m", 0..250)).await;
    let mut reader = Client::connect(&small).await;
    let (replayed, out) = join_with(&mut reader, &r_old, since(&joined, 1)).await;
    assert_eq!(out["offset"], 250);
    assert_eq!(
        (out["recovered"].as_bool(), out["reason"].as_str()),
        (Some(false), Some("too_old")),
        "{out}"
    );
    assert!(replayed.is_empty(), "all or nothing");
    let len: u64 = redis
        .run(redis::cmd("LLEN").arg(format!("rthub:history:{{{r_old}}}")))
        .await;
    // Trimmed approximately: at most history_size / 16 (at least 1) past it.
    assert!(
        (5..=6).contains(&len),
        "the history keeps history_size messages (+1): {len}"
    );

    let mut talker = Client::connect(&strict).await;
    let r_many = room("many");
    let (_, joined) = join_with(&mut talker, &r_many, json!({})).await;
    for i in 0..20 {
        talker
            .send_json(
                &json!({"type": "message", "room": r_many, "content": format!("m{i}"), "ref": "x"}),
            )
            .await;
    }
    for _ in 0..20 {
        assert_eq!(talker.recv_json().await["type"], "ack");
    }
    let mut reader = Client::connect(&strict).await;
    let (replayed, out) = join_with(&mut reader, &r_many, since(&joined, 0)).await;
    assert_eq!(
        (out["recovered"].as_bool(), out["reason"].as_str()),
        (Some(false), Some("too_many")),
        "{out}"
    );
    assert!(replayed.is_empty());
    let (replayed, out) = join_with(&mut reader, &r_many, since(&joined, 12)).await;
    assert_eq!(out["recovered"], true, "{out}");
    assert_eq!(offsets(&replayed), (13..=20).collect::<Vec<u64>>());

    // FLUSHALL: the history is gone, and the epoch says so.
    let _: () = redis.run(&redis::cmd("FLUSHALL")).await;
    let mut fresh = Client::connect(&strict).await;
    let (replayed, out) = join_with(&mut fresh, &r_many, since(&joined, 20)).await;
    assert_eq!(
        (out["recovered"].as_bool(), out["reason"].as_str()),
        (Some(false), Some("epoch_changed")),
        "{out}"
    );
    assert!(replayed.is_empty());
    assert_ne!(out["epoch"], joined["epoch"]);
    assert_eq!(out["offset"], 0);

    // Redis restarted empty: a new epoch again.
    let before = out;
    redis.restart().await;
    strict.wait_health(200, "up", Duration::from_secs(10)).await;
    let mut fresh = Client::connect(&strict).await;
    let (_, out) = join_with(&mut fresh, &r_many, since(&before, 0)).await;
    assert_eq!(out["reason"], "epoch_changed", "{out}");

    // Redis down: the join works for live traffic, recovery is `unavailable`.
    redis.kill();
    strict
        .wait_health(503, "down", Duration::from_secs(10))
        .await;
    let mut member = Client::connect(&strict).await;
    let (replayed, out) = join_with(&mut member, &r_many, since(&before, 0)).await;
    assert_eq!(
        (out["recovered"].as_bool(), out["reason"].as_str()),
        (Some(false), Some("unavailable")),
        "{out}"
    );
    assert!(replayed.is_empty());
    let mut other = Client::connect(&strict).await;
    other.say(&r_many, "during the outage").await;
    let live = member.recv_json().await;
    assert_eq!(live["content"], "during the outage");
    assert!(
        live.get("offset").is_none(),
        "no offset while Redis is down: {live}"
    );
}

/// A stall (Redis frozen, data kept): messages sent meanwhile are delivered on their hub at once
/// without offset, stored when Redis is back, and a client recovering across the window gets
/// each exactly once, under the ids it already saw.
#[tokio::test]
async fn messages_from_an_outage_get_offsets_when_flushed_and_recover_once() {
    let redis = RedisServer::start().await;
    let a = hub("hub-a", &redis, &[]).await;
    let b = hub("hub-b", &redis, &[]).await;
    let r = room("outage");
    let (mut a1, mut a2, mut b1) = (
        Client::connect(&a).await,
        Client::connect(&a).await,
        Client::connect(&b).await,
    );
    a1.join(&r).await;
    let (_, joined) = join_with(&mut a2, &r, json!({})).await;
    b1.join(&r).await;
    a1.say(&r, "before").await;
    let before = a2.recv_json().await;
    assert_eq!(b1.recv_json().await["offset"], 1);
    assert_eq!(before["offset"], 1);

    redis.stop();
    a.wait_health(503, "down", Duration::from_secs(5)).await;
    let during = numbered("during", 0..5);
    let mut local_ids = Vec::new();
    for content in &during {
        a1.say(&r, content).await;
        let f = a2.recv_json_within(Duration::from_millis(500)).await;
        assert_eq!(f["content"], content.as_str());
        assert!(
            f.get("offset").is_none(),
            "delivered during the outage, no offset yet: {f}"
        );
        local_ids.push(f["id"].clone());
    }
    redis.cont();
    a.wait_health(200, "up", Duration::from_secs(10)).await;
    let flushed = b1.recv_chat_within(5, Duration::from_secs(10)).await;
    assert_eq!(contents(&flushed), during);
    assert_eq!(
        offsets(&flushed),
        (2..=6).collect::<Vec<u64>>(),
        "offsets given when flushed"
    );
    // a2 had them at once: stored and back from Redis, they do not come again. b1's marker
    // broadcast reaches hub A through Redis behind them (and is not stored: the recovery below
    // sees the five alone).
    let mark = marker("flushed");
    b1.broadcast(&mark).await;
    a2.expect_marker(&mark).await;

    let mut recovering = Client::connect(&a).await;
    let (replayed, out) = join_with(&mut recovering, &r, since(&joined, 1)).await;
    assert_eq!(out["recovered"], true, "{out}");
    assert_eq!(contents(&replayed), during, "each once, in order");
    let replayed_ids: Vec<Value> = replayed.iter().map(|f| f["id"].clone()).collect();
    assert_eq!(
        replayed_ids, local_ids,
        "the ids a2 saw live: a client drops them as copies"
    );
}

#[tokio::test]
async fn a_hub_killed_with_sigkill_comes_back_and_its_clients_recover_what_they_missed() {
    let redis = RedisServer::start().await;
    let hub1 = hub("hub1", &redis, &[]).await;
    let mut hub2 = hub("hub2", &redis, &[]).await;
    let r = room("crash");
    let mut talker = Client::connect(&hub1).await;
    talker.join(&r).await;
    let mut c = Client::connect(&hub2).await;
    let (_, joined) = join_with(&mut c, &r, json!({})).await;
    talker.say(&r, "first").await;
    let first = c.recv_json().await;
    let last = first["offset"].as_u64().expect("offset");

    let port = hub2.port;
    hub2.kill9();
    for content in numbered("missed", 0..10) {
        talker
            .send_json(&json!({"type": "message", "room": r, "content": content, "ref": "r"}))
            .await;
        assert_eq!(talker.recv_json().await["type"], "ack");
    }
    let hub2 = Hub::builder("hub2").redis(&redis).port(port).start().await;
    let mut c = Client::connect(&hub2).await;
    let (replayed, out) = join_with(&mut c, &r, since(&joined, last)).await;
    assert_eq!(out["recovered"], true, "{out}");
    assert_eq!(contents(&replayed), numbered("missed", 0..10));
    talker.say(&r, "after").await;
    assert_eq!(c.recv_json().await["content"], "after");
}

#[tokio::test]
async fn standalone_hubs_serve_the_same_protocol_from_memory() {
    let hub = Hub::builder("solo")
        .env("HUB_HISTORY_SIZE", "5")
        .start()
        .await;
    let r = room("solo");
    let mut a = Client::connect(&hub).await;
    let mut b = Client::connect(&hub).await;
    let (_, joined) = join_with(&mut b, &r, json!({})).await;
    assert_eq!(joined["offset"], 0);
    for i in 0..8 {
        a.send_json(&json!({"type": "message", "room": r, "content": format!("m{i}"), "ref": format!("{i}")})).await;
        assert_eq!(a.recv_json().await["offset"], i + 1);
    }
    let live = b.recv_chat(8).await;
    assert_eq!(offsets(&live), (1..=8).collect::<Vec<u64>>());

    let mut c = Client::connect(&hub).await;
    let (replayed, out) = join_with(&mut c, &r, json!({"history": 3})).await;
    assert_eq!(
        (offsets(&replayed), out["offset"].as_u64()),
        (vec![6, 7, 8], Some(8))
    );
    let mut d = Client::connect(&hub).await;
    let (replayed, out) = join_with(&mut d, &r, since(&joined, 5)).await;
    assert_eq!(
        (out["recovered"].as_bool(), offsets(&replayed)),
        (Some(true), vec![6, 7, 8])
    );
    let (replayed, out) = join_with(&mut d, &r, since(&joined, 1)).await;
    assert_eq!(
        (out["reason"].as_str(), replayed.len()),
        (Some("too_old"), 0),
        "only 5 kept"
    );
    let (_, out) = join_with(
        &mut d,
        &r,
        json!({"since": {"epoch": "bogus", "offset": 7}}),
    )
    .await;
    assert_eq!(out["reason"], "epoch_changed");
    a.say(&r, "live").await;
    assert_eq!(c.recv_json().await["offset"], 9);
}

#[tokio::test]
async fn history_keys_are_trimmed_expire_when_silent_and_ten_thousand_rooms_stay_small() {
    let redis = RedisServer::start().await;
    let fast = [
        ("HUB_HISTORY_TTL", "2s"),
        ("HUB_RATE_LIMIT_PER_SEC", "100000"),
        ("HUB_RATE_LIMIT_BURST", "100000"),
    ];
    let hub1 = hub("hub1", &redis, &fast).await;
    let mut a = Client::connect(&hub1).await;
    let r = room("trim");
    for i in 0..600 {
        a.send_json(&json!({"type": "message", "room": r, "content": format!("m{i}"), "ref": "x"}))
            .await;
    }
    for _ in 0..600 {
        assert_eq!(a.recv_json().await["type"], "ack");
    }
    let list = format!("rthub:history:{{{r}}}");
    let meta = format!("rthub:meta:{{{r}}}");
    let len: u64 = redis.run(redis::cmd("LLEN").arg(&list)).await;
    // Trimmed approximately: at most history_size / 16 past it (README, "History").
    assert!((100..=106).contains(&len), "history_size 100 of 600: {len}");
    // history_ttl (2 s) + twice the refresh interval (2 x 2 s / 16) as margin, counted from the
    // last refresh: set, and no longer than that (however long ago the refresh was).
    for key in [&list, &meta] {
        let pttl: i64 = redis.run(redis::cmd("PTTL").arg(key)).await;
        assert!((1..=2250).contains(&pttl), "{key}: PTTL {pttl} ms");
    }
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(
        !redis.exists(&list).await && !redis.exists(&meta).await,
        "gone after 2 s of silence"
    );

    // 10,000 rooms with one 100-byte message each.
    let memory = |info: String| -> i64 {
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory")
    };
    let before = memory(redis.run(redis::cmd("INFO").arg("memory")).await);
    let body = "x".repeat(100);
    let rooms: Vec<String> = (0..10_000).map(|i| format!("mem-{i}")).collect();
    for chunk in rooms.chunks(500) {
        for r in chunk {
            a.send_json(&json!({"type": "message", "room": r, "content": body, "ref": "m"}))
                .await;
        }
        for _ in chunk {
            let f = a.recv_json().await;
            assert_eq!(f["type"], "ack", "{f}");
        }
    }
    let after = memory(redis.run(redis::cmd("INFO").arg("memory")).await);
    let per_room = (after - before) / 10_000;
    eprintln!("10,000 rooms with one message: {per_room} bytes of Redis memory per room");
    // README, "History": at most 2 KiB per room holding one such message.
    assert!(per_room <= 2048, "{per_room} bytes per room");
}

/// A client already in a room that joins it again (as a page does for `general`) keeps every
/// message: nothing waits for it and nothing is dropped.
#[tokio::test]
async fn joining_a_room_one_is_already_in_loses_nothing() {
    let redis = RedisServer::start().await;
    let hub1 = hub("hub1", &redis, &[]).await;
    let hub2 = hub("hub2", &redis, &[]).await;
    let r = room("rejoin");
    let mut sender = Client::connect(&hub1).await;
    let mut member = Client::connect(&hub2).await;
    member.join(&r).await;
    let want = numbered("m", 0..200);
    let sending = {
        let (r, want) = (r.clone(), want.clone());
        tokio::spawn(async move {
            for content in &want {
                sender.say(&r, content).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            sender
        })
    };
    let mut got = Vec::new();
    let mut rejoins = 0;
    while got.len() < want.len() {
        if got.len() % 20 == 10 && rejoins < got.len() / 20 + 1 {
            member.send_json(&json!({"type": "join", "room": r})).await;
            rejoins += 1;
        }
        let f = member.recv_json().await;
        if f["type"] == "message" {
            got.push(f);
        } else {
            assert_eq!(f["type"], "joined", "{f}");
        }
    }
    let _sender = sending.await.expect("sender");
    assert!(rejoins >= 5, "{rejoins} rejoins");
    assert_eq!(
        contents(&got),
        want,
        "every message once, in order, across {rejoins} rejoins"
    );
}

/// A hub whose bridge queue overflows while Redis is up (a burst far past `bridge_buffer`) fails
/// the overflowing messages to their sender and delivers them nowhere: every member, on this hub
/// and the other, gets exactly the acked messages, in the order they were sent. (It used to deliver
/// an overflowing message to the local members at once, ahead of older ones still on their way
/// round through Redis.)
#[tokio::test]
async fn an_overflowing_bridge_queue_fails_messages_to_the_sender_and_reorders_nothing() {
    let redis = RedisServer::start().await;
    let tiny = [
        ("HUB_BRIDGE_BUFFER", "2"),
        ("HUB_RATE_LIMIT_PER_SEC", "100000"),
        ("HUB_RATE_LIMIT_BURST", "100000"),
    ];
    let hub1 = hub("hub1", &redis, &tiny).await;
    let hub2 = hub("hub2", &redis, &[]).await;
    let r = room("overflow");
    let mut sender = Client::connect(&hub1).await;
    let mut near = Client::connect(&hub1).await;
    let mut far = Client::connect(&hub2).await;
    for c in [&mut sender, &mut near, &mut far] {
        c.join(&r).await;
    }
    let n = 2000;
    let sent = numbered("m", 0..n);
    let (mut acked, mut failed) = (HashSet::new(), HashSet::new());
    // Bursts of 200, each far past the queue of 2; the answers are read between bursts, so the
    // sender's own queue (1024 frames) never fills with them.
    for (i, burst) in sent.chunks(200).enumerate() {
        for content in burst {
            sender
                .send_json(
                    &json!({"type": "message", "room": r, "content": content, "ref": content}),
                )
                .await;
        }
        while acked.len() + failed.len() < (i + 1) * 200 {
            let f = sender.recv_json().await;
            let reference = f["ref"].as_str().unwrap_or_default().to_owned();
            match f["type"].as_str() {
                Some("ack") => acked.insert(reference),
                Some("error") => {
                    assert_eq!(f["code"], "unavailable", "{f}");
                    failed.insert(reference)
                }
                _ => panic!("sender: {f}"),
            };
        }
    }
    assert!(
        !failed.is_empty(),
        "a burst of {n} into a queue of 2 overflows"
    );
    assert!(!acked.is_empty(), "some of the burst got through");
    say_stored(&mut sender, &r, &["end".to_owned()]).await;
    let want: Vec<String> = sent
        .iter()
        .filter(|c| acked.contains(*c))
        .cloned()
        .collect();
    for (name, member) in [("hub1", &mut near), ("hub2", &mut far)] {
        let mut got = Vec::new();
        loop {
            let f = member.recv_json().await;
            assert_eq!(f["type"], "message", "{name}: {f}");
            let content = f["content"].as_str().unwrap_or_default().to_owned();
            if content == "end" {
                break;
            }
            got.push(content);
        }
        assert_eq!(
            got,
            want,
            "{name}: the {} acked messages once each, in order, none of the {} failed",
            acked.len(),
            failed.len()
        );
    }
}
