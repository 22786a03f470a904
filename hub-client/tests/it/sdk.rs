//! What the Rust SDK does beyond the shared conformance scenarios, against a real hub and Redis:
//! an application slower than the room (its buffer fills, nothing is lost), resuming from a kept
//! position in a new client, presence changes and broadcasts as events, a personal room's
//! messages without a subscription, and an unsubscribed room's stream ending.

use std::time::Duration;

use futures_util::StreamExt;
use hub_client::{
    ClientEvent, ClientOptions, HubClient, RecoveryCause, RoomEvent, SubscribeOptions, Subscription,
};

use crate::env::Env;

const WAIT: Duration = Duration::from_secs(20);

/// Waits for the room's first join (what is published before it is not the subscription's).
async fn joined(sub: &mut Subscription) {
    loop {
        let event = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("joined within 20 s")
            .expect("the subscription goes on");
        if matches!(event, RoomEvent::Joined(_)) {
            return;
        }
    }
}

/// The next event of `sub` that is a message (its content), failing on a loss.
async fn next_message(sub: &mut Subscription) -> String {
    loop {
        let event = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("an event within 20 s")
            .expect("the subscription goes on");
        match event {
            RoomEvent::Message(m) => return m.content,
            RoomEvent::Recovery(r) => assert!(r.recovered, "nothing may be lost: {r:?}"),
            _ => {}
        }
    }
}

async fn publish_all(env: &Env, room: &str, tag: &str, n: usize) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..n {
        let content = format!("{tag}-{i}");
        env.api(0)
            .publish(room, &content, &format!("sdk-{room}-{content}"))
            .await
            .expect("published");
        sent.push(content);
    }
    sent
}

#[tokio::test]
async fn an_application_slower_than_the_room_loses_nothing() {
    let env = Env::start("sdk-slow", 1, &[("HUB_HISTORY_SIZE", "1000")]).await;
    let options = ClientOptions {
        room_buffer: 10,
        ..ClientOptions::default()
    };
    let client = HubClient::connect(&env.ws_url(0), options)
        .await
        .expect("connected");
    let mut sub = client
        .subscribe("busy", SubscribeOptions::default())
        .await
        .expect("subscribed");
    joined(&mut sub).await;
    // 150 messages while the application reads none: 15 times its buffer.
    let sent = publish_all(&env, "busy", "m", 150).await;
    let mut got = Vec::new();
    while got.len() < sent.len() {
        got.push(next_message(&mut sub).await);
    }
    assert_eq!(
        got, sent,
        "every message once, in order, though the buffer filled"
    );
    client.close().await;
}

#[tokio::test]
async fn a_kept_position_resumes_in_a_new_client() {
    let env = Env::start("sdk-resume", 1, &[]).await;
    let first = HubClient::connect(&env.ws_url(0), ClientOptions::default())
        .await
        .expect("connected");
    let mut sub = first
        .subscribe("log", SubscribeOptions::default())
        .await
        .expect("subscribed");
    joined(&mut sub).await;
    let before = publish_all(&env, "log", "before", 3).await;
    for want in &before {
        assert_eq!(&next_message(&mut sub).await, want);
    }
    let position = sub.position().await.expect("a position");
    first.close().await;

    let missed = publish_all(&env, "log", "missed", 4).await;
    let second = HubClient::connect(&env.ws_url(0), ClientOptions::default())
        .await
        .expect("connected");
    let mut sub = second
        .subscribe("log", SubscribeOptions::default().since(position))
        .await
        .expect("subscribed");
    let mut got = Vec::new();
    let mut resumed = None;
    while got.len() < missed.len() || resumed.is_none() {
        match tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("event")
            .expect("open")
        {
            RoomEvent::Message(m) => got.push(m.content),
            RoomEvent::Recovery(r) => resumed = Some(r),
            _ => {}
        }
    }
    assert_eq!(got, missed, "exactly what was said in between");
    let r = resumed.expect("a recovery event");
    assert!(r.recovered && r.cause == RecoveryCause::Resume, "{r:?}");
    assert_eq!(r.replayed, 4);
    second.close().await;
}

/// The personal room (`user:<id>`, joined by the hub at connect) reaches the application as
/// client events, with no subscription and no join; another user's never does.
#[tokio::test]
async fn the_personal_room_arrives_without_a_join_and_nobody_elses() {
    let env = Env::start("sdk-personal", 1, &[]).await;
    let connect = async || {
        HubClient::connect(&env.ws_url(0), ClientOptions::default())
            .await
            .expect("connected")
    };
    let (ana, bo) = (connect().await, connect().await);
    let mut ana_events = ana.events();
    let info = ana.connection().expect("welcomed");
    // With auth off every connection is its own user: the personal room is user:<client id>.
    let mine = format!("user:{}", info.client_id);
    assert_eq!(
        info.rooms,
        std::slice::from_ref(&mine),
        "the welcome lists the personal room"
    );
    let theirs = format!("user:{}", bo.connection().expect("welcomed").client_id);
    let sent = publish_all(&env, &mine, "for-ana", 2).await;
    publish_all(&env, &theirs, "for-bo", 1).await;
    let marker = publish_all(&env, &mine, "marker", 1).await;
    let mut got = Vec::new();
    while got.last() != marker.last() {
        let event = tokio::time::timeout(WAIT, ana_events.next())
            .await
            .expect("event")
            .expect("open");
        if let ClientEvent::Message(m) = event {
            got.push(m.content);
        }
    }
    assert_eq!(
        got,
        [sent, marker].concat(),
        "hers, once, in order; not his"
    );
    ana.close().await;
    bo.close().await;
}

#[tokio::test]
async fn presence_changes_broadcasts_and_unsubscribing() {
    let env = Env::start("sdk-events", 1, &[]).await;
    let ana = HubClient::connect(&env.ws_url(0), ClientOptions::default())
        .await
        .expect("connected");
    let mut ana_events = ana.events();
    let mut room = ana
        .subscribe("team", SubscribeOptions::default())
        .await
        .expect("subscribed");
    joined(&mut room).await; // Bo comes after: Ana is told
    let bo = HubClient::connect(&env.ws_url(0), ClientOptions::default())
        .await
        .expect("connected");
    let bo_id = bo.connection().expect("welcomed").client_id;
    let bo_room = bo
        .subscribe("team", SubscribeOptions::default())
        .await
        .expect("subscribed");
    let diff = loop {
        match tokio::time::timeout(WAIT, room.next())
            .await
            .expect("event")
            .expect("open")
        {
            RoomEvent::Presence(d) if d.joins.iter().any(|u| u.user == bo_id) => break d,
            _ => {}
        }
    };
    assert_eq!(diff.room, "team");
    let who = room.presence().await.expect("presence");
    assert_eq!(who.count, 2, "{who:?}");

    env.hubs[0]
        .api()
        .broadcast("maintenance")
        .await
        .expect("broadcast");
    let broadcast = loop {
        let event = tokio::time::timeout(WAIT, ana_events.next())
            .await
            .expect("event")
            .expect("open");
        if let ClientEvent::Broadcast(b) = event {
            break b;
        }
    };
    assert_eq!(broadcast.content, "maintenance");

    bo_room.unsubscribe().await;
    room.room().unsubscribe().await;
    let rest: Vec<RoomEvent> = tokio::time::timeout(WAIT, room.collect())
        .await
        .expect("the stream ends once unsubscribed");
    assert!(
        rest.iter().all(|e| !matches!(e, RoomEvent::Message(_))),
        "{rest:?}"
    );
    ana.close().await;
    bo.close().await;
}

/// On a one-thread runtime the application runs only when the client's task waits. A burst of
/// 2000 messages already in the socket when the client wakes must not fill the application's
/// buffer (100) while the application never gets a turn: the client lets it run when the buffer
/// is half full, and the buffer never overflows.
#[test]
fn a_burst_on_a_one_thread_runtime_gives_the_application_its_turn() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let env = rt.block_on(Env::start(
        "sdk-burst",
        1,
        &[
            ("HUB_RATE_LIMIT_PER_SEC", "100000"),
            ("HUB_RATE_LIMIT_BURST", "100000"),
            ("HUB_SEND_QUEUE", "10000"),
            // No history: every message goes out at once, in order, without offset. With history
            // a loaded machine makes the hub deliver some before Redis stored them (150 ms late,
            // without offset), and the re-join that fills the hole the skipped offsets leave
            // replays a batch of its own into the buffer: what this test measures is the burst.
            ("HUB_HISTORY_SIZE", "0"),
        ],
    ));
    let url = env.ws_url(0);
    let one_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    one_thread.block_on(async {
        let options = ClientOptions {
            room_buffer: 100,
            ..ClientOptions::default()
        };
        let client = HubClient::connect(&url, options).await.expect("connected");
        let mut sub = client
            .subscribe("burst", SubscribeOptions::default())
            .await
            .expect("subscribed");
        joined(&mut sub).await;
        // The whole runtime is blocked while the burst is sent and reaches the client's socket.
        let publisher = {
            let url = url.clone();
            let handle = rt.handle().clone();
            std::thread::spawn(move || handle.block_on(burst(&url, "burst", 2000)))
        };
        let sent = publisher.join().expect("the burst");
        std::thread::sleep(Duration::from_millis(500));
        let mut got = Vec::new();
        while got.len() < sent.len() {
            got.push(next_message(&mut sub).await);
        }
        assert_eq!(sub.overflows(), 0, "the application always got its turn");
        // Each once, in publish order.
        assert_eq!(got, sent);
        client.close().await;
    });
}

/// Sends `n` messages to `room` as fast as one socket can, from another client; their contents.
async fn burst(url: &str, room: &str, n: usize) -> Vec<String> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("publisher");
    let contents: Vec<String> = (0..n).map(|i| format!("burst-{i}")).collect();
    for (i, c) in contents.iter().enumerate() {
        let frame = serde_json::json!({"type": "message", "room": room, "content": c, "ref": format!("b{i}")});
        ws.feed(WsMessage::text(frame.to_string()))
            .await
            .expect("sent");
    }
    ws.flush().await.expect("flushed");
    // Every ack back: the hub took them all (and fanned them out).
    let mut acks = 0;
    while acks < n {
        match ws.next().await.expect("open").expect("frame") {
            WsMessage::Text(t) if t.contains("\"type\":\"ack\"") => acks += 1,
            _ => {}
        }
    }
    contents
}
