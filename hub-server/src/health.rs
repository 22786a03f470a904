//! `/health` (readiness), `/health/live` (liveness) and the `healthcheck` subcommand that
//! container engines run instead of curl.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warp::Filter;
use warp::reply::{Reply, Response};

use crate::bridge::BridgeState;
use crate::state::AppState;

pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let live = warp::path!("health" / "live")
        .and(warp::get())
        .map(|| warp::reply::json(&json!({"status": "alive"})).into_response());
    let ready = warp::path!("health")
        .and(warp::get())
        .map(move || readiness(&state));
    live.or(ready).unify()
}

/// 200 only when the hub can do its whole job: the bridge is up, or there is none.
fn readiness(state: &AppState) -> Response {
    let bridge = state.bridge.state();
    let hub = &state.hub;
    let c = hub.counters();
    let body = json!({
        "status": if bridge == BridgeState::Down { "degraded" } else { "ok" },
        "hub": hub.name(),
        "instance_id": hub.instance_id(),
        "connections": hub.connections(),
        "rooms": hub.room_count(),
        "auth_mode": state.auth.mode(),
        "users": state.users.users(),
        "bridge": bridge,
        "messages": {
            "received": c.received.load(Ordering::Relaxed),
            "delivered": c.delivered.load(Ordering::Relaxed),
            "slow_consumers": c.slow_consumers.load(Ordering::Relaxed),
        },
        "redis": state.bridge.counters(),
    });
    let status = if bridge == BridgeState::Down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// Asks the hub listening on `listen` for `/health`; true on 200. The hub may listen on
/// 0.0.0.0, which is not an address to connect to: use loopback then.
pub async fn check(listen: SocketAddr) -> bool {
    let ip = if listen.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        listen.ip()
    };
    let target = SocketAddr::new(ip, listen.port());
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(target).await.ok()?;
        let request =
            format!("GET /health HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 16];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(3), attempt).await,
        Ok(Some(true))
    )
}
