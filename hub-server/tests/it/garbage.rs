//! Issue 14.6: garbage over real sockets. For 30 s, four tasks open connection after connection to
//! a real hub and send it random bytes (before any HTTP), random HTTP, random WebSocket frames
//! after a good handshake (any opcode, reserved bits, lengths, masked or not), and random but
//! well-formed WebSocket messages (JSON-ish text, binary, pings). Meanwhile three good clients
//! chat in `general`, a round a second. Afterwards the hub is ready (`/health` 200) with no garbage
//! connection left, every good client still chats, a new pair of clients chats, and nothing in the
//! hub's log says `panicked`.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use rand::Rng;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::support::client::open;
use crate::support::{Client, Hub, room};

const RUN: Duration = Duration::from_secs(30);
const GARBAGE_TASKS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_seconds_of_garbage_leave_the_hub_healthy_and_chatting() {
    let hub = Hub::builder("hub-garbage")
        // Garbage connections must not be kept waiting for their handshake's timeout.
        .env("HUB_HANDSHAKE_TIMEOUT", "2s")
        .start()
        .await;
    // In a room of their own: random plain text is chat for `general`, which garbage may send.
    let room = room("good");
    let mut good = Vec::new();
    for _ in 0..3 {
        let mut client = Client::connect(&hub).await;
        client.join(&room).await;
        client.leave("general").await;
        good.push(client);
    }

    let deadline = Instant::now() + RUN;
    let seed: u64 = rand::rng().random();
    eprintln!("garbage seed {seed}");
    let tasks: Vec<_> = (0..GARBAGE_TASKS as u64)
        .map(|i| tokio::spawn(garbage(hub.port, seed.wrapping_add(i), deadline)))
        .collect();

    let mut round = 0;
    while Instant::now() < deadline {
        chat_round(&mut good, &room, round).await;
        round += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut connections = 0;
    for task in tasks {
        connections += task.await.expect("garbage task");
    }
    eprintln!("{connections} garbage connections, {round} chat rounds");
    assert!(
        connections >= 200,
        "only {connections} garbage connections in {RUN:?}"
    );

    let health = hub.health().await.expect("health");
    assert_eq!(health.status, 200, "{}", health.body);
    // The garbage connections are all gone (each is closed, or times out): the good ones stay.
    let mut left = None;
    for _ in 0..100 {
        left = hub.connections().await;
        if left == Some(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, Some(3), "connections left: {left:?}\n{}", hub.log());
    chat_round(&mut good, &room, round).await;
    let mut fresh = [Client::connect(&hub).await, Client::connect(&hub).await];
    fresh[0].say("general", "fresh after the garbage").await;
    let got = fresh[1].recv_chat(1).await;
    assert_eq!(got[0]["content"], "fresh after the garbage");
    let log = hub.log();
    assert!(!log.contains("panicked"), "the hub panicked:\n{log}");
}

/// One good client speaks; the two others must hear it.
async fn chat_round(good: &mut [Client], room: &str, round: usize) {
    let speaker = round % good.len();
    let content = format!("round {round}");
    good[speaker].say(room, &content).await;
    for (i, client) in good.iter_mut().enumerate() {
        if i != speaker {
            let got = client.recv_chat_within(1, Duration::from_secs(10)).await;
            assert_eq!(
                got[0]["content"].as_str(),
                Some(content.as_str()),
                "{got:?}"
            );
        }
    }
}

/// Connections of every kind of garbage until `deadline`; returns how many.
async fn garbage(port: u16, seed: u64, deadline: Instant) -> usize {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut n = 0;
    while Instant::now() < deadline {
        let kind = rng.random_range(0..4);
        let one = async {
            match kind {
                0 => random_bytes(port, &mut rng).await,
                1 => random_http(port, &mut rng).await,
                2 => random_frames(port, &mut rng).await,
                _ => random_messages(port, &mut rng).await,
            }
        };
        // A connection the hub keeps open (waiting for more) is dropped after a while.
        let _ = tokio::time::timeout(Duration::from_secs(3), one).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    n
}

fn bytes(rng: &mut SmallRng, max: usize) -> Vec<u8> {
    let mut buf = vec![0u8; rng.random_range(0..=max)];
    rng.fill_bytes(&mut buf);
    buf
}

/// Reads (and drops) what the hub says, briefly, so its writes never block on us.
async fn drain(stream: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(50), async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn random_bytes(port: u16, rng: &mut SmallRng) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let _ = stream.write_all(&bytes(rng, 4096)).await;
    drain(&mut stream).await;
}

async fn random_http(port: u16, rng: &mut SmallRng) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let mut request = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n".to_vec();
    for _ in 0..rng.random_range(0..6) {
        request.extend(bytes(rng, 40));
        request.extend_from_slice(b": ");
        request.extend(bytes(rng, 60));
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let _ = stream.write_all(&request).await;
    drain(&mut stream).await;
}

/// A good handshake, then frames with random headers and payloads, then random bytes.
async fn random_frames(port: u16, rng: &mut SmallRng) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let handshake = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    if stream.write_all(handshake.as_bytes()).await.is_err() {
        return;
    }
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    for _ in 0..rng.random_range(1..20) {
        let mut frame = vec![rng.random::<u8>()];
        let masked = rng.random_bool(0.9);
        let len: usize = match rng.random_range(0..10) {
            0 => rng.random_range(126..2000),
            1 => rng.random_range(0..1 << 16).min(70_000),
            _ => rng.random_range(0..126),
        };
        let mask_bit = if masked { 0x80 } else { 0 };
        if len < 126 {
            frame.push(mask_bit | len as u8);
        } else {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        if masked {
            frame.extend(rng.random::<[u8; 4]>());
        }
        let mut payload = vec![0u8; len];
        rng.fill_bytes(&mut payload);
        frame.extend(payload);
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
    if rng.random_bool(0.5) {
        let _ = stream.write_all(&bytes(rng, 512)).await;
    }
    drain(&mut stream).await;
}

/// Well-formed WebSocket messages with random content: JSON-ish text, binary, pings.
async fn random_messages(port: u16, rng: &mut SmallRng) {
    let Ok(mut ws) = open(&format!("ws://127.0.0.1:{port}/ws"), None).await else {
        return;
    };
    const PIECES: [&str; 14] = [
        "{",
        "}",
        "\"type\"",
        ":",
        "\"join\"",
        "\"message\"",
        "\"room\"",
        "\"content\"",
        ",",
        "\"general\"",
        "[",
        "]",
        "null",
        "\"auth\"",
    ];
    for _ in 0..rng.random_range(1..20) {
        let message = match rng.random_range(0..5) {
            0 => Message::Binary(Bytes::from(bytes(rng, 300))),
            1 => Message::Ping(Bytes::from(bytes(rng, 125))),
            2 => Message::Text(
                String::from_utf8_lossy(&bytes(rng, 300))
                    .into_owned()
                    .into(),
            ),
            _ => {
                let text: String = (0..rng.random_range(0..30))
                    .map(|_| PIECES[rng.random_range(0..PIECES.len())])
                    .collect();
                Message::Text(text.into())
            }
        };
        if ws.send(message).await.is_err() {
            return;
        }
    }
    if rng.random_bool(0.5) {
        let _ = ws.close(None).await;
    }
}
