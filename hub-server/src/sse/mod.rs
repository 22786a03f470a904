//! The SSE fallback (DESIGN 18) for networks that break WebSocket: `POST /sse/session` makes a
//! one-time session id, `GET /sse?session=<id>` runs the session and streams its frames,
//! `POST /sse/send` carries the client's frames to it. The session is the WebSocket one
//! ([`crate::session::run`]) over [`socket::SseSocket`]: same admission, limits, auth, rate limits,
//! slow-consumer rule, `max_connections` slots and close reasons; its metrics say `transport="sse"`.
//!
//! Every route checks the `Origin` as `/ws` does (a foreign one gets 403) and answers a page of an
//! allowed origin with CORS headers, so a page served elsewhere (hub-client-web) can use it.

mod open;
pub mod registry;
mod reply;
mod send;
pub mod socket;

use std::sync::Arc;

use http::{HeaderMap, header};
use http_accept::PeerAddr;
use warp::Filter;
use warp::reply::Response;

use crate::slots::Handshake;
use crate::state::AppState;
use registry::Registry;

/// Ids made and not opened yet, at most (each a few hundred bytes; they expire after
/// `sse_session_ttl`, and a client opens its id at once).
const MAX_UNCLAIMED: usize = 10_000;

/// `POST /sse/session`, `GET /sse`, `POST /sse/send` and their CORS preflights.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let registry = Registry::new(
        state.settings.sse_session_ttl,
        MAX_UNCLAIMED.min(state.settings.max_connections),
    );
    // A body holds frames of up to `max_message_bytes` each, escaped in JSON at worst.
    let body_limit = u64::try_from(state.settings.max_message_bytes)
        .unwrap_or(u64::MAX)
        .saturating_mul(4)
        .saturating_add(4096);
    let with = {
        let (state, registry) = (state.clone(), registry.clone());
        warp::any().map(move || (state.clone(), registry.clone()))
    };
    let make = warp::path!("sse" / "session")
        .and(warp::post())
        .and(with.clone())
        .and(warp::header::headers_cloned())
        .and(warp::body::content_length_limit(body_limit))
        .and(warp::body::bytes())
        .map(|(state, registry), headers: HeaderMap, body| {
            open::make(&state, &registry, &headers, &body)
        });
    let stream = warp::path!("sse")
        .and(warp::get())
        .and(with.clone())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::ext::optional::<PeerAddr>())
        .and(warp::ext::optional::<Arc<Handshake>>())
        .map(
            |(state, registry), headers: HeaderMap, query: String, peer, admitted| {
                open::stream(state, &registry, &headers, &query, peer, admitted)
            },
        );
    let send = warp::path!("sse" / "send")
        .and(warp::post())
        .and(with)
        .and(warp::header::headers_cloned())
        .and(warp::body::content_length_limit(body_limit))
        .and(warp::body::bytes())
        .then(|(state, registry), headers: HeaderMap, body| async move {
            send::send(&state, &registry, &headers, &body).await
        });
    let preflight = warp::options()
        .and(warp::path("sse"))
        .and(warp::header::headers_cloned())
        .map(move |headers: HeaderMap| reply::preflight(&state, &headers));
    make.or(stream)
        .unify()
        .or(send)
        .unify()
        .or(preflight)
        .unify()
}

/// The request's `Origin`, when it has one.
fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}
