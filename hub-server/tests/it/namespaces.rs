//! Issue 22: namespaces with their own policy, personal rooms and server-side subscriptions, on
//! real hubs bridged through a real Redis. Each namespace key is shown to take effect against a
//! namespace of the same hubs that leaves it at its default: `history_size = 0` keeps and
//! recovers nothing, `history_ttl` / `recovery_max` bound one namespace only, `presence = false`
//! answers `no_presence`, sends no diffs and writes nothing to Redis, `presence_events = false`
//! answers but sends no diffs, `client_publish = false` refuses clients and delivers the API's.
//! Undeclared namespaces are refused everywhere; a bad one stops the hub naming the key.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::token::{SECRET, claims, hs256};
use crate::support::{Client, Hub, RECV_TIMEOUT, RedisServer, room};

const KEY: &str = "namespaces-test-key-0123456789";

/// One namespace per key under test, each leaving the others at their default.
const NAMESPACES: &str = r#"{
    "chat": {"history_size": 50},
    "nohist": {"history_size": 0},
    "tight": {"history_ttl": "3s", "recovery_max": 2},
    "live": {"presence": false},
    "quiet": {"presence_events": false},
    "notify": {"client_publish": false},
    "feed": {}
}"#;

async fn hub(name: &str, redis: Option<&RedisServer>, extra: &[(&str, &str)]) -> Hub {
    let mut builder = Hub::builder(name)
        .api(KEY)
        .env("HUB_NAMESPACES", NAMESPACES)
        .env("HUB_REDIS_PING_INTERVAL", "500ms");
    if let Some(redis) = redis {
        builder = builder.redis(redis);
    }
    for (key, value) in extra {
        builder = builder.env(key, value);
    }
    builder.start().await
}

const JWT: [(&str, &str); 2] = [("HUB_AUTH_MODE", "jwt"), ("HUB_JWT_SECRETS", SECRET)];

/// A room of namespace `ns`, unique to the test.
fn in_ns(ns: &str, name: &str) -> String {
    format!("{ns}:{}", room(name))
}

/// The next frame is an `error` with `code`, naming `room` (a join or a presence question).
async fn expect_error_in(client: &mut Client, code: &str, room: &str) -> Value {
    let f = client.recv_json().await;
    assert_eq!(
        (f["type"].as_str(), f["code"].as_str(), f["room"].as_str()),
        (Some("error"), Some(code), Some(room)),
        "client {}: {f}",
        client.id
    );
    f
}

/// `POST /api/publish`; the answer's body.
async fn publish(hub: &Hub, room: &str, content: &str) -> Value {
    let resp = hub
        .api_post("/api/publish", &json!({"room": room, "content": content}))
        .await;
    assert_eq!(resp.status, 200, "publish to {room}: {resp:?}");
    resp.json()
}

fn expect_api_error(resp: &crate::support::http::Response, status: u16, code: &str) {
    assert_eq!(resp.status, status, "{resp:?}");
    assert_eq!(resp.json()["error"]["code"], code, "{resp:?}");
}

fn contents(frames: &[Value]) -> Vec<&str> {
    frames
        .iter()
        .map(|f| f["content"].as_str().unwrap_or_default())
        .collect()
}

/// Join with `extra` fields (`history`, `since`): the replayed frames, then the `joined`.
async fn join_with(client: &mut Client, room: &str, extra: Value) -> (Vec<Value>, Value) {
    let mut frame = json!({"type": "join", "room": room});
    for (k, v) in extra.as_object().expect("object") {
        frame[k] = v.clone();
    }
    client.send_json(&frame).await;
    let mut replayed = Vec::new();
    loop {
        let f = client.recv_json().await;
        match f["type"].as_str() {
            Some("message") => {
                assert_eq!(f["replayed"], true, "{f}");
                replayed.push(f);
            }
            Some("joined") => {
                assert_eq!(f["room"], room, "{f}");
                return (replayed, f);
            }
            _ => panic!("client {}: join {room}: unexpected {f}", client.id),
        }
    }
}

/// Reads until `client` has a `presence_diff` of `room` with `user` among its joins (or
/// leaves); any other frame meanwhile fails the test.
async fn wait_diff(client: &mut Client, room: &str, user: &str, joined: bool) {
    let list = if joined { "joins" } else { "leaves" };
    let deadline = Instant::now() + RECV_TIMEOUT * 2;
    loop {
        let seen = client.presence_diffs.iter().any(|d| {
            d["room"] == room
                && d[list]
                    .as_array()
                    .is_some_and(|l| l.iter().any(|m| m["user"] == user))
        });
        if seen {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "client {}: no presence_diff {list} {user} in {room}; diffs: {:?}",
            client.id,
            client.presence_diffs
        );
        // Diffs are set aside as they arrive (and read as nothing): look again in a moment.
        if let Some(event) = client.next_event(Duration::from_millis(50)).await {
            panic!("client {}: unexpected {event:?}", client.id);
        }
    }
}

fn diffs_of<'a>(client: &'a Client, room: &str) -> Vec<&'a Value> {
    client
        .presence_diffs
        .iter()
        .filter(|d| d["room"] == room)
        .collect()
}

#[tokio::test]
async fn a_namespace_without_history_keeps_and_recovers_nothing_beside_one_that_keeps_it() {
    let redis = RedisServer::start().await;
    let h1 = hub("nohist1", Some(&redis), &[]).await;
    let h2 = hub("nohist2", Some(&redis), &[]).await;
    let (nohist, chat) = (in_ns("nohist", "r"), in_ns("chat", "r"));
    let mut a = Client::connect(&h1).await;
    let mut b = Client::connect(&h2).await;
    for r in [&nohist, &chat] {
        a.join(r).await;
        b.join(r).await;
    }
    a.say(&nohist, "n1").await;
    a.say(&chat, "c1").await;
    let got = b.recv_chat(2).await;
    let of = |r: &str| got.iter().find(|f| f["room"] == r).expect("delivered");
    assert_eq!(of(&nohist)["content"], "n1");
    assert!(of(&nohist).get("offset").is_none(), "{}", of(&nohist));
    assert_eq!(
        (of(&chat)["content"].as_str(), of(&chat)["offset"].as_u64()),
        (Some("c1"), Some(1))
    );

    // A late joiner asking for history gets the chat's, none of the other's.
    let mut c = Client::connect(&h2).await;
    let (replayed, joined) = join_with(&mut c, &nohist, json!({"history": 10})).await;
    assert!(replayed.is_empty(), "{replayed:?}");
    assert!(
        joined.get("epoch").is_none() && joined.get("offset").is_none(),
        "{joined}"
    );
    let (replayed, joined) = join_with(&mut c, &chat, json!({"history": 10})).await;
    assert_eq!(contents(&replayed), ["c1"]);
    assert_eq!(joined["offset"], 1, "{joined}");
    // A recovery gets nothing either, and says nothing was recovered.
    let since = json!({"since": {"epoch": "whatever", "offset": 0}});
    let (replayed, joined) = join_with(&mut c, &nohist, since).await;
    assert!(
        replayed.is_empty() && joined.get("recovered").is_none(),
        "{joined}"
    );

    // Nothing of it in Redis; the server API says so.
    for key in ["history", "meta"] {
        assert!(
            !redis.exists(&format!("rthub:{key}:{{{nohist}}}")).await,
            "{key}"
        );
        assert!(
            redis.exists(&format!("rthub:{key}:{{{chat}}}")).await,
            "{key}"
        );
    }
    let path = |r: &str| format!("/api/rooms/{r}/history");
    expect_api_error(
        &h1.api("GET", &path(&nohist), None).await,
        404,
        "no_history",
    );
    let kept = h1.api("GET", &path(&chat), None).await;
    assert_eq!(kept.status, 200, "{kept:?}");
    assert_eq!(
        contents(kept.json()["messages"].as_array().expect("messages")),
        ["c1"]
    );
    let answer = publish(&h1, &nohist, "from the api").await;
    assert_eq!(
        (answer["offset"].clone(), answer["epoch"].clone()),
        (Value::Null, Value::Null)
    );
    for client in [&mut b, &mut c] {
        assert_eq!(contents(&client.recv_chat(1).await), ["from the api"]);
    }
}

#[tokio::test]
async fn history_ttl_and_recovery_max_bind_their_namespace_only() {
    let redis = RedisServer::start().await;
    let h = hub("tight", Some(&redis), &[]).await;
    let (tight, chat) = (in_ns("tight", "r"), in_ns("chat", "r"));
    let mut a = Client::connect(&h).await;
    // Stays in each room, so the hub stays subscribed to it: once w has m4, every message came
    // back through Redis and none is left for a to receive late.
    let mut w = Client::connect(&h).await;
    let mut cursors = Vec::new();
    for r in [&tight, &chat] {
        a.join(r).await;
        w.join(r).await;
        publish(&h, r, "m1").await;
        let got = a.recv_chat(1).await;
        cursors.push(json!({"epoch": got[0]["epoch"], "offset": got[0]["offset"]}));
        a.leave(r).await;
        for n in 2..=4 {
            publish(&h, r, &format!("m{n}")).await;
        }
        assert_eq!(contents(&w.recv_chat(4).await), ["m1", "m2", "m3", "m4"]);
    }
    // 3 missed: past the tight namespace's recovery_max of 2, well within the global 300.
    let (replayed, joined) = join_with(&mut a, &tight, json!({"since": cursors[0]})).await;
    assert!(replayed.is_empty());
    assert_eq!(
        (joined["recovered"].as_bool(), joined["reason"].as_str()),
        (Some(false), Some("too_many")),
        "{joined}"
    );
    let (replayed, recovered) = join_with(&mut a, &chat, json!({"since": cursors[1]})).await;
    assert_eq!(contents(&replayed), ["m2", "m3", "m4"]);
    assert_eq!(recovered["recovered"], true, "{recovered}");

    // The keys live 3 s (and the script's margin of 2 × 3 s / 16) in one namespace, 10 min in
    // the other.
    let redis = &redis;
    let pttl = |r: &str| {
        let key = format!("rthub:history:{{{r}}}");
        async move { redis.run::<i64>(redis::cmd("PTTL").arg(key)).await }
    };
    let short = pttl(&tight).await;
    assert!((1..=3375).contains(&short), "tight: {short} ms");
    assert!(pttl(&chat).await > 600_000, "chat keeps the global ttl");
    // Once it passed, the history is gone: a new epoch, nothing to recover.
    tokio::time::sleep(Duration::from_millis(short as u64 + 500)).await;
    let stale = json!({"since": {"epoch": cursors[0]["epoch"].clone(), "offset": 4}});
    let (replayed, joined) = join_with(&mut a, &tight, stale).await;
    assert!(replayed.is_empty());
    assert_eq!(joined["reason"], "epoch_changed", "{joined}");
    assert!(redis.exists(&format!("rthub:history:{{{chat}}}")).await);
}

#[tokio::test]
async fn presence_off_answers_no_presence_writes_nothing_and_quiet_presence_answers_without_diffs()
{
    let redis = RedisServer::start().await;
    let extra = [("HUB_PRESENCE_LEAVE_DELAY", "0s")];
    let h1 = hub("pres1", Some(&redis), &extra).await;
    let h2 = hub("pres2", Some(&redis), &extra).await;
    let (live, quiet, chat) = (in_ns("live", "r"), in_ns("quiet", "r"), in_ns("chat", "r"));
    let mut a = Client::connect(&h1).await;
    let mut b = Client::connect(&h2).await;
    for r in [&live, &quiet, &chat] {
        a.join(r).await;
    }
    // b's joins in this order: a diff of the first two would reach a before the chat's does
    // (one writer per hub, in order; one Redis connection publishing, in order).
    for r in [&live, &quiet, &chat] {
        b.join(r).await;
    }
    wait_diff(&mut a, &chat, &b.id, true).await;
    assert!(diffs_of(&a, &live).is_empty(), "{:?}", a.presence_diffs);
    assert!(diffs_of(&a, &quiet).is_empty(), "{:?}", a.presence_diffs);

    a.send_json(&json!({"type": "presence", "room": live}))
        .await;
    expect_error_in(&mut a, "no_presence", &live).await;
    a.send_json(&json!({"type": "presence", "room": quiet}))
        .await;
    let answer = a.recv_json().await;
    assert_eq!(
        (answer["type"].as_str(), answer["count"].as_u64()),
        (Some("presence"), Some(2)),
        "{answer}"
    );

    // Nothing of `live` in Redis: no entries, no totals, not in the hubs' room indexes.
    for key in ["presence", "presence-users"] {
        assert!(
            !redis.exists(&format!("rthub:{key}:{{{live}}}")).await,
            "{key}"
        );
        assert!(
            redis.exists(&format!("rthub:{key}:{{{quiet}}}")).await,
            "{key}"
        );
    }
    let index = format!(
        "rthub:{{hubs}}:rooms:{}",
        b.welcome["instance_id"].as_str().expect("id")
    );
    let mut listed: Vec<String> = redis.run(redis::cmd("SMEMBERS").arg(&index)).await;
    listed.sort();
    let mut want = vec![format!("!{quiet}"), chat.clone(), "general".to_owned()];
    want.sort();
    assert_eq!(
        listed, want,
        "quiet rooms are marked, rooms without presence absent"
    );

    let path = |r: &str| format!("/api/rooms/{r}/presence");
    expect_api_error(&h1.api("GET", &path(&live), None).await, 404, "no_presence");
    let quiet_answer = h1.api("GET", &path(&quiet), None).await;
    assert_eq!(quiet_answer.json()["count"], 2, "{quiet_answer:?}");
    let rooms = h1.api("GET", "/api/rooms", None).await.json();
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .expect("rooms")
        .iter()
        .filter_map(|r| r["room"].as_str())
        .collect();
    assert!(
        names.contains(&quiet.as_str()) && names.contains(&chat.as_str()),
        "{rooms}"
    );
    assert!(!names.contains(&live.as_str()), "{rooms}");

    // Leaves: the same, in the same order.
    for r in [&live, &quiet, &chat] {
        b.leave(r).await;
    }
    wait_diff(&mut a, &chat, &b.id, false).await;
    assert!(
        diffs_of(&a, &live).is_empty() && diffs_of(&a, &quiet).is_empty(),
        "{:?}",
        a.presence_diffs
    );
    a.send_json(&json!({"type": "presence", "room": quiet}))
        .await;
    assert_eq!(a.recv_json().await["count"], 1);
}

#[tokio::test]
async fn client_publish_off_refuses_clients_and_delivers_the_server_apis_messages() {
    let redis = RedisServer::start().await;
    let h1 = hub("notify1", Some(&redis), &[]).await;
    let h2 = hub("notify2", Some(&redis), &[]).await;
    let notify = in_ns("notify", "r");
    let mut a = Client::connect(&h1).await;
    let mut b = Client::connect(&h2).await;
    a.join(&notify).await;
    b.join(&notify).await;
    a.send_json(&json!({"type": "message", "room": notify, "content": "spoof", "ref": "n1"}))
        .await;
    let refused = a.recv_json().await;
    assert_eq!(
        (refused["code"].as_str(), refused["ref"].as_str()),
        (Some("forbidden"), Some("n1")),
        "{refused}"
    );
    // The API's messages reach both hubs' members, once, in order, and nothing came before them.
    publish(&h1, &notify, "deploy finished").await;
    publish(&h2, &notify, "marker").await;
    for client in [&mut a, &mut b] {
        let got = client.recv_chat(2).await;
        assert_eq!(
            contents(&got),
            ["deploy finished", "marker"],
            "client {}",
            client.id
        );
        assert_eq!(got[0]["user"]["id"], "api");
    }
    // Rooms of other namespaces still take client messages.
    let chat = in_ns("chat", "r");
    a.join(&chat).await;
    b.join(&chat).await;
    a.say(&chat, "hello").await;
    assert_eq!(contents(&b.recv_chat(1).await), ["hello"]);
}

#[tokio::test]
async fn an_undeclared_namespace_is_refused_everywhere_and_a_bad_one_stops_the_hub() {
    let redis = RedisServer::start().await;
    let h = hub("unknown", Some(&redis), &[]).await;
    let nope = in_ns("nope", "r");
    let mut a = Client::connect(&h).await;
    a.send_json(&json!({"type": "join", "room": nope})).await;
    let err = expect_error_in(&mut a, "unknown_namespace", &nope).await;
    assert!(
        err["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"nope\"")),
        "{err}"
    );
    a.send_json(&json!({"type": "presence", "room": nope}))
        .await;
    expect_error_in(&mut a, "unknown_namespace", &nope).await;
    a.send_json(&json!({"type": "message", "room": nope, "content": "x", "ref": "u1"}))
        .await;
    let err = a.recv_json().await;
    assert_eq!(
        (err["code"].as_str(), err["ref"].as_str()),
        (Some("unknown_namespace"), Some("u1")),
        "{err}"
    );
    let body = json!({"room": nope, "content": "x"});
    expect_api_error(
        &h.api_post("/api/publish", &body).await,
        400,
        "unknown_namespace",
    );
    for what in ["history", "presence"] {
        let resp = h
            .api("GET", &format!("/api/rooms/{nope}/{what}"), None)
            .await;
        expect_api_error(&resp, 400, "unknown_namespace");
    }
    // Rooms without `:`, declared namespaces and the built-in `user` are fine.
    a.join(&room("plain")).await;
    a.join(&in_ns("feed", "r")).await;
    a.join(&format!("user:{}", a.id)).await;
    assert_eq!(
        h.metric("realtime_hub_errors_total{code=\"unknown_namespace\"}")
            .await,
        3.0
    );

    for (value, key) in [
        (
            r#"{"chat":{"history_ttl":"soon"}}"#,
            "namespaces.chat.history_ttl",
        ),
        (r#"{"chat":{"presense":false}}"#, "namespaces.chat.presense"),
        (r#"{"a b":{}}"#, "namespaces.a b"),
    ] {
        let mut bad = Hub::builder("bad-ns").env("HUB_NAMESPACES", value).spawn();
        let status = bad
            .wait_exit(Duration::from_secs(10))
            .await
            .expect("a bad namespace stops the hub");
        assert!(!status.success());
        let log = bad.log();
        assert!(log.contains(key), "{value}: {log}");
    }
}

#[tokio::test]
async fn a_personal_room_reaches_every_connection_of_its_user_on_every_hub_once() {
    let redis = RedisServer::start().await;
    let h1 = hub("personal1", Some(&redis), &JWT).await;
    let h2 = hub("personal2", Some(&redis), &JWT).await;
    let (ana, bo) = (room("ana"), room("bo"));
    let token = |sub: &str| hs256(SECRET, &claims(sub, sub, 600));
    let (ana_room, bo_room) = (format!("user:{ana}"), format!("user:{bo}"));
    let mut anas = vec![
        Client::connect_with_token(&h1, &token(&ana)).await,
        Client::connect_with_token(&h1, &token(&ana)).await,
        Client::connect_with_token(&h2, &token(&ana)).await,
    ];
    let mut b = Client::connect_with_token(&h2, &token(&bo)).await;
    for c in &anas {
        assert_eq!(
            c.welcome["rooms"],
            json!(["general", ana_room]),
            "{}",
            c.welcome
        );
    }
    assert_eq!(b.welcome["rooms"], json!(["general", bo_room]));
    // Joining one's own room again answers `joined` once its channel is subscribed on the hub.
    for c in anas.iter_mut() {
        c.join(&ana_room).await;
    }
    b.join(&bo_room).await;

    // Nobody else may be in it or ask who is; its own user gets no presence (off for `user`)
    // and may not publish to it (only the server API does, by default).
    b.send_json(&json!({"type": "join", "room": ana_room}))
        .await;
    expect_error_in(&mut b, "forbidden", &ana_room).await;
    b.send_json(&json!({"type": "presence", "room": ana_room}))
        .await;
    expect_error_in(&mut b, "forbidden", &ana_room).await;
    anas[0]
        .send_json(&json!({"type": "presence", "room": ana_room}))
        .await;
    expect_error_in(&mut anas[0], "no_presence", &ana_room).await;
    anas[0]
        .send_json(&json!({"type": "message", "room": ana_room, "content": "x", "ref": "p1"}))
        .await;
    assert_eq!(anas[0].recv_json().await["code"], "forbidden");

    publish(&h1, &ana_room, "for ana").await;
    publish(&h1, "general", "marker").await;
    for c in anas.iter_mut() {
        let got = c.recv_chat(2).await;
        assert_eq!(contents(&got), ["for ana", "marker"], "client {}", c.id);
        assert_eq!(got[0]["room"], ana_room.as_str());
    }
    assert_eq!(
        contents(&b.recv_chat(1).await),
        ["marker"],
        "bo gets ana's nothing"
    );

    // One channel per user, not per connection: general, ana's room, broadcast and control on
    // hub1 (two connections of ana); bo's room too on hub2.
    let channels = "realtime_hub_redis_subscribed_channels";
    assert_eq!(h1.metric(channels).await, 4.0);
    assert_eq!(h2.metric(channels).await, 5.0);

    // An id that cannot be a room name gets the hashed room a backend computes the same way.
    let email = format!("{}@example.com", room("carol"));
    let hex: String = Sha256::digest(email.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let hashed = format!("user:sha256:{}", &hex[..40]);
    let mut carol = Client::connect_with_token(&h2, &token(&email)).await;
    assert_eq!(carol.welcome["rooms"], json!(["general", hashed]));
    carol.join(&hashed).await;
    publish(&h1, &hashed, "for carol").await;
    assert_eq!(contents(&carol.recv_chat(1).await), ["for carol"]);
}

#[tokio::test]
async fn anonymous_clients_have_a_personal_room_unless_it_is_turned_off() {
    // Standalone: the history of personal rooms is kept in memory (10 messages, by default).
    let h = hub("anon", None, &[]).await;
    let mut a = Client::connect(&h).await;
    let mut other = Client::connect(&h).await;
    let personal = format!("user:{}", a.id);
    assert_eq!(a.welcome["rooms"], json!(["general", personal]));
    let answer = publish(&h, &personal, "just for you").await;
    assert_eq!(answer["offset"], 1, "{answer}");
    let got = a.recv_chat(1).await;
    assert_eq!(
        (got[0]["content"].as_str(), got[0]["offset"].as_u64()),
        (Some("just for you"), Some(1))
    );
    publish(&h, "general", "marker").await;
    assert_eq!(contents(&other.recv_chat(1).await), ["marker"]);
    assert_eq!(contents(&a.recv_chat(1).await), ["marker"]);

    let off = hub("anon-off", None, &[("HUB_PERSONAL_ROOMS", "false")]).await;
    let c = Client::connect(&off).await;
    assert_eq!(c.welcome["rooms"], json!(["general"]));
}

#[tokio::test]
async fn subs_join_rooms_at_connect_and_recover_after_a_reconnect_like_any_room() {
    let redis = RedisServer::start().await;
    let h1 = hub("subs1", Some(&redis), &JWT).await;
    let h2 = hub("subs2", Some(&redis), &JWT).await;
    let ana = room("ana");
    let (feed, personal) = (in_ns("feed", "ana"), format!("user:{ana}"));
    let mut grants = claims(&ana, "Ana", 600);
    grants["rooms"] = json!(["general"]);
    // Another user's personal room and an undeclared namespace are left out (and logged).
    grants["subs"] = json!([feed, "user:someone-else", "nope:x", "general"]);
    let token = hs256(SECRET, &grants);
    let mut a = Client::connect_with_token(&h1, &token).await;
    assert_eq!(
        a.welcome["rooms"],
        json!(["general", personal, feed]),
        "{}",
        a.welcome
    );
    // A subscription may be joined again without a grant, not published to.
    let joined = a.join(&feed).await;
    let feed_epoch = joined["epoch"].clone();
    let joined = a.join(&personal).await;
    let personal_epoch = joined["epoch"].clone();
    a.send_json(&json!({"type": "message", "room": feed, "content": "x", "ref": "s1"}))
        .await;
    assert_eq!(a.recv_json().await["code"], "forbidden");

    for n in 1..=2 {
        publish(&h1, &feed, &format!("f{n}")).await;
    }
    publish(&h1, &personal, "p1").await;
    let got = a.recv_chat(3).await;
    assert_eq!(contents(&got), ["f1", "f2", "p1"]);
    drop(a);

    // Missed while away, then back on the other hub: the welcome lists the same rooms, and a
    // join with `since` recovers each.
    for n in 3..=5 {
        publish(&h2, &feed, &format!("f{n}")).await;
    }
    publish(&h2, &personal, "p2").await;
    let mut again = Client::connect_with_token(&h2, &token).await;
    assert_eq!(again.welcome["rooms"], json!(["general", personal, feed]));
    let since = json!({"since": {"epoch": feed_epoch, "offset": 2}});
    let (replayed, joined) = join_with(&mut again, &feed, since).await;
    assert_eq!(contents(&replayed), ["f3", "f4", "f5"]);
    assert_eq!(
        (joined["recovered"].as_bool(), joined["offset"].as_u64()),
        (Some(true), Some(5)),
        "{joined}"
    );
    let since = json!({"since": {"epoch": personal_epoch, "offset": 1}});
    let (replayed, joined) = join_with(&mut again, &personal, since).await;
    assert_eq!(contents(&replayed), ["p2"]);
    assert_eq!(joined["recovered"], true, "{joined}");

    // A `subs` entry that is no room name is a bad token.
    let mut bad = claims(&room("bad"), "Bad", 600);
    bad["subs"] = json!(["a b"]);
    let mut refused = Client::connect_unwelcomed(&h1).await;
    refused.auth(&hs256(SECRET, &bad)).await;
    let (code, _) = refused.expect_close(RECV_TIMEOUT).await;
    assert_eq!(code, Some(4001));
    assert_eq!(
        refused.close_reason.as_deref(),
        Some("auth failed: bad claims")
    );
}
