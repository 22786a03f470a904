//! One benchmark connection in either protocol: connect, handshake, join a room, and the frames the
//! hot paths send and recognise. Our hub speaks JSON over `/ws`; the peer speaks Socket.IO (Engine.IO v4).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::eio::{self, EnginePacket, SocketPacket};
use crate::error::BenchError;
use crate::wire::{self, InflateCache, Wire};

pub type Ws = WebSocketStream<Wire>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// realtime-hub's JSON frames.
    Hub,
    /// Socket.IO 4 over a websocket-only Engine.IO v4 session.
    #[value(name = "socketio")]
    SocketIo,
}

/// Where and how fast to open connections: the flags every mode that connects shares.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectOpts {
    /// WebSocket URLs of the hubs; connections go round-robin over them (repeat the flag or
    /// separate with commas).
    #[arg(
        long = "url",
        value_name = "WS_URL",
        required = true,
        value_delimiter = ','
    )]
    pub urls: Vec<String>,
    /// Connections being opened at once (so the accept queues are not flooded).
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Longest a connect + handshake (+ join) may take.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Offer permessage-deflate (as Chrome does) and inflate what arrives compressed; a server
    /// that does not agree fails the connection.
    #[arg(long)]
    pub deflate: bool,
    /// What the connections opened with these options inflated, shared (see [`wire`]).
    #[arg(skip)]
    pub inflated: Arc<InflateCache>,
}

impl ConnectOpts {
    /// The cache to inflate with when `--deflate` was given.
    pub fn deflate(&self) -> Option<Arc<InflateCache>> {
        self.deflate.then(|| self.inflated.clone())
    }
}

impl Protocol {
    pub fn join_frame(self, room: &str) -> String {
        match self {
            Protocol::Hub => serde_json::json!({"type": "join", "room": room}).to_string(),
            Protocol::SocketIo => eio::event("join", &serde_json::Value::from(room).to_string()),
        }
    }

    /// A chat message to `room`. `content` must need no JSON escaping (the payload alphabet does not).
    pub fn message_frame(self, room: &str, content: &str) -> String {
        match self {
            Protocol::Hub => {
                format!(r#"{{"type":"message","room":"{room}","content":"{content}"}}"#)
            }
            Protocol::SocketIo => eio::event(
                "message",
                &format!(r#"{{"room":"{room}","content":"{content}"}}"#),
            ),
        }
    }

    /// The reply a frame needs before anything else, if any (Engine.IO heartbeats are the client's job;
    /// WebSocket pings are answered by tungstenite itself).
    pub fn reply_to(self, frame: &str) -> Option<String> {
        match self {
            Protocol::Hub => None,
            Protocol::SocketIo => match eio::parse(frame) {
                Ok(EnginePacket::Ping(data)) => Some(format!("{}{data}", eio::PONG)),
                _ => None,
            },
        }
    }

    /// Whether a frame is the hub telling us something went wrong (rate limit, bad frame, …).
    pub fn is_error(self, frame: &str) -> bool {
        match self {
            Protocol::Hub => frame.contains(r#""type":"error""#),
            Protocol::SocketIo => matches!(
                eio::parse(frame),
                Ok(EnginePacket::Message(SocketPacket::ConnectError { .. }))
                    | Ok(EnginePacket::Close)
            ),
        }
    }
}

/// Open a connection, finish the protocol handshake and, if `room` is given, join it and wait for the ack.
pub async fn connect(
    proto: Protocol,
    url: &str,
    room: Option<&str>,
    timeout: Duration,
    deflate: Option<Arc<InflateCache>>,
) -> Result<Ws, BenchError> {
    tokio::time::timeout(timeout, connect_inner(proto, url, room, deflate))
        .await
        .map_err(|_| BenchError::Timeout {
            url: url.to_owned(),
            what: "connect + handshake + join",
        })?
}

async fn connect_inner(
    proto: Protocol,
    url: &str,
    room: Option<&str>,
    deflate: Option<Arc<InflateCache>>,
) -> Result<Ws, BenchError> {
    let offered = deflate.is_some();
    let (mut ws, _) = wire::connect(url, socket_config(), deflate)
        .await
        .map_err(|e| BenchError::Connect {
            url: url.to_owned(),
            source: Box::new(e),
        })?;
    if offered && !ws.get_ref().deflate() {
        return Err(BenchError::Handshake {
            url: url.to_owned(),
            reason: "permessage-deflate offered, not agreed".into(),
        });
    }
    match proto {
        Protocol::Hub => {
            wait_for(&mut ws, proto, url, |f| f.contains(r#""type":"welcome""#)).await?;
        }
        Protocol::SocketIo => {
            wait_for(&mut ws, proto, url, |f| {
                matches!(eio::parse(f), Ok(EnginePacket::Open(_)))
            })
            .await?;
            ws.send(Message::text(eio::CONNECT_DEFAULT)).await?;
            wait_for(&mut ws, proto, url, |f| {
                matches!(
                    eio::parse(f),
                    Ok(EnginePacket::Message(SocketPacket::Connect {
                        namespace: "/",
                        ..
                    }))
                )
            })
            .await?;
        }
    }
    if let Some(room) = room {
        ws.send(Message::text(proto.join_frame(room))).await?;
        wait_for(&mut ws, proto, url, |f| is_join_ack(proto, f, room)).await?;
    }
    Ok(ws)
}

/// Opens `count` connections (joined to `room` when given), spread round-robin over the hubs from
/// `offset` on (so a second batch splits evenly too), at most `connect_concurrency` at a time.
pub async fn open_many(
    proto: Protocol,
    opts: &ConnectOpts,
    room: Option<&str>,
    count: usize,
    offset: usize,
) -> Vec<Result<Ws, BenchError>> {
    let permits = Arc::new(Semaphore::new(opts.connect_concurrency.max(1)));
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let url = opts.urls[(i + offset) % opts.urls.len()].clone();
            let room = room.map(str::to_owned);
            let permits = permits.clone();
            let (timeout, deflate) = (opts.connect_timeout, opts.deflate());
            tokio::spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .expect("semaphore never closed");
                connect(proto, &url, room.as_deref(), timeout, deflate).await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    for t in tasks {
        out.push(
            t.await
                .unwrap_or_else(|e| Err(BenchError::Task(format!("connect task: {e}")))),
        );
    }
    out
}

/// tungstenite zero-fills up to `read_buffer_size` before every read (128 KiB by default): with
/// thousands of sockets that memset was the tool's top cost and 128 KiB resident per connection.
/// Deliveries are a few hundred bytes, so a small buffer loses nothing.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

fn is_join_ack(proto: Protocol, frame: &str, room: &str) -> bool {
    match proto {
        Protocol::Hub => {
            frame.contains(r#""type":"joined""#) && frame.contains(&format!(r#""room":"{room}""#))
        }
        Protocol::SocketIo => matches!(
            eio::parse(frame),
            Ok(EnginePacket::Message(SocketPacket::Event { name: "joined", args, .. }))
                if args.trim_matches('"') == room
        ),
    }
}

/// Read frames until one matches, answering heartbeats and failing on errors or close.
async fn wait_for(
    ws: &mut Ws,
    proto: Protocol,
    url: &str,
    done: impl Fn(&str) -> bool,
) -> Result<(), BenchError> {
    let fail = |reason: String| BenchError::Handshake {
        url: url.to_owned(),
        reason,
    };
    while let Some(msg) = ws.next().await {
        match msg? {
            Message::Text(t) => {
                let t = t.as_str();
                if done(t) {
                    return Ok(());
                }
                if let Some(reply) = proto.reply_to(t) {
                    ws.send(Message::text(reply)).await?;
                } else if proto.is_error(t) {
                    return Err(fail(t.chars().take(200).collect()));
                }
            }
            Message::Close(frame) => return Err(fail(format!("closed: {frame:?}"))),
            _ => {}
        }
    }
    Err(fail("connection ended".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_of_both_protocols() {
        assert_eq!(
            Protocol::Hub.join_frame("bench"),
            r#"{"room":"bench","type":"join"}"#
        );
        assert_eq!(
            Protocol::SocketIo.join_frame("bench"),
            r#"42["join","bench"]"#
        );
        assert_eq!(
            Protocol::Hub.message_frame("bench", "1.2.3"),
            r#"{"type":"message","room":"bench","content":"1.2.3"}"#
        );
        assert_eq!(
            Protocol::SocketIo.message_frame("bench", "1.2.3"),
            r#"42["message",{"room":"bench","content":"1.2.3"}]"#
        );
        let parsed: serde_json::Value =
            serde_json::from_str(&Protocol::Hub.message_frame("bench", "1.2.3"))
                .expect("valid JSON");
        assert_eq!(parsed["content"], "1.2.3");
    }

    #[test]
    fn join_acks_and_heartbeats() {
        assert!(is_join_ack(
            Protocol::Hub,
            r#"{"type":"joined","room":"bench"}"#,
            "bench"
        ));
        assert!(!is_join_ack(
            Protocol::Hub,
            r#"{"type":"joined","room":"general"}"#,
            "bench"
        ));
        assert!(is_join_ack(
            Protocol::SocketIo,
            r#"42["joined","bench"]"#,
            "bench"
        ));
        assert!(!is_join_ack(
            Protocol::SocketIo,
            r#"42["joined","other"]"#,
            "bench"
        ));
        assert_eq!(Protocol::SocketIo.reply_to("2"), Some("3".to_owned()));
        assert_eq!(Protocol::SocketIo.reply_to(r#"42["message",{}]"#), None);
        assert_eq!(Protocol::Hub.reply_to("2"), None);
        assert!(Protocol::Hub.is_error(r#"{"type":"error","code":"rate_limited","message":"x"}"#));
        assert!(Protocol::SocketIo.is_error(r#"44{"message":"no"}"#));
    }
}
