//! Issue 23.5: webhooks at least once, once per cluster. Two real hubs and a real redis-server,
//! real clients, and a real HTTP receiver (`support::receiver`) that checks every signature,
//! drops repeats by event id and counts them. Each test compares what arrived with what the
//! clients did, event for event and in order per room, and prints the counts.
//!
//! No test waits for "nothing more": the last step of each is a marker on each hub (a user
//! joining a room of its own there), and since each hub queues its events in order and one
//! sender sends the queue in order, once both markers arrived everything before them has too.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::support::hub::HubBuilder;
use crate::support::prometheus::promtool_check_metrics;
use crate::support::receiver::Receiver;
use crate::support::token::{SECRET, claims, hs256};
use crate::support::{Client, Hub, RedisServer, room};

const HOOK_SECRET: &str = "hook-secret-for-the-tests-0123456789";
const API_KEY: &str = "webhooks-test-api-key-0123456789";
const QUEUE: &str = "rthub:{webhooks}:events";
const LEASE: &str = "rthub:{webhooks}:sender";
/// The room every client is in from the start.
const GENERAL: &str = "general";

/// A JWT hub sending webhooks to `receiver`: no personal rooms (each connection would fill one:
/// events this file does not count), leaves said at once, a quick heartbeat so a killed hub is
/// buried within ~4 s.
fn hooked(name: &str, redis: &RedisServer, receiver: &Receiver) -> HubBuilder {
    Hub::builder(name)
        .redis(redis)
        .jwt(SECRET)
        .api(API_KEY)
        .envs(&[
            ("HUB_WEBHOOK_URL", &receiver.url()),
            ("HUB_HOOK_SECRET", HOOK_SECRET),
            ("HUB_PERSONAL_ROOMS", "false"),
            ("HUB_PRESENCE_LEAVE_DELAY", "0s"),
            ("HUB_HUB_HEARTBEAT", "1s"),
            ("HUB_HUB_TIMEOUT", "3s"),
        ])
}

/// `sub` connected to `hub`: in the default room `general` at once, as every client is.
async fn user(hub: &Hub, sub: &str, expected: &mut Expected) -> Client {
    let client =
        Client::connect_with_token(hub, &hs256(SECRET, &claims(sub, &sub.to_uppercase(), 600)))
            .await;
    expected.connected(sub, &hub.name);
    client
}

/// One event as the tests compare them: its name and what it is about.
fn describe(e: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    match e["name"].as_str() {
        Some("client_disconnected") => format!(
            "client_disconnected {} {} {} {}",
            s(&e["user"]["id"]),
            s(&e["hub"]),
            e["code"],
            s(&e["client_id"])
        ),
        Some(name @ ("member_added" | "member_removed")) => format!(
            "{name} {} {} {}",
            s(&e["room"]),
            s(&e["user"]["id"]),
            s(&e["user"]["name"])
        ),
        Some(name) => format!("{name} {}", s(&e["room"])),
        None => format!("unnamed {e}"),
    }
}

/// What the clients did, as the events it must produce, in order; and who is connected where
/// (every connection is in `general`).
#[derive(Default)]
struct Expected(Vec<String>, BTreeMap<String, Vec<String>>);

impl Expected {
    fn connected(&mut self, user: &str, hub: &str) {
        if self.1.is_empty() {
            self.occupied(GENERAL);
        }
        let hubs = self.1.entry(user.to_owned()).or_default();
        hubs.push(hub.to_owned());
        if hubs.len() == 1 {
            self.added(GENERAL, user);
        }
    }
    /// One of `user`'s connections on `hub` ended (closed, or its hub killed and buried).
    fn gone(&mut self, user: &str, hub: &str) {
        let hubs = self.1.get_mut(user).expect("a connected user");
        let at = hubs.iter().position(|h| h == hub).expect("connected there");
        hubs.remove(at);
        if hubs.is_empty() {
            self.1.remove(user);
            self.removed(GENERAL, user);
            if self.1.is_empty() {
                self.vacated(GENERAL);
            }
        }
    }
    fn occupied(&mut self, room: &str) {
        self.0.push(format!("room_occupied {room}"));
    }
    fn vacated(&mut self, room: &str) {
        self.0.push(format!("room_vacated {room}"));
    }
    fn added(&mut self, room: &str, user: &str) {
        self.0.push(format!(
            "member_added {room} {user} {}",
            user.to_uppercase()
        ));
    }
    fn removed(&mut self, room: &str, user: &str) {
        self.0.push(format!(
            "member_removed {room} {user} {}",
            user.to_uppercase()
        ));
    }
    /// The client closed its connection.
    fn disconnected(&mut self, client: &Client, user: &str, hub: &str) {
        self.closed_by_hub(client, user, hub, 1000);
    }
    fn closed_by_hub(&mut self, client: &Client, user: &str, hub: &str, code: u16) {
        self.0.push(format!(
            "client_disconnected {user} {hub} {code} {}",
            client.id
        ));
        self.gone(user, hub);
    }
}

/// Where a test waits for each step's events: at the receiver (up) or in the queue (receiver
/// down: events wait in the Redis stream). A step is done when its events are there, so the next
/// step's events come after them on whatever hub.
enum Barrier<'a> {
    Received(&'a Receiver),
    Queued(&'a RedisServer),
}

impl Barrier<'_> {
    async fn reached(&self, expected: &Expected) {
        let n = expected.0.len();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = match self {
                Barrier::Received(r) => r.seen(|s| s.events.len()),
                Barrier::Queued(redis) => redis.run::<usize>(redis::cmd("XLEN").arg(QUEUE)).await,
            };
            if got >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{got} events of {n} after 15 s; expected so far: {:#?}",
                expected.0
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Waits until `user` has `n` connections in `room` across the cluster, as Redis says: for steps
/// that produce no event (a second connection, one of two leaving).
async fn wait_connections(redis: &RedisServer, room: &str, user: &str, n: i64) {
    let key = format!("rthub:presence-users:{{{room}}}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now: Option<i64> = redis.run(redis::cmd("HGET").arg(&key).arg(user)).await;
        if now.unwrap_or(0) == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{user} has {now:?} connections in {room}, not {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn close(client: &mut Client) {
    client.send(Message::Close(None)).await.expect("send close");
}

/// The clients of one scenario, kept open until the test ends.
#[derive(Default)]
struct Open(Vec<Client>);

/// Joins, leaves and disconnects on both hubs, two rooms spanning them; each step's events are
/// appended to `expected` and waited for at `barrier`.
async fn scenario(
    a: &Hub,
    b: &Hub,
    redis: &RedisServer,
    barrier: &Barrier<'_>,
    expected: &mut Expected,
) {
    let (r1, r2) = (room("hooks"), room("hooks"));
    // alice on A: the room fills.
    let mut alice_a = user(a, "alice", expected).await;
    alice_a.join(&r1).await;
    expected.occupied(&r1);
    expected.added(&r1, "alice");
    barrier.reached(expected).await;
    // bob on B: a member on the other hub, not a new room.
    let mut bob = user(b, "bob", expected).await;
    bob.join(&r1).await;
    expected.added(&r1, "bob");
    barrier.reached(expected).await;
    // alice again, on B: no news; then her A connection leaves: still no news.
    let mut alice_b = user(b, "alice", expected).await;
    alice_b.join(&r1).await;
    wait_connections(redis, &r1, "alice", 2).await;
    alice_a.leave(&r1).await;
    wait_connections(redis, &r1, "alice", 1).await;
    // bob closes his connection.
    close(&mut bob).await;
    expected.disconnected(&bob, "bob", "hub-b");
    expected.removed(&r1, "bob");
    barrier.reached(expected).await;
    // carol fills a second room on A.
    let mut carol = user(a, "carol", expected).await;
    carol.join(&r2).await;
    expected.occupied(&r2);
    expected.added(&r2, "carol");
    barrier.reached(expected).await;
    // dave joins r2 on B, alice's last connection leaves r1 there: r1 empties.
    let mut dave = user(b, "dave", expected).await;
    dave.join(&r2).await;
    expected.added(&r2, "dave");
    barrier.reached(expected).await;
    alice_b.leave(&r1).await;
    expected.removed(&r1, "alice");
    expected.vacated(&r1);
    barrier.reached(expected).await;
    // carol goes (A), then dave (B): r2 empties on the other hub than it filled.
    close(&mut carol).await;
    expected.disconnected(&carol, "carol", "hub-a");
    expected.removed(&r2, "carol");
    barrier.reached(expected).await;
    close(&mut dave).await;
    expected.disconnected(&dave, "dave", "hub-b");
    expected.removed(&r2, "dave");
    expected.vacated(&r2);
    barrier.reached(expected).await;
    // alice's A connection, in no room now, goes too.
    close(&mut alice_a).await;
    expected.disconnected(&alice_a, "alice", "hub-a");
    barrier.reached(expected).await;
    // And her B connection: nobody is left, `general` empties.
    close(&mut alice_b).await;
    expected.disconnected(&alice_b, "alice", "hub-b");
    barrier.reached(expected).await;
}

/// A user `marker-<hub>` joins a room of its own on `hub`: the last events that hub emits in the
/// test, for [`until_markers`].
async fn marker(hub: &Hub, expected: &mut Expected, open: &mut Open) -> String {
    let r = room(&format!("marker-{}", hub.name));
    let sub = format!("marker-{}", hub.name);
    let mut client = user(hub, &sub, expected).await;
    client.join(&r).await;
    expected.occupied(&r);
    expected.added(&r, &sub);
    open.0.push(client);
    r
}

/// Waits (bounded) until the markers' `member_added` arrived.
async fn until_markers(receiver: &Receiver, markers: &[String], within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let arrived = receiver.seen(|s| {
            markers.iter().all(|m| {
                s.events
                    .iter()
                    .any(|e| e["name"] == "member_added" && e["room"] == m.as_str())
            })
        });
        if arrived {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "markers not received within {within:?}; received: {:#?}",
            receiver.seen(|s| s.events.iter().map(describe).collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The received events (repeats already dropped) are exactly the expected ones — none missing,
/// none extra (a hub emitting what another did would show here) — and each room's in order.
/// Prints and returns (expected, received, duplicates).
fn check(test: &str, receiver: &Receiver, expected: &Expected) -> (usize, usize, usize) {
    let (received, duplicates, posts, bad) = receiver.seen(|s| {
        (
            s.events.iter().map(describe).collect::<Vec<_>>(),
            s.duplicates,
            s.posts,
            s.bad_signatures,
        )
    });
    eprintln!(
        "webhooks {test}: expected {} / received {} (after dropping repeats) / duplicates {duplicates} ({posts} POSTs, {bad} bad signatures)",
        expected.0.len(),
        received.len()
    );
    assert_eq!(bad, 0, "every request must carry a good signature");
    let mut want = expected.0.clone();
    let mut got = received.clone();
    want.sort();
    got.sort();
    assert_eq!(got, want, "received (left) vs expected (right), sorted");
    // Per room, in order: the room is the second word of every event that has one.
    let per_room = |list: &[String]| {
        let mut rooms: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in list
            .iter()
            .filter(|e| !e.starts_with("client_disconnected"))
        {
            let room = e.split(' ').nth(1).unwrap_or_default().to_owned();
            rooms.entry(room).or_default().push(e.clone());
        }
        rooms
    };
    assert_eq!(
        per_room(&received),
        per_room(&expected.0),
        "each room's events in the order they happened"
    );
    (expected.0.len(), received.len(), duplicates)
}

/// The sum of a counter over the hubs' `/metrics`.
async fn metric(hubs: &[&Hub], series: &str) -> f64 {
    let mut sum = 0.0;
    for hub in hubs {
        sum += hub.metric(series).await;
    }
    sum
}

#[tokio::test]
async fn two_hubs_send_each_event_once_for_the_cluster_in_order_per_room() {
    let receiver = Receiver::start(HOOK_SECRET).await;
    let redis = RedisServer::start().await;
    let a = hooked("hub-a", &redis, &receiver).start().await;
    let mut b = hooked("hub-b", &redis, &receiver).start().await;
    let (mut expected, mut open) = (Expected::default(), Open::default());
    scenario(&a, &b, &redis, &Barrier::Received(&receiver), &mut expected).await;
    let markers = [
        marker(&a, &mut expected, &mut open).await,
        marker(&b, &mut expected, &mut open).await,
    ];
    until_markers(&receiver, &markers, Duration::from_secs(15)).await;
    let (n, _, duplicates) = check("two hubs", &receiver, &expected);
    assert_eq!(duplicates, 0, "nothing failed: nothing may come twice");
    assert_eq!(
        metric(&[&a, &b], "realtime_hub_webhook_events_queued_total").await,
        n as f64,
        "each event queued by one hub"
    );
    // The sender's counter moves just after the 2xx it counts.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&[&a, &b], "realtime_hub_webhook_events_sent_total").await != n as f64 {
        assert!(Instant::now() < deadline, "sent counters never reached {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = a.metrics().await;
    let (ok, said) = promtool_check_metrics(&text);
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{text}");
    assert_eq!(
        (
            a.metric("realtime_hub_webhook_events_dropped_total{reason=\"queue_full\"}")
                .await,
            a.metric("realtime_hub_webhook_events_dropped_total{reason=\"expired\"}")
                .await
        ),
        (0.0, 0.0)
    );
    // A hub stopped with SIGTERM closes its clients (1001) and takes its users out of presence:
    // those events are queued before it exits, and the other hub sends them.
    let marker_b = &markers[1];
    expected.closed_by_hub(&open.0[1], "marker-hub-b", "hub-b", 1001);
    expected.removed(marker_b, "marker-hub-b");
    expected.vacated(marker_b);
    b.sigterm();
    let status = b.wait_exit(Duration::from_secs(15)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "hub-b did not exit cleanly: {status:?}"
    );
    let last = [marker(&a, &mut expected, &mut open).await];
    until_markers(&receiver, &last, Duration::from_secs(15)).await;
    check("two hubs, then one stopped", &receiver, &expected);
    drop(open);
}

#[tokio::test]
async fn a_receiver_down_for_a_minute_gets_every_event_in_order_once_back() {
    const DOWN: Duration = Duration::from_secs(60);
    let mut receiver = Receiver::start(HOOK_SECRET).await;
    let redis = RedisServer::start().await;
    let a = hooked("hub-a", &redis, &receiver).start().await;
    let b = hooked("hub-b", &redis, &receiver).start().await;
    receiver.go_down().await;
    let down = Instant::now();
    let (mut expected, mut open) = (Expected::default(), Open::default());
    scenario(&a, &b, &redis, &Barrier::Queued(&redis), &mut expected).await;
    tokio::time::sleep(DOWN.saturating_sub(down.elapsed())).await;
    // The markers last (clients idle for a minute would be closed for not answering pings).
    let markers = [
        marker(&a, &mut expected, &mut open).await,
        marker(&b, &mut expected, &mut open).await,
    ];
    Barrier::Queued(&redis).reached(&expected).await;
    assert_eq!(
        receiver.seen(|s| s.posts),
        0,
        "the receiver was down: nothing can have arrived"
    );
    let failed = metric(&[&a, &b], "realtime_hub_webhook_posts_failed_total").await;
    assert!(failed > 0.0, "the sender tried while the receiver was down");
    receiver.come_back().await;
    let back = Instant::now();
    // The sender's backoff is at most 30 s: everything within it and a margin.
    let took = until_markers(&receiver, &markers, Duration::from_secs(45)).await;
    eprintln!(
        "webhooks receiver down {:?}: {failed} failed POSTs while down; all delivered {took:?} after it came back",
        back.duration_since(down)
    );
    check("receiver down 60 s", &receiver, &expected);
    // Delivered means removed from the queue.
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.run::<usize>(redis::cmd("XLEN").arg(QUEUE)).await != 0 {
        assert!(
            Instant::now() < deadline,
            "delivered events left in the queue"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
}

#[tokio::test]
async fn a_hub_killed_with_events_queued_leaves_them_to_the_other() {
    let mut receiver = Receiver::start(HOOK_SECRET).await;
    let redis = RedisServer::start().await;
    let mut hubs = [
        hooked("hub-a", &redis, &receiver).start().await,
        hooked("hub-b", &redis, &receiver).start().await,
    ];
    receiver.go_down().await;
    let (mut expected, mut open) = (Expected::default(), Open::default());
    let [a, b] = &hubs;
    scenario(a, b, &redis, &Barrier::Queued(&redis), &mut expected).await;
    // Users on both hubs in one room, the victim's only on the hub to be killed: the survivor
    // must say they left, and the room empty once the other leaves too.
    let shared = room("shared");
    let mut on_a = user(a, "erin", &mut expected).await;
    on_a.join(&shared).await;
    expected.occupied(&shared);
    expected.added(&shared, "erin");
    Barrier::Queued(&redis).reached(&expected).await;
    let mut on_b = user(b, "frank", &mut expected).await;
    on_b.join(&shared).await;
    expected.added(&shared, "frank");
    Barrier::Queued(&redis).reached(&expected).await;
    // Kill the hub holding the sender's lease: it was the one trying to send the queue.
    let holder: Option<String> = redis.run(redis::cmd("GET").arg(LEASE)).await;
    let holder = holder.expect("a hub holds the sender's lease");
    let instance = |c: &Client| c.welcome["instance_id"].as_str().map(str::to_owned);
    let victim = if instance(&on_a) == Some(holder.clone()) {
        0
    } else {
        assert_eq!(
            instance(&on_b),
            Some(holder.clone()),
            "the lease names a hub"
        );
        1
    };
    let survivor = 1 - victim;
    let queued: usize = redis.run(redis::cmd("XLEN").arg(QUEUE)).await;
    assert_eq!(queued, expected.0.len(), "everything so far is queued");
    let (gone, stays) = if victim == 0 {
        ("erin", &mut on_b)
    } else {
        ("frank", &mut on_a)
    };
    hubs[victim].kill9();
    eprintln!(
        "webhooks: killed {} (the sender) with {queued} events queued",
        hubs[victim].name
    );
    // The survivor buries the dead hub: the dead hub's users leave (no client_disconnected: the
    // process that could say so is gone).
    expected.removed(&shared, gone);
    expected.gone(gone, &hubs[victim].name);
    Barrier::Queued(&redis).reached(&expected).await;
    stays.leave(&shared).await;
    expected.removed(&shared, &stays_name(gone));
    expected.vacated(&shared);
    receiver.come_back().await;
    let back = Instant::now();
    let survivor_hub = &hubs[survivor];
    let markers = [marker(survivor_hub, &mut expected, &mut open).await];
    let took = until_markers(&receiver, &markers, Duration::from_secs(45)).await;
    eprintln!("webhooks: the survivor sent them all {took:?} after the receiver came back");
    let now_holder: Option<String> = redis.run(redis::cmd("GET").arg(LEASE)).await;
    assert_ne!(now_holder, Some(holder), "the survivor took the lease");
    let _ = back;
    check("hub killed", &receiver, &expected);
    drop((on_a, on_b, open));
}

/// The other user of the shared room.
fn stays_name(gone: &str) -> String {
    match gone {
        "erin" => "frank".into(),
        _ => "erin".into(),
    }
}

#[tokio::test]
async fn a_standalone_hub_sends_its_events_from_memory() {
    let receiver = Receiver::start(HOOK_SECRET).await;
    let hub = Hub::builder("solo")
        .jwt(SECRET)
        .envs(&[
            ("HUB_WEBHOOK_URL", &receiver.url()),
            ("HUB_HOOK_SECRET", HOOK_SECRET),
            ("HUB_PERSONAL_ROOMS", "false"),
            ("HUB_PRESENCE_LEAVE_DELAY", "0s"),
        ])
        .start()
        .await;
    let (mut expected, mut open) = (Expected::default(), Open::default());
    let r = room("solo");
    let mut ana = user(&hub, "ana", &mut expected).await;
    let mut ana2 = user(&hub, "ana", &mut expected).await;
    let mut ben = user(&hub, "ben", &mut expected).await;
    ana.join(&r).await;
    expected.occupied(&r);
    expected.added(&r, "ana");
    ana2.join(&r).await;
    ben.join(&r).await;
    expected.added(&r, "ben");
    ana.leave(&r).await;
    close(&mut ben).await;
    expected.disconnected(&ben, "ben", "solo");
    expected.removed(&r, "ben");
    // Wait for ben's leave before ana's last: the writer gathers changes 50 ms at a time, and
    // within one gather the order of two users' leaves is the order they came in anyway.
    Barrier::Received(&receiver).reached(&expected).await;
    ana2.leave(&r).await;
    expected.removed(&r, "ana");
    expected.vacated(&r);
    let markers = [marker(&hub, &mut expected, &mut open).await];
    until_markers(&receiver, &markers, Duration::from_secs(15)).await;
    let (_, _, duplicates) = check("standalone", &receiver, &expected);
    assert_eq!(duplicates, 0);
    drop((ana, ana2, open));
}

#[tokio::test]
async fn a_batch_answered_too_late_comes_again_and_the_receiver_drops_the_repeats() {
    let receiver = Receiver::start(HOOK_SECRET).await;
    let redis = RedisServer::start().await;
    let a = hooked("hub-a", &redis, &receiver).start().await;
    let b = hooked("hub-b", &redis, &receiver).start().await;
    // The hub waits 10 s for an answer: this one comes after 12 s, the events already recorded.
    receiver.answer_next_after(Duration::from_secs(12));
    let (mut expected, mut open) = (Expected::default(), Open::default());
    let markers = [
        marker(&a, &mut expected, &mut open).await,
        marker(&b, &mut expected, &mut open).await,
    ];
    until_markers(&receiver, &markers, Duration::from_secs(15)).await;
    // What the slow POST held comes again once the hub gave up on it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.seen(|s| s.duplicates) == 0 {
        assert!(Instant::now() < deadline, "the late batch never came again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Then a marker again, so that all the repeats are in.
    let last = [marker(&a, &mut expected, &mut open).await];
    until_markers(&receiver, &last, Duration::from_secs(15)).await;
    let (_, _, duplicates) = check("answer too late", &receiver, &expected);
    assert!(duplicates > 0);
    assert!(
        metric(&[&a, &b], "realtime_hub_webhook_posts_failed_total").await >= 1.0,
        "the hub counted the POST it gave up on"
    );
    drop(open);
}
