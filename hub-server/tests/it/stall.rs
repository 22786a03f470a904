//! Issue 25.3: nothing a session does waits on Redis while holding up its other frames. Redis is
//! stopped (SIGSTOP) for 8 s while clients' joins wait on it: pings are still answered within
//! 100 ms, a token still expires (4002), a server-API disconnect still closes its user (4003),
//! and the join completes once Redis answers again.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::token::{SECRET, claims, hs256};
use crate::support::{Client, Hub, RedisServer, room};

/// The stall the issue names.
const STALL: Duration = Duration::from_secs(8);
/// A ping's answer, at most, while a join waits on the stalled Redis.
const PONG_WITHIN: Duration = Duration::from_millis(100);

/// The next frame that is not a presence diff (other members come and go meanwhile).
async fn next_frame(client: &mut Client, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = client.recv_json_within(left).await;
        if frame["type"] != "presence_diff" {
            return frame;
        }
    }
}

#[tokio::test]
async fn with_redis_stalled_pings_kicks_and_expiry_act_and_the_join_completes_after() {
    let redis = RedisServer::start().await;
    // Long Redis timeouts: a join waits on Redis for seconds, which is what must not hold up the
    // rest of its session.
    let hub = Hub::builder("stall")
        .redis(&redis)
        .api(crate::api::KEY)
        .env("HUB_AUTH_MODE", "jwt")
        .env("HUB_JWT_SECRETS", SECRET)
        .env("HUB_JWT_LEEWAY", "0s")
        .env("HUB_REDIS_TIMEOUT", "6s")
        .start()
        .await;
    let mut pinger =
        Client::connect_with_token(&hub, &hs256(SECRET, &claims("u-a", "A", 300))).await;
    let mut expiring =
        Client::connect_with_token(&hub, &hs256(SECRET, &claims("u-b", "B", 4))).await;
    let mut kicked =
        Client::connect_with_token(&hub, &hs256(SECRET, &claims("u-c", "C", 300))).await;

    redis.stop();
    let stopped = Instant::now();
    let waiting = room("waiting");
    for client in [&mut pinger, &mut expiring, &mut kicked] {
        client
            .send_json(&json!({"type": "join", "room": waiting, "history": 5}))
            .await;
    }
    // The disconnect order cannot reach the other hubs through the stalled Redis: this hub closes
    // its own connections of the user all the same (the API answers once Redis times out).
    let order = json!({"user": "u-c"});
    let disconnect = hub.api_post("/api/disconnect", &order);

    // Pings every 250 ms for the whole stall, each answered at once.
    let pings = async {
        let mut worst = Duration::ZERO;
        let mut answered = 0;
        while stopped.elapsed() < STALL {
            let sent = Instant::now();
            pinger.send_json(&json!({"type": "ping"})).await;
            let frame = next_frame(&mut pinger, Duration::from_secs(2)).await;
            assert_eq!(
                frame["type"], "pong",
                "a ping while a join waits on Redis: got {frame}"
            );
            worst = worst.max(sent.elapsed());
            answered += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        (answered, worst)
    };
    let expiry = async {
        let (code, _) = expiring.expect_close(STALL).await;
        (code, stopped.elapsed())
    };
    let kick = async {
        let (code, _) = kicked.expect_close(STALL).await;
        (code, stopped.elapsed())
    };
    let ((answered, worst), (expired, expired_at), (closed, closed_at), _) =
        tokio::join!(pings, expiry, kick, disconnect);
    println!(
        "stall: {answered} pings answered, worst {worst:?}; token expired after {expired_at:?}; \
         disconnect acted after {closed_at:?}"
    );
    assert!(answered >= 20, "only {answered} pings in {STALL:?}");
    assert!(
        worst <= PONG_WITHIN,
        "a ping took {worst:?} while Redis was stalled"
    );
    assert_eq!(expired, Some(4002), "the token expired during the stall");
    assert!(expired_at < STALL, "expiry acted only after {expired_at:?}");
    assert_eq!(closed, Some(4003), "the disconnect acted during the stall");
    assert!(
        closed_at < STALL,
        "the disconnect acted only after {closed_at:?}"
    );

    redis.cont();
    // The join that waited completes: `joined` (its history read may say Redis was unavailable),
    // or an `unavailable` error naming the room; never silence.
    let answer = next_frame(&mut pinger, Duration::from_secs(20)).await;
    let completed = (answer["type"] == "joined" && answer["room"] == waiting.as_str())
        || (answer["type"] == "error"
            && answer["code"] == "unavailable"
            && answer["room"] == waiting.as_str());
    assert!(completed, "the waiting join ended with {answer}");
    println!(
        "the join completed {:?} after the stall began: {answer}",
        stopped.elapsed()
    );
    // And the connection works as before: a ping, then a message round trip through Redis.
    pinger.send_json(&json!({"type": "ping"})).await;
    assert_eq!(
        next_frame(&mut pinger, Duration::from_secs(5)).await["type"],
        "pong"
    );
}
