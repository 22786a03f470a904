//! `hub-bench load --subscriber-transport sse`: the room's subscribers on the hub's SSE fallback
//! instead of WebSocket (publishers stay on WebSocket). Each subscriber makes a session
//! (`POST /sse/session`), reads `GET /sse?session=…` over its own TCP connection (HTTP/1.0: the
//! event stream comes unchunked), joins with `POST /sse/send`, and counts what arrives exactly as
//! a WebSocket subscriber does.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant as TokioInstant;

use crate::client::ConnectOpts;
use crate::error::BenchError;
use crate::load_shared::{Shared, SubscriberOutcome, Tally};
use crate::tracker::Tracker;

/// A subscriber's event stream, read from; `bytes` counts what it read.
pub struct SseStream {
    reader: BufReader<TcpStream>,
    bytes: u64,
}

/// `host:port` of a hub's WebSocket URL (`ws://host:port/ws`).
fn authority(url: &str) -> Result<&str, BenchError> {
    let rest = url.strip_prefix("ws://").ok_or_else(|| {
        BenchError::Usage(format!(
            "--subscriber-transport sse needs ws:// URLs, got {url}"
        ))
    })?;
    Ok(rest.split('/').next().unwrap_or(rest))
}

/// One HTTP/1.0 request; the whole response (status, body).
async fn request(addr: &str, head: &str, body: &str) -> Result<(u16, String), BenchError> {
    let mut tcp = TcpStream::connect(addr).await?;
    let req = format!(
        "{head} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await?;
    let mut raw = String::new();
    tcp.read_to_string(&mut raw).await?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

async fn open_one(url: &str, room: &str) -> Result<SseStream, BenchError> {
    let addr = authority(url)?;
    let handshake = |reason: String| BenchError::Handshake {
        url: url.to_owned(),
        reason,
    };
    let (status, body) = request(addr, "POST /sse/session", "{}").await?;
    let session: serde_json::Value = serde_json::from_str(&body)?;
    let Some(session) = session["session"].as_str().filter(|_| status == 200) else {
        return Err(handshake(format!("POST /sse/session: {status} {body}")));
    };
    let mut tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let head = format!("GET /sse?session={session} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    tcp.write_all(head.as_bytes()).await?;
    let mut stream = SseStream {
        reader: BufReader::with_capacity(16 * 1024, tcp),
        bytes: 0,
    };
    let mut line = Vec::new();
    // The response head, then the welcome.
    loop {
        line.clear();
        if stream.reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(handshake("GET /sse: closed".into()));
        }
        if line == b"\r\n" {
            break;
        }
    }
    wait_for(
        &mut stream,
        &mut line,
        |f| f.contains(r#""type":"welcome""#),
        url,
    )
    .await?;
    let join = serde_json::json!({"session": session, "frames": [{"type": "join", "room": room}]});
    let (status, body) = request(addr, "POST /sse/send", &join.to_string()).await?;
    if status != 204 {
        return Err(handshake(format!("POST /sse/send: {status} {body}")));
    }
    let joined = format!(r#""room":"{room}""#);
    wait_for(
        &mut stream,
        &mut line,
        |f| f.contains(r#""type":"joined""#) && f.contains(&joined),
        url,
    )
    .await?;
    Ok(stream)
}

async fn wait_for(
    stream: &mut SseStream,
    line: &mut Vec<u8>,
    want: impl Fn(&str) -> bool,
    url: &str,
) -> Result<(), BenchError> {
    loop {
        line.clear();
        if stream.reader.read_until(b'\n', line).await? == 0 {
            return Err(BenchError::Handshake {
                url: url.to_owned(),
                reason: "stream ended".into(),
            });
        }
        if let Some(data) = line.strip_prefix(b"data: ")
            && want(&String::from_utf8_lossy(data))
        {
            return Ok(());
        }
    }
}

/// `count` SSE subscribers joined to `room`, round-robin over the hubs.
pub async fn open_many(
    opts: &ConnectOpts,
    room: &str,
    count: usize,
) -> Result<Vec<SseStream>, BenchError> {
    let permits = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let url = opts.urls[i % opts.urls.len()].clone();
            let (room, permits, timeout) = (room.to_owned(), permits.clone(), opts.connect_timeout);
            tokio::spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .expect("semaphore never closed");
                tokio::time::timeout(timeout, open_one(&url, &room))
                    .await
                    .map_err(|_| BenchError::Timeout {
                        url,
                        what: "SSE session + join",
                    })?
            })
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    for t in tasks {
        out.push(
            t.await
                .map_err(|e| BenchError::Task(format!("connect task: {e}")))??,
        );
    }
    Ok(out)
}

/// `load::subscriber` over an event stream.
pub async fn subscriber(
    mut stream: SseStream,
    index: usize,
    tracker: Tracker,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> SubscriberOutcome {
    let mut tally = Tally::new(index, tracker);
    let (mut error_frames, mut disconnected) = (0u64, None);
    let mut wire_before = None;
    let mut line = Vec::with_capacity(1024);
    let window_start: TokioInstant = shared.window_start;
    loop {
        line.clear();
        let read = tokio::select! {
            biased;
            _ = stop.changed() => break,
            _ = tokio::time::sleep_until(window_start), if wire_before.is_none() => {
                wire_before = Some(stream.bytes);
                continue;
            }
            read = stream.reader.read_until(b'\n', &mut line) => read,
        };
        match read {
            Ok(0) | Err(_) => {
                disconnected = Some("stream ended".to_owned());
                break;
            }
            Ok(n) => stream.bytes += n as u64,
        }
        if line.starts_with(b"event: close") {
            disconnected = Some("close event".to_owned());
            break;
        }
        let Some(data) = line.strip_prefix(b"data: ") else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(data) else {
            continue;
        };
        if !tally.delivery(text, &shared) && text.contains(r#""type":"error""#) {
            error_frames += 1;
        }
    }
    let wire_bytes = wire_before.map_or(0, |before| stream.bytes - before);
    tally.finish(&shared, disconnected, error_frames, wire_bytes)
}
