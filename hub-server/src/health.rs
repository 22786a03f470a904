//! `/health` (readiness) and `/health/live` (liveness); the `healthcheck` subcommand that asks
//! `/health` is `service_kit::healthcheck`.

use std::sync::atomic::Ordering;

use http::StatusCode;
use serde_json::json;
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
        "handshakes": state.slots.handshakes(),
        "rooms": hub.room_count(),
        "auth_mode": state.auth.mode(),
        "users": state.users.users(),
        "bridge": bridge,
        "messages": {
            "received": c.received.load(Ordering::Relaxed),
            "delivered": c.delivered.load(Ordering::Relaxed),
            "slow_consumers": state.metrics.slow_consumers(),
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
