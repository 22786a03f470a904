//! Issue 12, presence across hubs against a real Redis and real hubs: the same members on every
//! hub, `presence_diff` once per first join / last leave, the leave delay, a hub killed with
//! SIGKILL, and a Redis restarted empty.
//!
//! "No diff (more)" is shown with marks, not by listening a while: a mark is a fresh user joining a
//! marker room on each hub. A hub's presence writer handles changes one after another and
//! announces each room's diffs in the order their events came, so a diff that hub owed before the
//! mark reaches every listener before the mark's `+user`. What a hub announces after a timer (a
//! leave delay, a dead hub's reaping) is waited for in Redis first, where it is written before it
//! is announced.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::hub::HubBuilder;
use crate::support::token::{SECRET, claims, hs256};
use crate::support::{Client, Event, Hub, RECV_TIMEOUT, RedisServer, TwoHubs, room};

/// jwt mode, a leave delay of 1 s unless `extra` says otherwise.
fn jwt(builder: HubBuilder, extra: &[(&str, &str)]) -> HubBuilder {
    builder
        .jwt(SECRET)
        .env("HUB_PRESENCE_LEAVE_DELAY", "1s")
        .envs(extra)
}

async fn jwt_hub(name: &str, redis: &RedisServer, extra: &[(&str, &str)]) -> Hub {
    jwt(Hub::builder(name).redis(redis), extra).start().await
}

/// A client signed in as `sub` that joined each of `rooms`.
async fn user(hub: &Hub, sub: &str, rooms: &[&str]) -> Client {
    let mut client =
        Client::connect_with_token(hub, &hs256(SECRET, &claims(sub, &sub.to_uppercase(), 600)))
            .await;
    for room in rooms {
        client.join(room).await;
    }
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

/// `(+user | -user)` for each event of `diffs` in `room`, in order.
fn events(diffs: &[Value], room: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in diffs.iter().filter(|d| d["room"] == room) {
        for j in d["joins"].as_array().into_iter().flatten() {
            out.push(format!("+{}", j["user"].as_str().unwrap_or_default()));
        }
        for l in d["leaves"].as_array().into_iter().flatten() {
            out.push(format!("-{}", l["user"].as_str().unwrap_or_default()));
        }
    }
    out
}

/// Reads `client` until `done` holds for the diffs it set aside (at most `within`; any other
/// frame fails the test); then takes them all.
async fn diffs_until(
    client: &mut Client,
    within: Duration,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + within;
    while !done(&client.presence_diffs) {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.next_event_or_diff(left, true).await {
            Some(Event::Frame(frame)) if frame["type"] == "presence_diff" => {}
            Some(Event::Frame(frame)) => panic!(
                "client {}: {frame} while waiting for {what}; diffs: {:?}",
                client.id, client.presence_diffs
            ),
            Some(other) => panic!("client {}: {other:?} while waiting for {what}", client.id),
            None => panic!(
                "client {}: {what} not within {within:?}; diffs: {:?}",
                client.id, client.presence_diffs
            ),
        }
    }
    std::mem::take(&mut client.presence_diffs)
}

/// Waits (at most `within`) for the next diff of `room`; returns its events and when it came.
async fn next_diff(client: &mut Client, room: &str, within: Duration) -> (Vec<String>, Instant) {
    let what = format!("a presence_diff of {room}");
    let diffs = diffs_until(client, within, &what, |d| !events(d, room).is_empty()).await;
    (events(&diffs, room), Instant::now())
}

/// The events of `room` each of `listeners` got before the marks: a fresh user joins `marks` on
/// each of `hubs` (every listener joined `marks` before).
async fn events_before_marks(
    listeners: &mut [&mut Client],
    hubs: &[&Hub],
    room: &str,
    marks: &str,
) -> Vec<Vec<String>> {
    let mut users = Vec::new();
    let mut markers = Vec::new();
    for hub in hubs {
        let sub = format!("u-mark-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        markers.push(user(hub, &sub, &[marks]).await);
        users.push(format!("+{sub}"));
    }
    let mut out = Vec::new();
    for listener in listeners.iter_mut() {
        let marked = |d: &[Value]| {
            let seen = events(d, marks);
            users.iter().all(|u| seen.contains(u))
        };
        let diffs = diffs_until(listener, RECV_TIMEOUT, "the marks", marked).await;
        out.push(events(&diffs, room));
    }
    out
}

/// Waits (at most `within`) until hub `instance` has no entry for `user` in `room` in Redis: its
/// presence writer wrote the leave, and has announced it if it ever will.
async fn wait_entry_gone(
    redis: &RedisServer,
    room: &str,
    instance: &str,
    user: &str,
    within: Duration,
) {
    let (key, field) = (
        format!("rthub:presence:{{{room}}}"),
        format!("{instance}|{user}"),
    );
    let deadline = Instant::now() + within;
    while redis.hgetall(&key).await.contains_key(&field) {
        assert!(
            Instant::now() < deadline,
            "{key} still holds {field} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn instance(client: &Client) -> String {
    client.welcome["instance_id"]
        .as_str()
        .expect("instance_id")
        .to_owned()
}

/// How many hubs the registry lists.
async fn live_hubs(redis: &RedisServer) -> usize {
    let live: Vec<String> = redis
        .run(redis::cmd("ZRANGE").arg("rthub:{hubs}").arg(0).arg(-1))
        .await;
    live.len()
}

/// A hub that announces leaves at once and beats every 500 ms, on a fast bridge.
async fn quick_hub(redis: &RedisServer) -> Hub {
    Hub::builder("hub1")
        .redis(redis)
        .jwt(SECRET)
        .fast_bridge()
        .env("HUB_PRESENCE_LEAVE_DELAY", "0s")
        .env("HUB_HUB_HEARTBEAT", "500ms")
        .start()
        .await
}

/// User `u-stays` in `room` on `hub`, once the room's presence lists it alone (within 5 s).
async fn listed_alone(hub: &Hub, room: &str) -> Client {
    let mut stays = user(hub, "u-stays", &[room]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while members(&mut stays, room).await != pairs(&[("u-stays", 1)]) {
        assert!(Instant::now() < deadline, "u-stays never listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stays
}

fn pairs(list: &[(&str, u64)]) -> Vec<(String, u64)> {
    list.iter().map(|(u, n)| (u.to_string(), *n)).collect()
}

#[tokio::test]
async fn every_hub_answers_the_same_members_and_diffs_come_once_per_first_join_and_last_leave() {
    // Leave delay 2 s: time enough for a reconnect below on a loaded machine.
    const LEAVE_DELAY: Duration = Duration::from_secs(2);
    let delay = [("HUB_PRESENCE_LEAVE_DELAY", "2s")];
    let two = TwoHubs::start_named(["hub1", "hub2"], |b| jwt(b, &delay)).await;
    let (hub1, hub2) = (&two.a, &two.b);
    let hubs = [hub1, hub2];
    let (r, marks) = (room("presence"), room("marks"));
    let mut o1 = user(hub1, "u-o1", &[&r, &marks]).await;
    let mut o2 = user(hub2, "u-o2", &[&r, &marks]).await;
    // What the listeners' own joins caused is behind them once the first marks are in.
    events_before_marks(&mut [&mut o1, &mut o2], &hubs, &r, &marks).await;

    let ana1 = user(hub1, "u-ana", &[&r]).await;
    let ana2 = user(hub2, "u-ana", &[&r]).await;
    for got in events_before_marks(&mut [&mut o1, &mut o2], &hubs, &r, &marks).await {
        assert_eq!(got, vec!["+u-ana"], "one join for two connections");
    }
    for o in [&mut o1, &mut o2] {
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

    // ana leaves hub2 but is still on hub1: once hub2 has written its leave (after the delay),
    // nobody has heard of it.
    drop(ana2);
    let redis = &two.redis;
    wait_entry_gone(redis, &r, &instance(&o2), "u-ana", LEAVE_DELAY * 5).await;
    for got in events_before_marks(&mut [&mut o1, &mut o2], &hubs, &r, &marks).await {
        assert_eq!(got, Vec::<String>::new(), "ana is still on hub1");
    }
    // The hub notices the close after `dropped`: the leave cannot come before the delay.
    let dropped = Instant::now();
    drop(ana1);
    for o in [&mut o1, &mut o2] {
        let (got, seen) = next_diff(o, &r, LEAVE_DELAY + Duration::from_secs(10)).await;
        assert_eq!(got, vec!["-u-ana"], "one leave");
        let after = seen - dropped;
        assert!(
            after >= LEAVE_DELAY,
            "the leave came {after:?} after the close: before the delay"
        );
    }
    for got in events_before_marks(&mut [&mut o1, &mut o2], &hubs, &r, &marks).await {
        assert_eq!(got, Vec::<String>::new(), "only one leave");
    }
    assert_eq!(
        members(&mut o2, &r).await,
        pairs(&[("u-o1", 1), ("u-o2", 1)])
    );

    // A reconnect within presence_leave_delay says nothing at all.
    let bob = user(hub1, "u-bob", &[&r]).await;
    for o in [&mut o1, &mut o2] {
        assert_eq!(next_diff(o, &r, RECV_TIMEOUT).await.0, vec!["+u-bob"]);
    }
    drop(bob);
    let dropped = Instant::now();
    // Back a moment later (not within the same write), on the other hub.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _bob = user(hub2, "u-bob", &[&r]).await;
    assert!(
        dropped.elapsed() < LEAVE_DELAY,
        "the reconnect took {:?}: not within the leave delay, the test proves nothing",
        dropped.elapsed()
    );
    // hub1 writes the leave it held once the delay is over: then nothing may have been said.
    wait_entry_gone(redis, &r, &instance(&o1), "u-bob", LEAVE_DELAY * 5).await;
    for got in events_before_marks(&mut [&mut o1, &mut o2], &hubs, &r, &marks).await {
        assert_eq!(got, Vec::<String>::new(), "no leave, no join");
    }
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
    let (r, marks) = (room("crash"), room("marks"));
    let mut o1 = user(&hub1, "u-o1", &[&r, &marks]).await;
    let mut o3 = user(&hub3, "u-o3", &[&r, &marks]).await;
    let _victim = user(&hub2, "u-victim", &[&r]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while live_hubs(&redis).await != 3 {
        assert!(
            Instant::now() < deadline,
            "three hubs never in the registry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    events_before_marks(&mut [&mut o1, &mut o3], &[&hub1, &hub2, &hub3], &r, &marks).await;
    assert!(
        members(&mut o1, &r)
            .await
            .iter()
            .any(|(u, _)| u == "u-victim")
    );

    hub2.kill9();
    let killed = Instant::now();
    let (got, _) = next_diff(&mut o1, &r, Duration::from_secs(15)).await;
    assert_eq!(got, vec!["-u-victim"]);
    eprintln!(
        "dead hub's user left presence {:?} after SIGKILL",
        killed.elapsed()
    );
    assert_eq!(
        next_diff(&mut o3, &r, Duration::from_secs(10)).await.0,
        vec!["-u-victim"],
        "once on every survivor"
    );
    // One survivor reaped the dead hub. Each survivor beats (and so looks for dead hubs, reaping
    // any it finds) every 2 s: once both have beaten since, nothing more may have been said.
    let now: (u64, u64) = redis.run(&redis::cmd("TIME")).await;
    let since_ms = now.0 * 1000 + now.1 / 1000;
    for survivor in [instance(&o1), instance(&o3)] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let beat: Option<f64> = redis
                .run(redis::cmd("ZSCORE").arg("rthub:{hubs}").arg(&survivor))
                .await;
            if beat.is_some_and(|b| b > since_ms as f64) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "hub {survivor} did not beat within 10 s: {beat:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for got in events_before_marks(&mut [&mut o1, &mut o3], &[&hub1, &hub3], &r, &marks).await {
        assert_eq!(got, Vec::<String>::new(), "and only once");
    }
    assert_eq!(
        members(&mut o3, &r).await,
        pairs(&[("u-o1", 1), ("u-o3", 1)])
    );
    assert_eq!(live_hubs(&redis).await, 2, "the dead hub left the registry");
}

#[tokio::test]
async fn no_stale_member_survives_a_redis_restart() {
    let mut redis = RedisServer::start().await;
    let hub1 = quick_hub(&redis).await;
    let (r, marks) = (room("restart"), room("marks"));
    let mut stays = user(&hub1, "u-stays", &[&r, &marks]).await;
    let goes = user(&hub1, "u-goes", &[&r]).await;
    // Presence is written by the hub's writer task just after the join: wait for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while members(&mut stays, &r).await != pairs(&[("u-goes", 1), ("u-stays", 1)]) {
        assert!(Instant::now() < deadline, "both users never listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    events_before_marks(&mut [&mut stays], &[&hub1], &r, &marks).await;

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
    // (Its entry is back, so the write that rebuilt it, and any diff of that write, is done.)
    let got = events_before_marks(&mut [&mut stays], &[&hub1], &r, &marks).await;
    assert!(
        !got[0].contains(&"+u-stays".to_owned()),
        "announced again: {got:?}"
    );
}

#[tokio::test]
async fn a_resync_after_a_stall_removes_every_entry_of_the_hub_it_no_longer_has() {
    let redis = RedisServer::start().await;
    let hub1 = quick_hub(&redis).await;
    let r = room("stall");
    let stays = listed_alone(&hub1, &r).await;
    // Entries of this hub that it does not have (what a write lost to an outage leaves behind),
    // more than one page of the resync's HSCAN, among as many entries of another hub.
    let me = instance(&stays);
    let key = format!("rthub:presence:{{{r}}}");
    let mut plant = redis::cmd("HSET");
    plant.arg(&key);
    for n in 0..2500 {
        plant.arg(format!("{me}|ghost{n}")).arg("1|Ghost");
        plant.arg(format!("elsewhere|other{n}")).arg("1|Other");
    }
    redis.run::<()>(&plant).await;
    let ours = |fields: &std::collections::HashMap<String, String>| {
        fields
            .keys()
            .filter(|f| f.starts_with(&format!("{me}|")))
            .count()
    };
    assert_eq!(ours(&redis.hgetall(&key).await), 2501);
    // A stall longer than redis_timeout (1 s): the heartbeat fails, and the hub makes Redis say
    // exactly what it knows once Redis answers again.
    redis.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.cont();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fields = redis.hgetall(&key).await;
        if ours(&fields) == 1 {
            assert!(
                fields.contains_key(&format!("{me}|u-stays")),
                "{:?}",
                fields.len()
            );
            assert_eq!(
                fields.len(),
                2501,
                "another hub's entries are not this hub's to remove"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} entries of this hub 10 s after Redis answered again",
            ours(&fields)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A dead hub's entries of a room are removed a page at a time (one call for a room of 250,000
/// held Redis for over a second): all of them, more than two pages' worth, each user's total
/// once, and nothing of another hub's.
#[tokio::test]
async fn a_dead_hub_with_thousands_of_entries_in_a_room_is_reaped_whole_page_by_page() {
    let redis = RedisServer::start().await;
    let hub1 = quick_hub(&redis).await;
    let r = room("reap");
    let _stays = listed_alone(&hub1, &r).await;
    // A hub that died long ago, with 2,500 users in the room (some also on a third hub that
    // lives on), among as many entries of that live one.
    let (entries, totals) = (
        format!("rthub:presence:{{{r}}}"),
        format!("rthub:presence-users:{{{r}}}"),
    );
    let mut plant = redis::cmd("HSET");
    plant.arg(&entries);
    let mut counts = redis::cmd("HSET");
    counts.arg(&totals);
    for n in 0..2500 {
        plant.arg(format!("deadhub|d{n}")).arg("1|Dead");
        plant.arg(format!("livehub|o{n}")).arg("1|Other");
        // d0..d9 are on the live hub too: they stay, with one connection.
        let shared = n < 10;
        counts.arg(format!("d{n}")).arg(if shared { 2 } else { 1 });
        counts.arg(format!("o{n}")).arg(1);
        if shared {
            plant.arg(format!("livehub|d{n}")).arg("1|Dead");
        }
    }
    redis.run::<()>(&plant).await;
    redis.run::<()>(&counts).await;
    redis
        .run::<()>(
            redis::cmd("SADD")
                .arg("rthub:{hubs}:rooms:deadhub")
                .arg(r.as_str()),
        )
        .await;
    redis
        .run::<()>(redis::cmd("ZADD").arg("rthub:{hubs}").arg(0).arg("deadhub"))
        .await;

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fields = redis.hgetall(&entries).await;
        let dead = fields.keys().filter(|f| f.starts_with("deadhub|")).count();
        if dead == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{dead} of the dead hub's entries still there after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fields = redis.hgetall(&entries).await;
    assert_eq!(fields.len(), 2500 + 10 + 1, "the live hubs' entries stay");
    let users = redis.hgetall(&totals).await;
    assert_eq!(users.len(), 2500 + 10 + 1, "{} users", users.len());
    for n in 0..10 {
        assert_eq!(users[&format!("d{n}")], "1", "d{n}: its other connection");
    }
    assert!(
        !users.contains_key("d10"),
        "a user only on the dead hub left"
    );
    assert_eq!(live_hubs(&redis).await, 1, "the dead hub left the registry");
}

#[tokio::test]
async fn a_crowded_room_is_answered_with_its_count_and_a_bounded_list_without_reading_it_all() {
    let redis = RedisServer::start().await;
    let hub1 = quick_hub(&redis).await;
    let r = room("crowd");
    let mut asker = user(&hub1, "u-asker", &[&r]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while members(&mut asker, &r).await != pairs(&[("u-asker", 1)]) {
        assert!(Instant::now() < deadline, "u-asker never listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 3,000 more users on this (live) hub, written as the hub writes them.
    let me = instance(&asker);
    let (entries, totals) = (
        format!("rthub:presence:{{{r}}}"),
        format!("rthub:presence-users:{{{r}}}"),
    );
    let (mut e, mut t) = (redis::cmd("HSET"), redis::cmd("HSET"));
    e.arg(&entries);
    t.arg(&totals);
    for n in 0..3000 {
        e.arg(format!("{me}|u-crowd{n}")).arg("1|Crowd");
        t.arg(format!("u-crowd{n}")).arg(1);
    }
    redis.run::<()>(&e).await;
    redis.run::<()>(&t).await;

    let hgetall_before = redis.command_count("hgetall").await;
    asker
        .send_json(&json!({"type": "presence", "room": r}))
        .await;
    let answer = asker.recv_json().await;
    assert_eq!(answer["type"], "presence", "{answer}");
    assert_eq!(answer["count"], 3001, "every user counted");
    assert_eq!(answer["truncated"], true);
    let listed = answer["members"].as_array().expect("members");
    assert_eq!(listed.len(), 1000, "the list is bounded");
    assert!(
        listed
            .iter()
            .all(|m| m["connections"] == 1 && m["user"].as_str().is_some()),
        "{answer}"
    );
    assert_eq!(
        redis.command_count("hgetall").await,
        hgetall_before,
        "the room's 3,001 entries were read whole"
    );
}
