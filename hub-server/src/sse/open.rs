//! `POST /sse/session` (an id for a session that starts with the body's token) and `GET /sse`
//! (the session itself, over its [`SseSocket`], as long as the response lasts).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_accept::PeerAddr;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use warp::reply::{Reply, Response};

use super::registry::{Registry, SessionId};
use super::reply::{self, cors, error, foreign_origin};
use super::{origin, socket};
use crate::auth::bearer_token;
use crate::session;
use crate::slots::Handshake;
use crate::state::AppState;
use crate::transport::Transport;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSession {
    /// What an `auth` frame would carry; none: the session waits for one (auth off: not needed).
    #[serde(default)]
    token: Option<SecretString>,
}

/// `POST /sse/session` `{"token"}` → `{"session":"<id>"}`. An empty body is `{}`; the token may
/// come as `Authorization: Bearer` instead, as on `/ws`.
pub fn make(state: &AppState, registry: &Registry, headers: &HeaderMap, body: &Bytes) -> Response {
    let origin = origin(headers);
    if !state.origins.allows(origin) {
        return foreign_origin(origin);
    }
    if state.shutdown.has_begun() {
        return cors(reply::shutting_down(), headers);
    }
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let request: NewSession = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(err) => {
            let message = format!("expected {{\"token\": string or null}}: {err}");
            return cors(
                error(StatusCode::BAD_REQUEST, "bad_request", &message),
                headers,
            );
        }
    };
    let token = request
        .token
        .filter(|t| !t.expose_secret().is_empty())
        .or_else(|| bearer_token(headers).map(SecretString::from));
    let response = match registry.make(token, Instant::now()) {
        Ok(id) => warp::reply::json(&serde_json::json!({ "session": id.as_str() })).into_response(),
        Err(_) => {
            tracing::warn!("sse session refused: too many ids waiting to be opened");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                "too many SSE sessions waiting to be opened; retry later",
            )
        }
    };
    let mut response = cors(response, headers);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /sse?session=<id>`: claims the id (once) and a `max_connections` slot, runs the session
/// in the hub's session tracker, and answers with its event stream.
pub fn stream(
    state: AppState,
    registry: &Registry,
    headers: &HeaderMap,
    query: &str,
    peer: Option<PeerAddr>,
    admitted: Option<Arc<Handshake>>,
) -> Response {
    let origin = origin(headers);
    if !state.origins.allows(origin) {
        return foreign_origin(origin);
    }
    if state.shutdown.has_begun() {
        return cors(reply::shutting_down(), headers);
    }
    let Some(id) = session_param(query).and_then(SessionId::parse) else {
        let message = "expected ?session=<the id POST /sse/session gave>";
        return cors(
            error(StatusCode::BAD_REQUEST, "bad_request", message),
            headers,
        );
    };
    // The slot first: a full hub leaves the id unclaimed (a retry within its lifetime may work).
    let Some(slot) = admitted.and_then(|handshake| handshake.upgrade()) else {
        tracing::warn!(limit = state.slots.max(), "sse refused: hub full");
        let message = "hub at its connection limit";
        return cors(
            error(StatusCode::SERVICE_UNAVAILABLE, "hub_full", message),
            headers,
        );
    };
    let (socket, inbox, body) = socket::pair();
    let Some((token, running)) = registry.claim(&id, inbox, Instant::now()) else {
        let message = "unknown, expired or already used SSE session id: POST /sse/session again";
        return cors(
            error(StatusCode::NOT_FOUND, "unknown_session", message),
            headers,
        );
    };
    let ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |PeerAddr(a)| a.ip());
    // The stream's request is the one that starts the session: with `auth_mode = proxy` its
    // cookies (and the other `proxy_headers`) go to the connect proxy, as an upgrade's do.
    let credentials = session::Credentials {
        bearer: token.map(|t| t.expose_secret().to_owned()),
        hook_headers: state.proxies.upgrade_headers(headers),
    };
    let sessions = state.sessions.clone();
    sessions.spawn(async move {
        // Both held until the session ends: its `max_connections` slot, its id for /sse/send.
        let (_slot, _running) = (slot, running);
        session::run(socket, state, ip, credentials, None, Transport::Sse).await;
    });
    let mut response = warp::reply::stream(body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies that buffer responses (nginx) would hold the events back.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // The connection's one upgrade went to this session: a later request on it could not have
    // another, so it is not kept alive past the stream.
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    cors(response, headers)
}

/// The `session` parameter of a query string (ids are hex: nothing to percent-decode).
fn session_param(query: &str) -> Option<&str> {
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("session="))
}
