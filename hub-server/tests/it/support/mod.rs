//! Shared helpers: processes under test (redis-server, hub-server), WebSocket clients, tiny HTTP.

pub mod backend;
pub mod client;
pub mod cluster;
pub mod flood;
pub mod http;
pub mod hub;
pub mod marker;
pub mod netns;
pub mod prometheus;
pub mod proxy;
pub mod receiver;
pub mod redis;
pub mod sse;
pub mod token;
pub mod two_hubs;

use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;

pub use client::{Client, Event};
pub use hub::Hub;
pub use marker::{
    assert_nothing_more, assert_nothing_more_heralded, assert_nothing_more_in, marker,
};
pub use redis::RedisServer;
pub use two_hubs::{TwoHubs, connect_n, member};

/// Upper bound for any frame we expect to arrive; a hub that fails to deliver fails the test
/// instead of hanging it.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// A port that was free a moment ago: bind port 0 on loopback, read the port, release it. Another
/// process may take it before it is used: only for servers that cannot listen on port 0 themselves
/// (redis-server), and only with a retry on another port when the server finds it taken. Hubs and
/// Prometheus listen on port 0 and log the port they got.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A room name unique enough to keep tests readable in hub logs.
pub fn room(name: &str) -> String {
    format!("{name}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// What one client sent, to check what another received: sender id, sender's hub name, contents.
#[derive(Clone, Copy)]
pub struct Sent<'a> {
    pub from: &'a str,
    pub hub: &'a str,
    pub contents: &'a [String],
}

/// `client` receives exactly one chat frame: `content`, sent by `from` through hub `hub`.
pub async fn assert_receives_one(
    client: &mut Client,
    kind: &str,
    room: Option<&str>,
    from: &str,
    hub: &str,
    content: &str,
) {
    let contents = [content.to_owned()];
    let sent = Sent {
        from,
        hub,
        contents: &contents,
    };
    assert_receives(client, kind, room, &[sent]).await;
}

/// `client` receives exactly the chat frames in `sent` — each content once, per sender in order —
/// as `kind` frames (`message` in `room`, or `broadcast` with no room), with the fields the
/// protocol promises. Frames of different senders may interleave.
pub async fn assert_receives(
    client: &mut Client,
    kind: &str,
    room: Option<&str>,
    sent: &[Sent<'_>],
) {
    let n = sent.iter().map(|s| s.contents.len()).sum();
    let frames = client.recv_chat(n).await;
    assert_chat(&client.id, &frames, kind, room, sent);
}

/// `frames`, read by client `to`, are exactly the chat frames in `sent` (as [`assert_receives`]
/// says): for a part of what a client read, such as its broadcasts apart from its messages.
pub fn assert_chat(to: &str, frames: &[Value], kind: &str, room: Option<&str>, sent: &[Sent<'_>]) {
    for frame in frames {
        assert_eq!(frame["type"], kind, "client {to} got {frame}");
        match room {
            Some(room) => assert_eq!(frame["room"], room, "client {to} got {frame}"),
            None => assert!(
                frame.get("room").is_none(),
                "broadcast with a room: {frame}"
            ),
        }
        assert!(
            frame["id"].as_str().is_some_and(|id| !id.is_empty()),
            "no message id: {frame}"
        );
        assert!(
            frame["timestamp"].as_str().is_some_and(|t| t.contains('T')),
            "no RFC 3339 timestamp: {frame}"
        );
    }
    for s in sent {
        assert_eq!(
            client::contents_from(frames, s.from),
            s.contents,
            "client {to} from {}: wrong, missing, duplicated or reordered; all frames: {frames:#?}",
            s.from
        );
        for frame in frames.iter().filter(|f| f["from"] == s.from) {
            assert_eq!(frame["hub"], s.hub, "wrong origin hub name: {frame}");
        }
    }
    let senders: Vec<&str> = sent.iter().map(|s| s.from).collect();
    for frame in frames {
        assert!(
            frame["from"].as_str().is_some_and(|f| senders.contains(&f)),
            "client {to}: a frame from nobody expected: {frame}"
        );
    }
}
