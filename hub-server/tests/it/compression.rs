//! Issue 24.1: permessage-deflate. A client that offers it gets it, without context takeover both
//! ways; frames of `compression_min_bytes` or more arrive compressed and inflate to exactly the
//! JSON a client without compression gets (across hubs too), shorter ones arrive plain; a client
//! that offers nothing, or a hub with `compression = false`, sends plain frames; a client that asks
//! for a smaller window gets frames it can inflate with it; compressed client messages are read;
//! a deflate bomb closes with 1009 without the hub's memory moving; corrupt data closes with 1007.
//!
//! The compressing client here is written for the test on a bare TCP socket (its own framing, its
//! own flate2 inflater): neither tungstenite nor the hub's code judges the hub's frames.

use std::time::Duration;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{Client, Hub, RECV_TIMEOUT, RedisServer, room};

/// What every answer to an acceptable offer says.
const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
const TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// One message from the hub as it came over the wire.
#[derive(Debug)]
enum Received {
    /// A text message; `compressed`: RSV1 was set and the payload inflated to `text`.
    Text {
        text: String,
        compressed: bool,
    },
    Close(u16),
}

/// A WebSocket client on a bare socket: enough RFC 6455 and 7692 to check the hub's frames bit by
/// bit. Frames from the hub are never fragmented (the hub writes whole messages).
struct RawClient {
    tcp: TcpStream,
    buf: Vec<u8>,
    /// The 101's `Sec-WebSocket-Extensions`, if any.
    extensions: Option<String>,
    /// The LZ77 window this client inflates with.
    window_bits: u8,
    /// With compression agreed, the hub's `compression_min_bytes`: every text frame is checked
    /// against the rule (that long, not an error: compressed; else plain). Without: all plain.
    min_bytes: Option<usize>,
    /// The payload length on the wire of the last text message read.
    last_wire_len: usize,
}

impl RawClient {
    async fn connect(hub: &Hub, offer: Option<&str>) -> Self {
        let mut tcp = TcpStream::connect(("127.0.0.1", hub.port))
            .await
            .expect("connect");
        let offer = offer
            .map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n",
            hub.port
        );
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut client = RawClient {
            tcp,
            buf: Vec::new(),
            extensions: None,
            window_bits: 15,
            min_bytes: None,
            last_wire_len: 0,
        };
        let head = client.read_head().await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        client.extensions = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim().to_owned())
        });
        client.min_bytes = client.extensions.is_some().then_some(256);
        client
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(RECV_TIMEOUT, self.tcp.read(&mut chunk))
            .await
            .expect("hub answered in time")
            .expect("read");
        assert!(n > 0, "connection ended");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    async fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                return head;
            }
            self.fill().await;
        }
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill().await;
        }
        self.buf.drain(..n).collect()
    }

    /// The next text or close message (pings and pongs skipped).
    async fn next(&mut self) -> Received {
        loop {
            let head = self.take(2).await;
            let (fin, rsv, opcode) = (head[0] & 0x80 != 0, head[0] & 0x70, head[0] & 0x0f);
            assert!(head[1] & 0x80 == 0, "a server frame must not be masked");
            let len = match head[1] & 0x7f {
                126 => u16::from_be_bytes(self.take(2).await.try_into().expect("2 bytes")) as usize,
                127 => u64::from_be_bytes(self.take(8).await.try_into().expect("8 bytes")) as usize,
                n => n as usize,
            };
            let payload = self.take(len).await;
            assert!(fin, "the hub does not fragment");
            match opcode {
                1 => {
                    assert!(rsv == 0 || rsv == 0x40, "only RSV1 may be set: {rsv:#x}");
                    let compressed = rsv == 0x40;
                    self.last_wire_len = payload.len();
                    let bytes = match compressed {
                        true => inflate(&payload, self.window_bits).expect("inflates"),
                        false => payload,
                    };
                    let text = String::from_utf8(bytes).expect("UTF-8");
                    let due = self.min_bytes.is_some_and(|min| {
                        text.len() >= min && !text.starts_with(r#"{"type":"error""#)
                    });
                    assert_eq!(compressed, due, "{} bytes: {text:.300}", text.len());
                    return Received::Text { text, compressed };
                }
                8 => {
                    assert_eq!(rsv, 0, "a close frame is never compressed");
                    return Received::Close(u16::from_be_bytes([payload[0], payload[1]]));
                }
                9 | 10 => continue,
                other => panic!("unexpected opcode {other}"),
            }
        }
    }

    /// The next text message but presence diffs (panics on anything else), and whether it came
    /// compressed.
    async fn text(&mut self) -> (Value, bool) {
        loop {
            match self.next().await {
                Received::Text { text, compressed } => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON");
                    if frame["type"] != "presence_diff" {
                        return (frame, compressed);
                    }
                }
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// The close code, after any text still on its way.
    async fn close_code(&mut self) -> u16 {
        loop {
            if let Received::Close(code) = self.next().await {
                return code;
            }
        }
    }

    /// Sends one masked frame.
    async fn send_frame(&mut self, opcode: u8, rsv1: bool, payload: &[u8]) {
        let mut frame = vec![0x80 | if rsv1 { 0x40 } else { 0 } | opcode];
        match payload.len() {
            n @ 0..=125 => frame.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&frame).await.expect("send");
    }

    async fn send_json(&mut self, value: &Value, compressed: bool) {
        let text = value.to_string();
        match compressed {
            true => self.send_frame(1, true, &deflate(text.as_bytes())).await,
            false => self.send_frame(1, false, text.as_bytes()).await,
        }
    }

    /// Reads the welcome and joins `room`.
    async fn welcome_and_join(&mut self, room: &str) -> String {
        let (welcome, _) = self.text().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        self.send_json(&json!({"type": "join", "room": room}), false)
            .await;
        loop {
            let (frame, _) = self.text().await;
            if frame["type"] == "joined" {
                return welcome["client_id"].as_str().expect("id").to_owned();
            }
        }
    }
}

/// A message compressed as a client does (RFC 7692 7.2.1), with flate2 directly.
fn deflate(message: &[u8]) -> Vec<u8> {
    let mut z = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(message.len() + 1024);
    z.compress_vec(message, &mut out, FlushCompress::Sync)
        .expect("deflate");
    assert_eq!(z.total_in(), message.len() as u64, "output room was enough");
    assert!(out.ends_with(&TAIL));
    out.truncate(out.len() - TAIL.len());
    out
}

/// A hub payload inflated with a `window_bits` window, as a client with that window would.
fn inflate(payload: &[u8], window_bits: u8) -> Result<Vec<u8>, flate2::DecompressError> {
    let mut z = Decompress::new_with_window_bits(false, window_bits);
    let mut input = payload.to_vec();
    input.extend_from_slice(&TAIL);
    let mut out = Vec::with_capacity(payload.len() * 20 + 1024);
    let status = z.decompress_vec(&input, &mut out, FlushDecompress::Sync)?;
    assert!(
        matches!(status, Status::Ok | Status::BufError),
        "{status:?}"
    );
    assert_eq!(z.total_in(), input.len() as u64, "inflated completely");
    Ok(out)
}

/// `n` bytes that do not compress (xorshift64).
fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A chat content of `n` bytes that compresses as chat text does (words, repeated).
fn content(n: usize) -> String {
    "the quick brown fox jumps over the lazy dog "
        .repeat(n / 44 + 1)
        .chars()
        .take(n)
        .collect()
}

#[tokio::test]
async fn long_frames_arrive_compressed_once_short_ones_plain_and_the_same_json_for_everyone() {
    let redis = RedisServer::start().await;
    let east = Hub::with_redis("east", &redis).await;
    let west = Hub::with_redis("west", &redis).await;
    let chat = room("deflate");

    let mut sender = Client::connect(&east).await;
    sender.join(&chat).await;
    let mut zipped_east =
        RawClient::connect(&east, Some("permessage-deflate; client_max_window_bits")).await;
    assert_eq!(zipped_east.extensions.as_deref(), Some(AGREED));
    zipped_east.welcome_and_join(&chat).await;
    let mut zipped_west = RawClient::connect(&west, Some("permessage-deflate")).await;
    assert_eq!(zipped_west.extensions.as_deref(), Some(AGREED));
    zipped_west.welcome_and_join(&chat).await;
    // A client that offers nothing: tungstenite would fail the connection on a frame with RSV1.
    let mut plain = Client::connect(&west).await;
    plain.join(&chat).await;
    let mut bare = RawClient::connect(&west, None).await;
    assert_eq!(bare.extensions, None, "nothing offered, nothing answered");
    bare.welcome_and_join(&chat).await;

    // Every frame the raw clients read is checked against the size rule (see `RawClient::next`);
    // these are the two sides of it.
    let long = content(600);
    sender.say(&chat, &long).await;
    let plain_long = plain.recv_json().await;
    assert_eq!(plain_long["content"], long.as_str());
    for client in [&mut zipped_east, &mut zipped_west] {
        let (frame, compressed) = client.text().await;
        assert!(compressed);
        assert_eq!(frame, plain_long, "the same frame, inflated");
        client.send_json(&json!({"type": "ping"}), false).await;
        let (pong, compressed) = client.text().await;
        assert_eq!(pong["type"], "pong");
        assert!(
            !compressed,
            "a short frame is not worth compressing: {pong}"
        );
    }
    sender.say(&chat, "short").await;
    assert_eq!(plain.recv_json().await["content"], "short");
    for client in [&mut zipped_east, &mut zipped_west] {
        assert_eq!(client.text().await.0["content"], "short");
    }
    for _ in 0..2 {
        let (frame, compressed) = bare.text().await;
        assert!(!compressed, "{frame}");
    }

    // A compressed client message is read like any other, and reaches everyone.
    let marker = content(300);
    zipped_west
        .send_json(
            &json!({"type": "message", "room": chat, "content": marker}),
            true,
        )
        .await;
    assert_eq!(sender.recv_json().await["content"], marker.as_str());
    assert_eq!(plain.recv_json().await["content"], marker.as_str());
    let (frame, compressed) = zipped_east.text().await;
    assert!(compressed);
    assert_eq!(frame["content"], marker.as_str());
}

#[tokio::test]
async fn with_compression_off_an_offer_gets_plain_frames() {
    let hub = Hub::builder("no-deflate")
        .env("HUB_COMPRESSION", "false")
        .start()
        .await;
    let chat = room("plain");
    let mut client =
        RawClient::connect(&hub, Some("permessage-deflate; client_max_window_bits")).await;
    assert_eq!(client.extensions, None);
    client.welcome_and_join(&chat).await;
    let mut sender = Client::connect(&hub).await;
    sender.join(&chat).await;
    let long = content(2000);
    sender.say(&chat, &long).await;
    let (frame, compressed) = client.text().await;
    assert!(!compressed);
    assert_eq!(frame["content"], long.as_str());
}

#[tokio::test]
async fn a_client_asking_for_a_smaller_window_gets_frames_it_can_inflate() {
    let hub = Hub::builder("window").start().await;
    let chat = room("window");
    let offer = "permessage-deflate; server_max_window_bits=9; client_max_window_bits";
    let mut small = RawClient::connect(&hub, Some(offer)).await;
    assert_eq!(
        small.extensions.as_deref(),
        Some(format!("{AGREED}; server_max_window_bits=9").as_str())
    );
    small.window_bits = 9;
    small.welcome_and_join(&chat).await;
    let mut large = RawClient::connect(&hub, Some("permessage-deflate")).await;
    large.welcome_and_join(&chat).await;
    let mut sender = Client::connect(&hub).await;
    sender.join(&chat).await;

    // 1500 characters without repeats, twice: a 32 KiB window finds the second half 1500 bytes
    // back, which a 512-byte window cannot reach, so the small window's payload carries it again.
    // (That, not the inflating, is the proof: zlib-rs keeps a full window whatever it is told, so
    // it would read a payload made for the large window too.)
    let half: String = noise(1500)
        .into_iter()
        .map(|b| char::from(b'a' + b % 26))
        .collect();
    let text = format!("{half}{half}");
    sender.say(&chat, &text).await;
    let (frame, compressed) = large.text().await;
    assert!(compressed);
    assert_eq!(frame["content"], text.as_str());
    let (frame, compressed) = small.text().await;
    assert!(compressed);
    assert_eq!(
        frame["content"],
        text.as_str(),
        "inflated with a 9-bit window"
    );
    assert!(
        small.last_wire_len > large.last_wire_len + 500,
        "9-bit window: {} bytes, 15-bit: {} bytes",
        small.last_wire_len,
        large.last_wire_len
    );
}

/// Peak resident memory (VmHWM) of a process, in KiB: what a bomb inflated in full would raise,
/// even if it were freed again at once.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test]
async fn a_deflate_bomb_closes_with_1009_and_the_hub_memory_does_not_move() {
    const BOMBS: usize = 8;
    // 48 MiB of one letter: ~47 KiB compressed, under the 64 KiB message limit on the wire.
    const INFLATED: usize = 48 << 20;
    let hub = Hub::builder("bomb").start().await;
    let content = "a".repeat(INFLATED);
    let bomb = deflate(
        json!({"type": "broadcast", "content": content})
            .to_string()
            .as_bytes(),
    );
    drop(content);
    assert!(bomb.len() < 64 * 1024, "{} bytes compressed", bomb.len());

    let mut clients = Vec::new();
    for _ in 0..BOMBS {
        let mut client = RawClient::connect(&hub, Some("permessage-deflate")).await;
        let (welcome, _) = client.text().await;
        assert_eq!(welcome["type"], "welcome");
        clients.push(client);
    }
    // A message at the limit inflates and is answered (binary is refused by the protocol, not
    // by size): the bound is the limit, not less.
    let mut probe = RawClient::connect(&hub, Some("permessage-deflate")).await;
    probe.text().await;
    probe
        .send_frame(2, true, &deflate(&vec![7u8; 64 * 1024]))
        .await;
    let (error, _) = probe.text().await;
    assert_eq!(error["code"], "binary_unsupported", "{error}");

    let peak_before = peak_rss_kib(hub.pid());
    for client in &mut clients {
        client.send_frame(1, true, &bomb).await;
    }
    for client in &mut clients {
        assert_eq!(client.close_code().await, 1009);
    }
    let peak_after = peak_rss_kib(hub.pid());
    eprintln!(
        "{BOMBS} bombs of {} bytes inflating to {INFLATED} each: hub peak RSS {peak_before} → {peak_after} KiB",
        bomb.len()
    );
    // Inflated in full, each bomb alone would add 48 MiB. Bounded, they add their 64 KiB output
    // buffers and the compressed messages: well under 8 MiB even with allocator slack.
    assert!(
        peak_after - peak_before < 8 * 1024,
        "peak RSS grew by {} KiB",
        peak_after - peak_before
    );
    assert!(hub.health().await.is_ok_and(|h| h.status == 200));
}

#[tokio::test]
async fn compressed_messages_are_held_to_the_limit_inflated_and_corrupt_ones_close_with_1007() {
    let hub = Hub::builder("limits").start().await;
    let mut client = RawClient::connect(&hub, Some("permessage-deflate")).await;
    client.text().await;
    // Incompressible bytes come out of deflate a little longer: at the limit they still pass.
    let noise = noise(64 * 1024);
    let compressed = deflate(&noise);
    assert!(compressed.len() > noise.len(), "{} bytes", compressed.len());
    client.send_frame(2, true, &compressed).await;
    let (error, _) = client.text().await;
    assert_eq!(error["code"], "binary_unsupported", "{error}");
    // One byte more is over the limit, compressed or not.
    let mut over = noise.clone();
    over.push(0);
    client.send_frame(2, true, &deflate(&over)).await;
    assert_eq!(client.close_code().await, 1009);
    let mut plain = RawClient::connect(&hub, Some("permessage-deflate")).await;
    plain.text().await;
    plain.send_frame(2, false, &over).await;
    assert_eq!(
        plain.close_code().await,
        1009,
        "a plain message, deflate agreed"
    );

    let mut corrupt = RawClient::connect(&hub, Some("permessage-deflate")).await;
    corrupt.text().await;
    corrupt.send_frame(1, true, &[0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(corrupt.close_code().await, 1007);
    // RSV1 without deflate agreed is a protocol error (1002), not something to inflate.
    let mut unagreed = RawClient::connect(&hub, None).await;
    unagreed.text().await;
    unagreed.send_frame(1, true, &deflate(b"{}")).await;
    assert_eq!(unagreed.close_code().await, 1002);

    // None of it hurt anyone else: a fresh client chats, compressed.
    let chat = room("after");
    let mut a = RawClient::connect(&hub, Some("permessage-deflate")).await;
    a.welcome_and_join(&chat).await;
    let mut b = Client::connect(&hub).await;
    b.join(&chat).await;
    b.say(&chat, &content(400)).await;
    let (frame, compressed) = tokio::time::timeout(Duration::from_secs(5), a.text())
        .await
        .expect("in time");
    assert!(compressed);
    assert_eq!(frame["content"], content(400).as_str());
}
