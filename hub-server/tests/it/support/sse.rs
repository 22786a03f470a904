//! An SSE client of the hub's fallback transport, over raw TCP (HTTP/1.0, so the event stream
//! comes unchunked until the hub ends it): `POST /sse/session`, `GET /sse?session=…` read on
//! demand (a test that stops calling it is a client that stopped reading), `POST /sse/send`.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

use super::http::{self, Response};
use super::{Hub, RECV_TIMEOUT};

/// One event of the stream: a frame (`data:`), the close (`event: close`), or the end of the
/// stream without a close event.
#[derive(Debug)]
pub enum SseEvent {
    Frame(Value),
    Close(u16, String),
    End,
}

/// `POST /sse/session` with `body`, from `origin` if any.
pub async fn make_session(port: u16, body: &Value, origin: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
    let body = body.to_string();
    http::request(
        port,
        "POST",
        "/sse/session",
        &headers,
        Some(body.as_bytes()),
    )
    .await
    .expect("POST /sse/session")
}

/// `POST /sse/send` of `frames` for session `session`, from `origin` if any.
pub async fn send_raw(port: u16, body: &str, origin: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
    http::request(port, "POST", "/sse/send", &headers, Some(body.as_bytes()))
        .await
        .expect("POST /sse/send")
}

pub struct SseClient {
    pub port: u16,
    pub session: String,
    /// The client id its welcome gave (empty until then).
    pub id: String,
    stream: BufReader<TcpStream>,
    /// Keep-alive comment lines read so far.
    pub pings: usize,
}

impl SseClient {
    /// A session made without a token, opened, welcomed.
    pub async fn connect(hub: &Hub) -> Self {
        let made = make_session(hub.port, &json!({}), None).await;
        assert_eq!(made.status, 200, "POST /sse/session: {made:?}");
        let session = made.json()["session"]
            .as_str()
            .expect("a session id")
            .to_owned();
        let mut client = Self::open(hub.port, &session, None, None)
            .await
            .unwrap_or_else(|r| panic!("GET /sse: {r:?}"));
        let welcome = client.recv_json().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        client.id = welcome["client_id"].as_str().unwrap_or_default().to_owned();
        client
    }

    /// `GET /sse?session=<session>`: the stream, or the hub's refusal. `recv_buffer` shrinks the
    /// socket's receive buffer (a slow consumer fills it sooner).
    pub async fn open(
        port: u16,
        session: &str,
        origin: Option<&str>,
        recv_buffer: Option<u32>,
    ) -> Result<Self, Response> {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let tcp = socket
            .connect(([127, 0, 0, 1], port).into())
            .await
            .expect("connect");
        let mut stream = BufReader::new(tcp);
        let mut head = format!("GET /sse?session={session} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
        if let Some(origin) = origin {
            head.push_str(&format!("Origin: {origin}\r\n"));
        }
        head.push_str("\r\n");
        stream
            .get_mut()
            .write_all(head.as_bytes())
            .await
            .expect("write");
        let mut status_line = String::new();
        let mut headers = Vec::new();
        let read_head = async {
            stream.read_line(&mut status_line).await?;
            loop {
                let mut line = String::new();
                stream.read_line(&mut line).await?;
                let line = line.trim_end();
                if line.is_empty() {
                    return Ok::<_, std::io::Error>(());
                }
                if let Some((n, v)) = line.split_once(':') {
                    headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
        };
        tokio::time::timeout(RECV_TIMEOUT, read_head)
            .await
            .expect("response head in time")
            .expect("read head");
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        if status != 200 {
            let mut body = String::new();
            let _ = tokio::time::timeout(RECV_TIMEOUT, stream.read_to_string(&mut body)).await;
            return Err(Response {
                status,
                body,
                headers,
            });
        }
        let content_type = headers.iter().find(|(n, _)| n == "content-type");
        assert_eq!(
            content_type.map(|(_, v)| v.as_str()),
            Some("text/event-stream")
        );
        Ok(SseClient {
            port,
            session: session.to_owned(),
            id: String::new(),
            stream,
            pings: 0,
        })
    }

    /// The next event within `within` (`None`: none came), presence diffs skipped.
    pub async fn next_event(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let event = tokio::time::timeout_at(deadline, self.read_event())
                .await
                .ok()?;
            match &event {
                SseEvent::Frame(f) if f["type"] == "presence_diff" => continue,
                _ => return Some(event),
            }
        }
    }

    async fn read_event(&mut self) -> SseEvent {
        let (mut name, mut data) = (None::<String>, Vec::<String>::new());
        loop {
            let mut line = String::new();
            match self.stream.read_line(&mut line).await {
                Ok(0) | Err(_) => return SseEvent::End,
                Ok(_) => {}
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if data.is_empty() {
                    continue;
                }
                let data = data.join("\n");
                let value: Value = serde_json::from_str(&data)
                    .unwrap_or_else(|e| panic!("event data not JSON ({e}): {data:?}"));
                return match name.as_deref() {
                    Some("close") => SseEvent::Close(
                        value["code"].as_u64().unwrap_or_default() as u16,
                        value["reason"].as_str().unwrap_or_default().to_owned(),
                    ),
                    None => SseEvent::Frame(value),
                    Some(other) => panic!("unknown event {other:?}: {data}"),
                };
            }
            if line.starts_with(':') {
                if line == ": ping" {
                    self.pings += 1;
                }
            } else if let Some(value) = line.strip_prefix("event: ") {
                name = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("data: ") {
                data.push(value.to_owned());
            } else {
                panic!("not an SSE line: {line:?}");
            }
        }
    }

    /// The next frame (presence diffs skipped); panics on a close, the end or a timeout.
    pub async fn recv_json(&mut self) -> Value {
        match self.next_event(RECV_TIMEOUT).await {
            Some(SseEvent::Frame(frame)) => frame,
            other => panic!("sse client {}: expected a frame, got {other:?}", self.id),
        }
    }

    /// `POST /sse/send` of `frames` for this session.
    pub async fn send(&self, frames: &[Value]) -> Response {
        let body = json!({"session": self.session, "frames": frames}).to_string();
        send_raw(self.port, &body, None).await
    }

    /// Sends `frames`; the hub must take them (204).
    pub async fn send_ok(&self, frames: &[Value]) {
        let sent = self.send(frames).await;
        assert_eq!(sent.status, 204, "POST /sse/send: {sent:?}");
    }

    pub async fn join(&mut self, room: &str) {
        self.send_ok(&[json!({"type": "join", "room": room})]).await;
        let frame = self.recv_json().await;
        assert_eq!(
            (frame["type"].as_str(), frame["room"].as_str()),
            (Some("joined"), Some(room)),
            "sse client {}: join {room}: {frame}",
            self.id
        );
    }

    pub async fn say(&self, room: &str, content: &str) {
        self.send_ok(&[json!({"type": "message", "room": room, "content": content})])
            .await;
    }

    /// Reads until the close event (frames before it returned), within `within`.
    pub async fn expect_close(&mut self, within: Duration) -> (u16, String, Vec<Value>) {
        let deadline = tokio::time::Instant::now() + within;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Some(SseEvent::Frame(frame)) => frames.push(frame),
                Some(SseEvent::Close(code, reason)) => return (code, reason, frames),
                other => panic!(
                    "sse client {}: no close event ({other:?}); frames: {}",
                    self.id,
                    frames.len()
                ),
            }
        }
    }
}
