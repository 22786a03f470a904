//! Issue 25.2: a hub whose pub/sub connection was lost misses, by design of pub/sub, what other
//! hubs publish before it has subscribed again; so does a join told `joined` before its room's
//! SUBSCRIBE was confirmed. When that was a room's last message, no later message shows its
//! members a gap to recover: the hub itself must fetch it from the history.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::proxy::RedisProxy;
use crate::support::{Client, Hub, RedisServer, marker, room};

/// Waits until Redis's history of `room` holds `n` messages: its publish is done.
async fn wait_stored(redis: &RedisServer, room: &str, n: i64) {
    let key = format!("rthub:history:{{{room}}}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let len: i64 = redis.run(redis::cmd("LLEN").arg(&key)).await;
        if len >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{key} holds {len}, never {n}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `POST /api/publish` until the hub takes it: while its subscription is held back long enough,
/// the hub makes its pub/sub connection again and refuses meanwhile ("nothing was published":
/// safe to send again).
async fn publish_until_taken(hub: &Hub, room: &str, content: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let body = serde_json::json!({"room": room, "content": content});
        let resp = hub.api_post("/api/publish", &body).await;
        if resp.status == 200 {
            return resp.json();
        }
        assert!(
            resp.status == 503 && resp.body.contains("nothing was published"),
            "{resp:?}"
        );
        assert!(
            Instant::now() < deadline,
            "refused for {within:?}: {resp:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two hubs on one Redis; hub2 reaches it through a proxy that can hold back its SUBSCRIBEs.
struct Pair {
    redis: RedisServer,
    proxy: RedisProxy,
    hub1: Hub,
    hub2: Hub,
}

impl Pair {
    /// `hub1` with the server API on; hub2 with `redis_timeout`.
    async fn start(redis_timeout: &str) -> Self {
        let redis = RedisServer::start().await;
        let proxy = RedisProxy::start(redis.port(), b"SUBSCRIBE").await;
        let hub1 = Hub::builder("hub1")
            .redis(&redis)
            .api("resubscribe-test-key-0001")
            .start()
            .await;
        let hub2 = Hub::builder("hub2")
            .redis_url(&proxy.url())
            .env("HUB_REDIS_TIMEOUT", redis_timeout)
            .start()
            .await;
        Pair {
            redis,
            proxy,
            hub1,
            hub2,
        }
    }

    /// Every pub/sub connection is cut; hub2's next SUBSCRIBE is held back until `release`.
    async fn cut_and_hold(&self) {
        self.proxy.hold();
        let killed: i64 = self
            .redis
            .run(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"))
            .await;
        assert!(killed >= 2, "both hubs' subscribers cut, got {killed}");
        tokio::time::timeout(Duration::from_secs(10), self.proxy.wait_held())
            .await
            .expect("hub2 subscribes again");
    }
}

/// `b` gets `content` with `offset` within 10 s, then, after `a` says a marker, the marker with
/// the next offset: nothing twice, nothing out of order.
async fn expect_then_live(b: &mut Client, a: &mut Client, room: &str, content: &str, offset: u64) {
    let missed = b.recv_json_within(Duration::from_secs(10)).await;
    assert_eq!(
        (missed["content"].as_str(), missed["offset"].as_u64()),
        (Some(content), Some(offset)),
        "{missed}"
    );
    let mark = marker("after");
    a.say(room, &mark).await;
    let next: Value = b.recv_json().await;
    assert_eq!(
        (next["content"].as_str(), next["offset"].as_u64()),
        (Some(mark.as_str()), Some(offset + 1)),
        "{next}"
    );
}

#[tokio::test]
async fn a_last_message_published_while_the_subscription_was_lost_arrives_once_after_it() {
    let pair = Pair::start("5s").await;
    let r = room("resubscribe");
    let mut a = Client::connect(&pair.hub1).await;
    let mut b = Client::connect(&pair.hub2).await;
    a.join(&r).await;
    b.join(&r).await;
    a.say(&r, "before").await;
    let before = b.recv_json().await;
    assert_eq!(
        (before["content"].as_str(), before["offset"].as_u64()),
        (Some("before"), Some(1)),
        "{before}"
    );

    pair.cut_and_hold().await;
    // The room's last message, stored while hub2 listens to nothing.
    a.say(&r, "while unsubscribed").await;
    wait_stored(&pair.redis, &r, 2).await;
    pair.proxy.release();

    expect_then_live(&mut b, &mut a, &r, "while unsubscribed", 2).await;
    let health = pair.hub2.health().await.expect("health").json();
    assert_eq!(health["redis"]["caught_up"], 1, "{health}");
}

/// A join is told `joined` when its room's SUBSCRIBE is not confirmed within `redis_timeout`
/// (Redis slow, a reconnect's thousands of subscriptions): what is published between its history
/// read and the subscription must still reach it.
#[tokio::test]
async fn a_join_that_did_not_wait_for_its_subscription_still_gets_what_came_meanwhile() {
    let pair = Pair::start("1s").await;
    let r = room("early");
    let mut a = Client::connect(&pair.hub1).await;
    let mut b = Client::connect(&pair.hub2).await;
    a.join(&r).await;
    a.say(&r, "before").await;
    wait_stored(&pair.redis, &r, 1).await;

    // hub2's SUBSCRIBE for the room is held back: the join goes on after redis_timeout.
    pair.proxy.hold();
    let joined = b.join(&r).await;
    assert_eq!(joined["offset"], 1, "{joined}");
    a.say(&r, "while unsubscribed").await;
    wait_stored(&pair.redis, &r, 2).await;
    pair.proxy.release();

    expect_then_live(&mut b, &mut a, &r, "while unsubscribed", 2).await;
}

/// Nothing was said in the room since the member joined when the hub's pub/sub connection is cut:
/// the room's first message after it is as unseen as a last one, and comes from the history, from
/// where the member's join read it.
#[tokio::test]
async fn a_first_message_published_while_the_subscription_was_lost_arrives_once_after_it() {
    let pair = Pair::start("5s").await;
    let r = room("first");
    let mut a = Client::connect(&pair.hub1).await;
    let mut b = Client::connect(&pair.hub2).await;
    a.join(&r).await;
    let joined = b.join(&r).await;
    assert_eq!(joined["offset"], 0, "{joined}");

    pair.cut_and_hold().await;
    a.say(&r, "first, while unsubscribed").await;
    wait_stored(&pair.redis, &r, 1).await;
    pair.proxy.release();

    expect_then_live(&mut b, &mut a, &r, "first, while unsubscribed", 1).await;
}

/// A room the hub put the client in at connect (its personal room), with no join and no message
/// since: where the room stood is read once its channel is subscribed, so a message the backend
/// sends while the hub's pub/sub connection is cut still comes.
#[tokio::test]
async fn a_personal_room_never_joined_gets_what_was_sent_while_the_subscription_was_lost() {
    let pair = Pair::start("5s").await;
    let mut b = Client::connect(&pair.hub2).await;
    let personal = format!("user:{}", b.id);
    assert!(
        b.welcome["rooms"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| *x == personal.as_str())),
        "{}",
        b.welcome
    );
    // Where the room stands is read just after its SUBSCRIBE is confirmed.
    tokio::time::sleep(Duration::from_millis(500)).await;

    pair.cut_and_hold().await;
    // hub1's own subscriber was cut too: its API refuses until it is back.
    let content = "for you, while unsubscribed";
    publish_until_taken(&pair.hub1, &personal, content, Duration::from_secs(5)).await;
    pair.proxy.release();

    let missed = b.recv_json_within(Duration::from_secs(10)).await;
    assert_eq!(
        (missed["content"].as_str(), missed["offset"].as_u64()),
        (Some("for you, while unsubscribed"), Some(1)),
        "{missed}"
    );
}

/// A client re-joins with `since` while a server API message of its hub is still on its way
/// round (its room not subscribed yet, so the copy from Redis never comes): the replay gives it
/// the message with its offset, and the hub's late copy without offset, once the API's patience
/// is out, must not follow. (The full c250k run saw this after a reconnect storm.)
#[tokio::test]
async fn a_message_a_rejoin_replayed_does_not_come_again_late() {
    let redis = RedisServer::start().await;
    let proxy = RedisProxy::start(redis.port(), b"SUBSCRIBE").await;
    let hub = Hub::builder("hub1")
        .redis_url(&proxy.url())
        .env("HUB_REDIS_TIMEOUT", "500ms")
        .api("resubscribe-test-key-0002")
        .start()
        .await;
    let r = room("replayed-late");
    let mut b = Client::connect(&hub).await;
    // The room's SUBSCRIBE is held back: `joined` comes after redis_timeout, unsubscribed.
    proxy.hold();
    let joined = b.join(&r).await;
    let answer = publish_until_taken(&hub, &r, "stored", Duration::from_secs(15)).await;
    assert_eq!(answer["offset"], 1, "{answer}");

    b.send_json(&serde_json::json!({"type": "join", "room": r,
        "since": {"epoch": joined["epoch"], "offset": 0}}))
        .await;
    let replayed = b.recv_json().await;
    assert_eq!(
        (replayed["content"].as_str(), replayed["offset"].as_u64()),
        (Some("stored"), Some(1)),
        "{replayed}"
    );
    let rejoined = b.recv_json().await;
    assert_eq!(rejoined["type"], "joined", "{rejoined}");
    // The API message's patience (2 × redis_timeout twice) and a tick: the late copy would be
    // here by now.
    if let Some(event) = b.next_event(Duration::from_secs(4)).await {
        panic!("a second copy (or anything) after the replay: {event:?}");
    }
    proxy.release();
    let mark = marker("after");
    publish_until_taken(&hub, &r, &mark, Duration::from_secs(15)).await;
    let live = b.recv_json_within(Duration::from_secs(10)).await;
    assert_eq!(
        (live["content"].as_str(), live["offset"].as_u64()),
        (Some(mark.as_str()), Some(2)),
        "{live}"
    );
}
