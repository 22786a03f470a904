//! Issue 12, presence across hubs against a real Redis and real hubs: the same members on every
//! hub, `presence_diff` once per first join / last leave, the leave delay, a hub killed with
//! SIGKILL, and a Redis restarted empty.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::token::{SECRET, claims, hs256};
use crate::support::{Client, Hub, QUIET, RECV_TIMEOUT, RedisServer, room};

async fn jwt_hub(name: &str, redis: &RedisServer, extra: &[(&str, &str)]) -> Hub {
    let mut builder = Hub::builder(name)
        .redis(redis)
        .env("HUB_AUTH_MODE", "jwt")
        .env("HUB_JWT_SECRETS", SECRET)
        .env("HUB_PRESENCE_LEAVE_DELAY", "1s");
    for (key, value) in extra {
        builder = builder.env(key, value);
    }
    builder.start().await
}

async fn user(hub: &Hub, sub: &str, room: &str) -> Client {
    let mut client =
        Client::connect_with_token(hub, &hs256(SECRET, &claims(sub, &sub.to_uppercase(), 600)))
            .await;
    client.join(room).await;
    client
}

/// The room's members as `(user, connections)`, sorted, as `client` is told.
async fn members(client: &mut Client, room: &str) -> Vec<(String, u64)> {
    client
        .send_json(&json!({"type": "presence", "room": room}))
        .await;
    let answer = client.recv_json().await;
    assert_eq!(
        (answer["type"].as_str(), answer["room"].as_str()),
        (Some("presence"), Some(room)),
        "{answer}"
    );
    let list = answer["members"].as_array().expect("members").clone();
    assert_eq!(answer["count"], list.len(), "{answer}");
    let mut out: Vec<(String, u64)> = list
        .iter()
        .map(|m| {
            (
                m["user"].as_str().unwrap_or_default().to_owned(),
                m["connections"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

/// Waits `quiet`, then takes every `presence_diff` the client has seen for `room` as
/// `(+user | -user)` strings.
async fn diffs(client: &mut Client, room: &str, quiet: Duration) -> Vec<String> {
    client.expect_no_frame(quiet).await;
    let mut out = Vec::new();
    for d in client
        .presence_diffs
        .drain(..)
        .filter(|d| d["room"] == room)
    {
        for j in d["joins"].as_array().into_iter().flatten() {
            out.push(format!("+{}", j["user"].as_str().unwrap_or_default()));
        }
        for l in d["leaves"].as_array().into_iter().flatten() {
            out.push(format!("-{}", l["user"].as_str().unwrap_or_default()));
        }
    }
    out
}

/// Waits (at most `within`) until `client` has seen a `presence_diff` for `room`, then QUIET more
/// for any that should not come; returns them as [`diffs`] does, and when the first was seen.
async fn next_diffs(client: &mut Client, room: &str, within: Duration) -> (Vec<String>, Instant) {
    let deadline = Instant::now() + within;
    while !client.presence_diffs.iter().any(|d| d["room"] == room) {
        assert!(
            Instant::now() < deadline,
            "client {}: no presence_diff for {room} within {within:?}",
            client.id
        );
        // A diff is kept and the wait goes on; any other frame fails the test.
        client.expect_no_frame(Duration::from_millis(20)).await;
    }
    let seen = Instant::now();
    (diffs(client, room, QUIET).await, seen)
}

/// How many hubs the registry lists.
async fn live_hubs(redis: &RedisServer) -> usize {
    let live: Vec<String> = redis
        .run(redis::cmd("ZRANGE").arg("rthub:{hubs}").arg(0).arg(-1))
        .await;
    live.len()
}

fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(u, n)| (u.to_string(), *n)).collect()
}

#[tokio::test]
async fn every_hub_answers_the_same_members_and_diffs_come_once_per_first_join_and_last_leave() {
    // Leave delay 2 s: time enough for a reconnect below on a loaded machine.
    const LEAVE_DELAY: Duration = Duration::from_secs(2);
    let redis = RedisServer::start().await;
    let delay = [("HUB_PRESENCE_LEAVE_DELAY", "2s")];
    let hub1 = jwt_hub("hub1", &redis, &delay).await;
    let hub2 = jwt_hub("hub2", &redis, &delay).await;
    let r = room("presence");
    let mut o1 = user(&hub1, "u-o1", &r).await;
    let mut o2 = user(&hub2, "u-o2", &r).await;
    diffs(&mut o1, &r, QUIET).await;
    diffs(&mut o2, &r, QUIET).await;

    let ana1 = user(&hub1, "u-ana", &r).await;
    let ana2 = user(&hub2, "u-ana", &r).await;
    for o in [&mut o1, &mut o2] {
        assert_eq!(
            diffs(o, &r, QUIET).await,
            vec!["+u-ana"],
            "one join for two connections"
        );
        assert_eq!(
            members(o, &r).await,
            pairs(&[("u-ana", 2), ("u-o1", 1), ("u-o2", 1)]),
            "the same answer on every hub"
        );
    }
    let answer = {
        o1.send_json(&json!({"type": "presence", "room": r})).await;
        o1.recv_json().await
    };
    let ana: &Value = answer["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["user"] == "u-ana"))
        .expect("ana");
    assert_eq!(ana["name"], "U-ANA");

    drop(ana2);
    assert!(
        diffs(&mut o1, &r, Duration::from_millis(1500))
            .await
            .is_empty(),
        "ana is still on hub1"
    );
    // The hub notices the close after `dropped`: the leave cannot come before the delay.
    let dropped = Instant::now();
    drop(ana1);
    for o in [&mut o1, &mut o2] {
        let (got, seen) = next_diffs(o, &r, LEAVE_DELAY + Duration::from_secs(10)).await;
        assert_eq!(got, vec!["-u-ana"], "one leave");
        let after = seen - dropped;
        assert!(
            after >= LEAVE_DELAY,
            "the leave came {after:?} after the close: before the delay"
        );
    }
    assert_eq!(
        members(&mut o2, &r).await,
        pairs(&[("u-o1", 1), ("u-o2", 1)])
    );

    // A reconnect within presence_leave_delay says nothing at all.
    let bob = user(&hub1, "u-bob", &r).await;
    assert_eq!(
        next_diffs(&mut o2, &r, RECV_TIMEOUT).await.0,
        vec!["+u-bob"]
    );
    drop(bob);
    let dropped = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _bob = user(&hub2, "u-bob", &r).await;
    assert!(
        dropped.elapsed() < LEAVE_DELAY,
        "the reconnect took {:?}: not within the leave delay, the test proves nothing",
        dropped.elapsed()
    );
    // Listen until well past the moment a leave that was not called off would come.
    let listen = (LEAVE_DELAY + Duration::from_secs(1)).saturating_sub(dropped.elapsed());
    assert!(
        diffs(&mut o2, &r, listen).await.is_empty(),
        "no leave, no join"
    );
    assert_eq!(
        members(&mut o1, &r).await,
        pairs(&[("u-bob", 1), ("u-o1", 1), ("u-o2", 1)])
    );
}

#[tokio::test]
async fn a_hub_killed_with_sigkill_leaves_presence_within_15_s_and_its_users_leave_once() {
    let redis = RedisServer::start().await;
    let hub1 = jwt_hub("hub1", &redis, &[]).await;
    let mut hub2 = jwt_hub("hub2", &redis, &[]).await;
    let hub3 = jwt_hub("hub3", &redis, &[]).await;
    let r = room("crash");
    let mut o1 = user(&hub1, "u-o1", &r).await;
    let mut o3 = user(&hub3, "u-o3", &r).await;
    let _victim = user(&hub2, "u-victim", &r).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while live_hubs(&redis).await != 3 {
        assert!(
            Instant::now() < deadline,
            "three hubs never in the registry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    diffs(&mut o1, &r, QUIET).await;
    diffs(&mut o3, &r, Duration::ZERO).await;
    assert!(
        members(&mut o1, &r)
            .await
            .iter()
            .any(|(u, _)| u == "u-victim")
    );

    hub2.kill9();
    let killed = Instant::now();
    let deadline = killed + Duration::from_secs(15);
    loop {
        let got = diffs(&mut o1, &r, Duration::from_millis(200)).await;
        if !got.is_empty() {
            assert_eq!(got, vec!["-u-victim"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no leave for the dead hub's user within 15 s"
        );
    }
    eprintln!(
        "dead hub's user left presence {:?} after SIGKILL",
        killed.elapsed()
    );
    assert_eq!(
        next_diffs(&mut o3, &r, Duration::from_secs(10)).await.0,
        vec!["-u-victim"],
        "once on every survivor"
    );
    assert_eq!(
        diffs(&mut o1, &r, Duration::ZERO).await,
        Vec::<String>::new(),
        "and only once"
    );
    assert_eq!(
        members(&mut o3, &r).await,
        pairs(&[("u-o1", 1), ("u-o3", 1)])
    );
    assert_eq!(live_hubs(&redis).await, 2, "the dead hub left the registry");
}

#[tokio::test]
async fn no_stale_member_survives_a_redis_restart() {
    let mut redis = RedisServer::start().await;
    let hub1 = Hub::builder("hub1")
        .redis(&redis)
        .env("HUB_AUTH_MODE", "jwt")
        .env("HUB_JWT_SECRETS", SECRET)
        .env("HUB_PRESENCE_LEAVE_DELAY", "0s")
        .env("HUB_HUB_HEARTBEAT", "500ms")
        .env("HUB_REDIS_PING_INTERVAL", "500ms")
        .env("HUB_REDIS_TIMEOUT", "1s")
        .env("HUB_RECONNECT_MAX", "500ms")
        .start()
        .await;
    let r = room("restart");
    let mut stays = user(&hub1, "u-stays", &r).await;
    let goes = user(&hub1, "u-goes", &r).await;
    // Presence is written by the hub's writer task just after the join: wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while members(&mut stays, &r).await != pairs(&[("u-goes", 1), ("u-stays", 1)]) {
        assert!(Instant::now() < deadline, "both users never listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    stays.presence_diffs.clear();
    redis.kill();
    drop(goes);
    redis.restart().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        stays
            .send_json(&json!({"type": "presence", "room": r}))
            .await;
        let answer = stays.recv_json().await;
        let users: Vec<&str> = answer["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["user"].as_str())
            .collect();
        if users == ["u-stays"] {
            break;
        }
        assert!(
            !users.contains(&"u-goes") || Instant::now() < deadline,
            "a stale member after the restart: {answer}"
        );
        assert!(
            Instant::now() < deadline,
            "presence not rebuilt after the restart: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Rebuilding what Redis lost is no news: nobody saw u-stays leave, so nobody hears it join.
    stays.expect_no_frame(Duration::from_secs(1)).await;
    let rejoined: Vec<&Value> = stays
        .presence_diffs
        .iter()
        .filter(|d| d["joins"].to_string().contains("u-stays"))
        .collect();
    assert!(rejoined.is_empty(), "announced again: {rejoined:?}");
}
