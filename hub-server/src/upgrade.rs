//! `GET /ws`: checks the Origin and the connection limit, answers the WebSocket handshake (with
//! permessage-deflate when the client offers it and `compression` is on) and hands the upgraded
//! socket to a session.
//!
//! The handshake is done here rather than by `warp::ws()` because warp's `Message::text` takes a
//! `String`, which would copy every frame once per recipient; tungstenite's `Utf8Bytes` lets every
//! recipient share the bytes of a frame serialized once.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::Either;
use http::{HeaderMap, StatusCode, header};
use http_accept::PeerAddr;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use warp::Filter;
use warp::reply::{Reply, Response};

use crate::auth::bearer_token;
use crate::data_frames::DataFrames;
use crate::deflate::{self, Pools, Rsv1Reader};
use crate::session;
use crate::slots::Handshake;
use crate::state::AppState;
use crate::transport::Transport;
use crate::write_buffer::WriteBuffer;

pub fn route(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    // The hub's compressors and inflaters, shared by all its connections (none without
    // `compression`). Compression runs on the runtime's worker threads, one message at a time
    // each: that many of each kind are kept.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pools = state
        .settings
        .compression
        .then(|| Arc::new(Pools::new(threads)));
    warp::path!("ws")
        .and(warp::get())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::ext::optional::<Arc<Handshake>>())
        .map(
            move |headers: HeaderMap,
                  on_upgrade: Option<OnUpgrade>,
                  remote: Option<PeerAddr>,
                  admitted: Option<Arc<Handshake>>| {
                handshake(
                    state.clone(),
                    pools.clone(),
                    &headers,
                    on_upgrade,
                    remote,
                    admitted,
                )
            },
        )
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    warp::reply::with_status(why, status).into_response()
}

fn handshake(
    state: AppState,
    pools: Option<Arc<Pools>>,
    headers: &HeaderMap,
    on_upgrade: Option<OnUpgrade>,
    remote: Option<PeerAddr>,
    admitted: Option<Arc<Handshake>>,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if !state.origins.allows(origin) {
        tracing::info!(
            origin = origin.unwrap_or_default(),
            "websocket refused: origin not allowed"
        );
        return refuse(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return refuse(StatusCode::BAD_REQUEST, "expected a websocket upgrade\n");
    }
    // RFC 6455 4.4: a version we do not speak is 426 naming the one we do; 4.2.1: a handshake
    // without a version is not one (400), told the version all the same.
    match headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
    {
        Some(b"13") => {}
        Some(_) => return refuse_version(StatusCode::UPGRADE_REQUIRED),
        None => return refuse_version(StatusCode::BAD_REQUEST),
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    let (Some(key), None) = (keys.next(), keys.next()) else {
        return refuse(StatusCode::BAD_REQUEST, "expected one Sec-WebSocket-Key\n");
    };
    if !is_key(key.as_bytes()) {
        return refuse(StatusCode::BAD_REQUEST, "bad Sec-WebSocket-Key\n");
    }
    let Some(on_upgrade) = on_upgrade else {
        return refuse(StatusCode::BAD_REQUEST, "expected a websocket upgrade\n");
    };
    if state.shutdown.has_begun() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "hub shutting down\n");
    }
    // Every connection of this listener was admitted (`http_accept` puts its handshake in the
    // request); a session needs a slot of `max_connections` besides.
    let Some(slot) = admitted.and_then(|handshake| handshake.upgrade()) else {
        tracing::warn!(limit = state.slots.max(), "websocket refused: hub full");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "hub at its connection limit\n",
        );
    };

    let bearer = bearer_token(headers).map(str::to_owned);
    // What the connect proxy may see of the request (`proxy_headers`; none in other modes).
    let hook_headers = state.proxies.upgrade_headers(headers);
    let accept = derive_accept_key(key.as_bytes());
    let ip = remote.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |PeerAddr(a)| a.ip());
    let agreed = pools
        .is_some()
        .then(|| deflate::negotiate(headers))
        .flatten();
    let config = socket_config(state.settings.max_message_bytes, agreed.is_some());
    // The answer goes in the 101; the window and the pools go with the connection.
    let (window_bits, extensions) = agreed.map(|a| (a.window_bits, a.response)).unzip();
    let agreed = window_bits.zip(pools);
    let credentials = session::Credentials {
        bearer,
        hook_headers,
    };
    let sessions = state.sessions.clone();
    let session = on_upgrade
        .then(move |upgraded| match upgraded {
            Ok(upgraded) => Either::Left(open(upgraded, state, ip, credentials, agreed, config)),
            Err(err) => {
                tracing::debug!(%err, "websocket upgrade failed");
                Either::Right(std::future::ready(()))
            }
        })
        // Held until the session ends (or the upgrade fails): the slot is given back on drop.
        .map(move |()| drop(slot));
    sessions.spawn(session);

    let mut response = Response::default();
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("upgrade"),
    );
    h.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    if let Ok(accept) = header::HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(Ok(extensions)) = extensions.map(header::HeaderValue::try_from) {
        h.insert(header::SEC_WEBSOCKET_EXTENSIONS, extensions);
    }
    response
}

/// The session over an upgraded connection: the socket's layers (its write buffer, the RSV1
/// watch with compression, tungstenite, the data frames' way past it), then the session. Chained
/// with combinators rather than written as an `async` block, which would keep room for what it
/// captured (the state, the credentials, the socket) beside the session for the connection's
/// life (rust-lang/rust#62958): here each step's inputs move into the next.
fn open(
    upgraded: Upgraded,
    state: AppState,
    ip: IpAddr,
    credentials: session::Credentials,
    agreed: Option<(u8, Arc<Pools>)>,
    config: WebSocketConfig,
) -> impl Future<Output = ()> + Send + 'static {
    let io = WriteBuffer::new(TokioIo::new(upgraded));
    let (io, deflate) = match agreed {
        Some((window_bits, pools)) => {
            let (io, kinds) = Rsv1Reader::deflate(io);
            let connection = deflate::Connection {
                pools,
                window_bits,
                min_bytes: state.settings.compression_min_bytes,
                kinds,
            };
            (io, Some(connection))
        }
        None => (Rsv1Reader::plain(io), None),
    };
    WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).then(move |socket| {
        let socket = DataFrames::new(socket);
        session::run(socket, state, ip, credentials, deflate, Transport::Ws)
    })
}

fn refuse_version(status: StatusCode) -> Response {
    let mut response = refuse(status, "websocket version 13 only\n");
    response.headers_mut().insert(
        header::SEC_WEBSOCKET_VERSION,
        header::HeaderValue::from_static("13"),
    );
    response
}

/// RFC 6455 4.1: the key is 16 bytes in base64, which is 22 characters of the base64 alphabet
/// and `==`.
fn is_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// tungstenite's read buffer: a message larger than this grows it while it is read.
const READ_BUFFER: usize = 512;

fn socket_config(max_message_bytes: usize, deflate: bool) -> WebSocketConfig {
    // With compression tungstenite's limits apply to compressed messages, and an incompressible
    // message comes out of deflate a little longer than it went in (zlib: 5 bytes per stored
    // block, +0.03 % and 13 bytes at worst): room is left for that, and for compressors worse
    // than zlib. What a message inflates to is held to `max_message_bytes` by the session, as is
    // an uncompressed message on such a connection (`deflate::Inbound`).
    let limit = match deflate {
        true => max_message_bytes.saturating_add(max_message_bytes / 64 + 64),
        false => max_message_bytes,
    };
    // Small read buffer: idle connections are the common case and each costs its buffer, and a
    // client sends little (a subscriber nothing but pongs). No write buffer in tungstenite: it
    // would keep the capacity of the largest burst for good; it hands each control frame to the
    // socket's `WriteBuffer` (where `DataFrames` puts the data frames), which gathers a batch
    // for one write() and frees itself once written.
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit))
}

#[cfg(test)]
mod tests {
    use super::is_key;

    #[test]
    fn a_key_is_sixteen_bytes_in_base64() {
        assert!(is_key(b"dGhlIHNhbXBsZSBub25jZQ=="), "RFC 6455's example");
        for bad in [
            &b""[..],
            b"dGhlIHNhbXBsZSBub25jZQ",
            b"dGhlIHNhbXBsZSBub25jZQ=",
            b"dGhlIHNhbXBsZSBub25jZQ===",
            b"dGhlIHNhbXBsZSBub25j*Q==",
            b"dGhlIHNhbXBsZSBub25jZQAA",
            b"not a key",
        ] {
            assert!(!is_key(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
