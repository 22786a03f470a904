//! A WebSocket test client speaking the hub's JSON protocol, every wait bounded by a timeout.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use super::{Hub, RECV_TIMEOUT};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the hub did next, as seen by the client.
#[derive(Debug)]
pub enum Event {
    /// A text frame, parsed as JSON (the hub only ever sends JSON).
    Frame(Value),
    /// A close frame and its code.
    Close(Option<u16>),
    /// The connection ended without (further) close frame: EOF, reset, protocol error.
    Ended(String),
}

pub struct Client {
    ws: Ws,
    /// The `client_id` from the welcome frame: what others see as `from`.
    pub id: String,
    pub welcome: Value,
    /// The reason text of the hub's close frame, once one arrived.
    pub close_reason: Option<String>,
    /// `presence_diff` frames, set aside as they arrive: every test that is not about presence
    /// reads the other frames as if they were not there (see [`Client::presence_diffs`]).
    pub presence_diffs: Vec<Value>,
}

/// Open a WebSocket to `url`, optionally with an `Origin` header as a browser would send.
pub async fn open(url: &str, origin: Option<&str>) -> Result<Ws, WsError> {
    open_with(url, origin, None).await
}

/// Like [`open`], with an `Authorization: Bearer` token as a non-browser client sends it.
pub async fn open_with(
    url: &str,
    origin: Option<&str>,
    bearer: Option<&str>,
) -> Result<Ws, WsError> {
    let mut request = url.into_client_request()?;
    if let Some(token) = bearer {
        request.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("valid header"),
        );
    }
    if let Some(origin) = origin {
        request.headers_mut().insert(
            "Origin",
            HeaderValue::from_str(origin).expect("valid origin header"),
        );
    }
    let (ws, _response) = tokio::time::timeout(RECV_TIMEOUT, connect_async(request))
        .await
        .unwrap_or_else(|_| panic!("WebSocket handshake with {url} timed out"))?;
    Ok(ws)
}

impl Client {
    /// Connect to `hub` and read its welcome frame.
    pub async fn connect(hub: &Hub) -> Self {
        let ws = open(&hub.ws_url(), None)
            .await
            .unwrap_or_else(|e| panic!("connect to hub {}: {e}", hub.name));
        Self::from_ws(ws).await
    }

    /// Wrap an open socket and read the welcome frame, which must come first.
    pub async fn from_ws(ws: Ws) -> Self {
        let mut client = Self::unwelcomed(ws);
        client.read_welcome().await;
        client
    }

    /// Wrap an open socket that has not been welcomed (yet): a client that must authenticate.
    pub fn unwelcomed(ws: Ws) -> Self {
        Client {
            ws,
            id: String::new(),
            welcome: Value::Null,
            close_reason: None,
            presence_diffs: Vec::new(),
        }
    }

    /// Connect to `hub`, send `token` as the first frame and read the welcome.
    pub async fn connect_with_token(hub: &Hub, token: &str) -> Self {
        let mut client = Self::connect_unwelcomed(hub).await;
        client.auth(token).await;
        client.read_welcome().await;
        client
    }

    /// Connect to `hub` without reading anything.
    pub async fn connect_unwelcomed(hub: &Hub) -> Self {
        let ws = open(&hub.ws_url(), None)
            .await
            .unwrap_or_else(|e| panic!("connect to hub {}: {e}", hub.name));
        Self::unwelcomed(ws)
    }

    /// Send an `auth` frame.
    pub async fn auth(&mut self, token: &str) {
        self.send_json(&json!({"type": "auth", "token": token}))
            .await;
    }

    /// The next frame must be the welcome: it names the client.
    pub async fn read_welcome(&mut self) {
        let welcome = self.recv_json().await;
        assert_eq!(
            welcome["type"], "welcome",
            "first frame must be the welcome: {welcome}"
        );
        self.id = welcome["client_id"]
            .as_str()
            .unwrap_or_else(|| panic!("welcome without client_id: {welcome}"))
            .to_owned();
        self.welcome = welcome;
    }

    pub async fn send(&mut self, message: Message) -> Result<(), WsError> {
        tokio::time::timeout(RECV_TIMEOUT, self.ws.send(message))
            .await
            .unwrap_or_else(|_| panic!("client {}: send timed out", self.id))
    }

    pub async fn send_json(&mut self, frame: &Value) {
        self.send(Message::text(frame.to_string()))
            .await
            .unwrap_or_else(|e| panic!("client {}: send {frame}: {e}", self.id));
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send(Message::text(text.to_owned()))
            .await
            .unwrap_or_else(|e| panic!("client {}: send text: {e}", self.id));
    }

    /// Send a chat message to `room`.
    pub async fn say(&mut self, room: &str, content: &str) {
        self.send_json(&json!({"type": "message", "room": room, "content": content}))
            .await;
    }

    pub async fn broadcast(&mut self, content: &str) {
        self.send_json(&json!({"type": "broadcast", "content": content}))
            .await;
    }

    /// Join `room` and wait for the hub's `joined`: only then is the client a member on every hub.
    /// Returns the `joined` frame (epoch and offset of the room's history).
    pub async fn join(&mut self, room: &str) -> Value {
        self.send_json(&json!({"type": "join", "room": room})).await;
        let frame = self.recv_json().await;
        assert_eq!(
            (frame["type"].as_str(), frame["room"].as_str()),
            (Some("joined"), Some(room)),
            "client {}: join {room}: {frame}",
            self.id
        );
        frame
    }

    pub async fn leave(&mut self, room: &str) {
        self.send_json(&json!({"type": "leave", "room": room}))
            .await;
        let frame = self.recv_json().await;
        assert_eq!(
            frame,
            json!({"type": "left", "room": room}),
            "client {}: leave {room}",
            self.id
        );
    }

    /// The next event within `within`; `None` on timeout. Pings are answered by tungstenite while
    /// we poll, and are not events; nor are presence diffs, set aside in `presence_diffs`.
    pub async fn next_event(&mut self, within: Duration) -> Option<Event> {
        self.next_event_or_diff(within, false).await
    }

    /// Like [`Client::next_event`], but a presence diff is an event too: set aside in
    /// `presence_diffs` and returned as `Event::Frame`.
    pub async fn next_event_or_diff(&mut self, within: Duration, diffs: bool) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match next {
                None => Event::Ended("stream ended".into()),
                Some(Err(e)) => Event::Ended(e.to_string()),
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("hub sent non-JSON text {text:?}: {e}"));
                    if frame["type"] == "presence_diff" {
                        self.presence_diffs.push(frame.clone());
                        if !diffs {
                            continue;
                        }
                    }
                    Event::Frame(frame)
                }
                Some(Ok(Message::Binary(bytes))) => {
                    panic!(
                        "hub sent a binary frame ({} bytes): the protocol is JSON text",
                        bytes.len()
                    )
                }
                Some(Ok(Message::Close(frame))) => {
                    self.close_reason = frame.as_ref().map(|f| f.reason.as_str().to_owned());
                    Event::Close(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            });
        }
    }

    /// The next JSON frame; panics on timeout, close or binary.
    pub async fn recv_json(&mut self) -> Value {
        self.recv_json_within(RECV_TIMEOUT).await
    }

    /// The next text frame, unparsed: for floods, where parsing every large frame as JSON in a
    /// debug build would make the test client itself the slow consumer.
    pub async fn recv_text_within(&mut self, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await;
            match next {
                Ok(Some(Ok(Message::Text(text)))) if text.contains(r#""type":"presence_diff""#) => {
                    continue;
                }
                Ok(Some(Ok(Message::Text(text)))) => return text.as_str().to_owned(),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => continue,
                other => panic!(
                    "client {}: expected a text frame within {within:?}, got {other:?}",
                    self.id
                ),
            }
        }
    }

    pub async fn recv_json_within(&mut self, within: Duration) -> Value {
        match self.next_event(within).await {
            Some(Event::Frame(frame)) => frame,
            other => panic!(
                "client {}: expected a frame within {within:?}, got {other:?}",
                self.id
            ),
        }
    }

    /// Exactly `n` chat frames (`message`/`broadcast`), each within RECV_TIMEOUT of the previous;
    /// any other frame type fails the test.
    pub async fn recv_chat(&mut self, n: usize) -> Vec<Value> {
        let mut frames = Vec::with_capacity(n);
        while frames.len() < n {
            match self.next_event(RECV_TIMEOUT).await {
                Some(Event::Frame(f)) if f["type"] == "message" || f["type"] == "broadcast" => {
                    frames.push(f)
                }
                other => panic!(
                    "client {}: expected chat frame {} of {n}, got {other:?}; so far: {frames:?}",
                    self.id,
                    frames.len() + 1
                ),
            }
        }
        frames
    }

    /// `n` chat frames, all within `within` in total (for deliveries that may legitimately wait,
    /// such as a bridge buffer flushed after Redis comes back).
    pub async fn recv_chat_within(&mut self, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::with_capacity(n);
        while frames.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Some(Event::Frame(f)) if f["type"] == "message" || f["type"] == "broadcast" => {
                    frames.push(f)
                }
                other => panic!(
                    "client {}: expected {n} chat frames within {within:?}, got {} then {other:?}; so far: {frames:?}",
                    self.id,
                    frames.len()
                ),
            }
        }
        frames
    }

    /// Read until the connection closes; returns the close code (None: closed without a close
    /// frame) and the frames that came before it. Panics if it is still open after `within`.
    pub async fn expect_close(&mut self, within: Duration) -> (Option<u16>, Vec<Value>) {
        let deadline = Instant::now() + within;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Some(Event::Frame(f)) => before.push(f),
                Some(Event::Close(code)) => return (code, before),
                Some(Event::Ended(reason)) => {
                    eprintln!(
                        "client {}: connection ended without a close frame: {reason}",
                        self.id
                    );
                    return (None, before);
                }
                None => panic!(
                    "client {}: connection still open {within:?} later; frames meanwhile: {}",
                    self.id,
                    before.len()
                ),
            }
        }
    }
}

/// The `content` fields of `frames` sent by `from`, in arrival order.
pub fn contents_from(frames: &[Value], from: &str) -> Vec<String> {
    frames
        .iter()
        .filter(|f| f["from"] == from)
        .map(|f| f["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `prefix-0`, `prefix-1`, … : numbered contents make order and exactly-once checkable.
pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    numbered_range(prefix, 0..n)
}

/// `prefix-i` for every `i` in `range`.
pub fn numbered_range(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}-{i}")).collect()
}
