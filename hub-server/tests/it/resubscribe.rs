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

#[tokio::test]
async fn a_last_message_published_while_the_subscription_was_lost_arrives_once_after_it() {
    let redis = RedisServer::start().await;
    let proxy = RedisProxy::start(redis.port(), b"SUBSCRIBE").await;
    let hub1 = Hub::builder("hub1").redis(&redis).start().await;
    let hub2 = Hub::builder("hub2")
        .redis_url(&proxy.url())
        .env("HUB_REDIS_TIMEOUT", "5s")
        .start()
        .await;
    let r = room("resubscribe");
    let (mut a, mut b) = (Client::connect(&hub1).await, Client::connect(&hub2).await);
    a.join(&r).await;
    b.join(&r).await;
    a.say(&r, "before").await;
    let before = b.recv_json().await;
    assert_eq!(
        (before["content"].as_str(), before["offset"].as_u64()),
        (Some("before"), Some(1)),
        "{before}"
    );

    // Every pub/sub connection is cut; hub2's next SUBSCRIBE is held back by the proxy.
    proxy.hold();
    let killed: i64 = redis
        .run(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"))
        .await;
    assert!(killed >= 2, "both hubs' subscribers cut, got {killed}");
    tokio::time::timeout(Duration::from_secs(10), proxy.wait_held())
        .await
        .expect("hub2 subscribes again");
    // The room's last message, stored while hub2 listens to nothing.
    a.say(&r, "while unsubscribed").await;
    wait_stored(&redis, &r, 2).await;
    proxy.release();

    let missed = b.recv_json_within(Duration::from_secs(10)).await;
    assert_eq!(
        (
            missed["content"].as_str(),
            missed["offset"].as_u64(),
            missed["epoch"].as_str()
        ),
        (
            Some("while unsubscribed"),
            Some(2),
            before["epoch"].as_str()
        ),
        "{missed}"
    );
    // Live again, in order, and nothing twice.
    let mark = marker("after");
    a.say(&r, &mark).await;
    let next: Value = b.recv_json().await;
    assert_eq!(
        (next["content"].as_str(), next["offset"].as_u64()),
        (Some(mark.as_str()), Some(3)),
        "{next}"
    );
    let health = hub2.health().await.expect("health").json();
    assert_eq!(health["redis"]["caught_up"], 1, "{health}");
}

/// A join is told `joined` when its room's SUBSCRIBE is not confirmed within `redis_timeout`
/// (Redis slow, a reconnect's thousands of subscriptions): what is published between its history
/// read and the subscription must still reach it.
#[tokio::test]
async fn a_join_that_did_not_wait_for_its_subscription_still_gets_what_came_meanwhile() {
    let redis = RedisServer::start().await;
    let proxy = RedisProxy::start(redis.port(), b"SUBSCRIBE").await;
    let hub1 = Hub::builder("hub1").redis(&redis).start().await;
    let hub2 = Hub::builder("hub2")
        .redis_url(&proxy.url())
        .env("HUB_REDIS_TIMEOUT", "1s")
        .start()
        .await;
    let r = room("early");
    let (mut a, mut b) = (Client::connect(&hub1).await, Client::connect(&hub2).await);
    a.join(&r).await;
    a.say(&r, "before").await;
    wait_stored(&redis, &r, 1).await;

    // hub2's SUBSCRIBE for the room is held back: the join goes on after redis_timeout.
    proxy.hold();
    let joined = b.join(&r).await;
    assert_eq!(joined["offset"], 1, "{joined}");
    a.say(&r, "while unsubscribed").await;
    wait_stored(&redis, &r, 2).await;
    proxy.release();

    let missed = b.recv_json_within(Duration::from_secs(10)).await;
    assert_eq!(
        (missed["content"].as_str(), missed["offset"].as_u64()),
        (Some("while unsubscribed"), Some(2)),
        "{missed}"
    );
    let mark = marker("after");
    a.say(&r, &mark).await;
    let next: Value = b.recv_json().await;
    assert_eq!(
        (next["content"].as_str(), next["offset"].as_u64()),
        (Some(mark.as_str()), Some(3)),
        "{next}"
    );
}

/// Nothing was said in the room since the member joined when the hub's pub/sub connection is cut:
/// the room's first message after it is as unseen as a last one, and comes from the history, from
/// where the member's join read it.
#[tokio::test]
async fn a_first_message_published_while_the_subscription_was_lost_arrives_once_after_it() {
    let redis = RedisServer::start().await;
    let proxy = RedisProxy::start(redis.port(), b"SUBSCRIBE").await;
    let hub1 = Hub::builder("hub1").redis(&redis).start().await;
    let hub2 = Hub::builder("hub2")
        .redis_url(&proxy.url())
        .env("HUB_REDIS_TIMEOUT", "5s")
        .start()
        .await;
    let r = room("first");
    let (mut a, mut b) = (Client::connect(&hub1).await, Client::connect(&hub2).await);
    a.join(&r).await;
    let joined = b.join(&r).await;
    assert_eq!(joined["offset"], 0, "{joined}");

    proxy.hold();
    let _: i64 = redis
        .run(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"))
        .await;
    tokio::time::timeout(Duration::from_secs(10), proxy.wait_held())
        .await
        .expect("hub2 subscribes again");
    a.say(&r, "first, while unsubscribed").await;
    wait_stored(&redis, &r, 1).await;
    proxy.release();

    let missed = b.recv_json_within(Duration::from_secs(10)).await;
    assert_eq!(
        (missed["content"].as_str(), missed["offset"].as_u64()),
        (Some("first, while unsubscribed"), Some(1)),
        "{missed}"
    );
    let mark = marker("after");
    a.say(&r, &mark).await;
    let next: Value = b.recv_json().await;
    assert_eq!(
        (next["content"].as_str(), next["offset"].as_u64()),
        (Some(mark.as_str()), Some(2)),
        "{next}"
    );
}

/// A room the hub put the client in at connect (its personal room), with no join and no message
/// since: where the room stood is read once its channel is subscribed, so a message the backend
/// sends while the hub's pub/sub connection is cut still comes.
#[tokio::test]
async fn a_personal_room_never_joined_gets_what_was_sent_while_the_subscription_was_lost() {
    let redis = RedisServer::start().await;
    let proxy = RedisProxy::start(redis.port(), b"SUBSCRIBE").await;
    let hub1 = Hub::builder("hub1")
        .redis(&redis)
        .api("resubscribe-test-key-0001")
        .start()
        .await;
    let hub2 = Hub::builder("hub2")
        .redis_url(&proxy.url())
        .env("HUB_REDIS_TIMEOUT", "5s")
        .start()
        .await;
    let mut b = Client::connect(&hub2).await;
    let personal = format!("user:{}", b.id);
    assert!(
        b.welcome["rooms"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| *x == personal.as_str())),
        "{}",
        b.welcome
    );
    // The subscription is confirmed before the welcome's next frame could matter; where the
    // room stands is read just after it.
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.hold();
    let _: i64 = redis
        .run(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"))
        .await;
    tokio::time::timeout(Duration::from_secs(10), proxy.wait_held())
        .await
        .expect("hub2 subscribes again");
    let body = serde_json::json!({"room": personal, "content": "for you, while unsubscribed"});
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // hub1's own subscriber was cut too: its API refuses until it is back.
        let resp = hub1.api_post("/api/publish", &body).await;
        if resp.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{resp:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.release();

    let missed = b.recv_json_within(Duration::from_secs(10)).await;
    assert_eq!(
        (missed["content"].as_str(), missed["offset"].as_u64()),
        (Some("for you, while unsubscribed"), Some(1)),
        "{missed}"
    );
}
