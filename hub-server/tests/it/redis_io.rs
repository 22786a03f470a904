//! Issue 25.2: `redis_timeout` measures Redis, not the hub's own queue. The hub's Redis
//! connections are read on a thread of their own (`redis_link::io_thread`), so a reply Redis sent
//! in time is in hand when the task that waits for it runs, however late that is. Before, a hub
//! whose runtime ran seconds behind (the reconnect storm of `make bench-c250k`) timed out replies
//! that had long arrived, dropped a healthy connection and refused the server API's messages. And
//! a request leaves at once, however many are made together: one that waited for room in the
//! connection's queue would leave only when its own task ran again.

use std::time::Duration;

use futures_util::FutureExt;
use hub_server::config::Settings;
use hub_server::redis_link::{Conn, Node, RedisTarget};
use redis::aio::ConnectionLike;

use crate::support::RedisServer;

/// The wait for a reply; the caller's thread is then kept busy for three times as long.
const TIMEOUT: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "current_thread")]
async fn a_reply_redis_sent_in_time_is_taken_even_when_the_waiting_task_runs_late() {
    let redis = RedisServer::start().await;
    let target = target_of(&redis);
    let conn = target
        .connect_node(&Node::Only, TIMEOUT)
        .await
        .expect("connected");

    late_waiter_gets_its_reply(&conn).await;

    // A storm's worth at once (a join storm's history reads, each in its own task): each request
    // leaves at its task's first poll; none waits for room in the connection's queue, which it
    // would leave only when its task ran again.
    let asks: Vec<_> = (0..2_000u32)
        .map(|i| {
            let mut conn = conn.clone();
            tokio::spawn(async move {
                redis::cmd("ECHO")
                    .arg(i)
                    .query_async::<u32>(&mut conn)
                    .await
            })
        })
        .collect();
    // Every task has run once (they were queued before this one).
    tokio::task::yield_now().await;
    std::thread::sleep(TIMEOUT * 3);
    let mut answers = Vec::new();
    for ask in asks {
        answers.push(ask.await.expect("the task ran"));
    }
    let late = answers.iter().filter(|a| a.is_err()).count();
    assert_eq!(
        late, 0,
        "of 2,000 requests sent at once, {late} counted as late"
    );
    assert!(
        answers
            .iter()
            .enumerate()
            .all(|(i, a)| a.as_ref().ok() == Some(&(i as u32)))
    );
}

/// The connection for one-off requests (presence, the API, webhooks) makes a new connection after
/// it broke on the I/O thread too. redis-rs's `ConnectionManager` spawns that on the runtime of
/// the request that found the old one broken, which put the heartbeat's replies back behind the
/// hub's sessions after the first Redis outage.
#[tokio::test(flavor = "current_thread")]
async fn the_one_off_connection_is_made_again_on_the_io_thread_after_it_broke() {
    let redis = RedisServer::start().await;
    let target = target_of(&redis);
    let conn = target.managed(TIMEOUT).await.expect("connected");
    let pong = |mut c: Conn| async move { redis::cmd("PING").query_async::<String>(&mut c).await };
    assert_eq!(pong(conn.clone()).await.as_deref().ok(), Some("PONG"));

    // Every connection but the killer's is closed, as by a Redis restart or a network cut.
    let client = redis::Client::open(redis.url()).expect("url");
    let mut killer = client
        .get_multiplexed_async_connection()
        .await
        .expect("another connection");
    let killed: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query_async(&mut killer)
        .await
        .expect("CLIENT KILL");
    assert!(killed >= 1, "the one-off connection was closed ({killed})");

    // The requests that find it broken fail; a new connection comes within a few seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while pong(conn.clone()).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new connection within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    late_waiter_gets_its_reply(&conn).await;
}

/// The hub's view of `redis`, with its I/O thread.
fn target_of(redis: &RedisServer) -> RedisTarget {
    let settings = Settings::load_from(None, [("REDIS_URL", redis.url())]).expect("settings");
    RedisTarget::from_settings(&settings)
        .expect("a valid url")
        .expect("a Redis")
}

/// A PING whose task runs only after 3 × the reply timeout still gets its `PONG`: the reply was
/// read when Redis sent it, on the I/O thread. Three times.
async fn late_waiter_gets_its_reply(conn: &(impl ConnectionLike + Clone)) {
    // A round shows something only if the reply was not yet in hand at the first poll. On a
    // loaded machine the OS can preempt this thread between handing the command over and that
    // poll, long enough for the whole round trip; such a round is made again, not failed.
    let mut shown = 0;
    let mut tries = 0;
    while shown < 3 {
        tries += 1;
        assert!(
            tries <= 50,
            "{tries} PINGs, {shown} not answered at their first poll"
        );
        let mut conn = conn.clone();
        let mut ask =
            Box::pin(async move { redis::cmd("PING").query_async::<String>(&mut conn).await });
        // The first poll hands the command over and starts the reply's clock.
        match (&mut ask).now_or_never() {
            None => {}
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("try {tries}: PING failed at once: {e}"),
        }
        // This runtime's one thread is busy (as a loaded hub's are) until well past the timeout.
        std::thread::sleep(TIMEOUT * 3);
        let answer = ask.await;
        assert_eq!(
            answer.as_deref().ok(),
            Some("PONG"),
            "try {tries}: a reply Redis sent at once counted as late: {answer:?}"
        );
        shown += 1;
    }
}
