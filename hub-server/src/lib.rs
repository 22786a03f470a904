//! hub-server: a WebSocket hub that delivers room messages locally and bridges to other hubs
//! through Redis pub/sub.
//!
//! Follow a message: [`upgrade`] accepts the socket → [`session`] reads a frame and parses it with
//! [`protocol`] → [`hub`] queues it for local room members → [`writer`] writes it to their sockets;
//! the session also hands it to [`bridge`]'s publisher → Redis → the subscriber of every other hub
//! → that hub's [`hub`] → its writers.

pub mod ack;
pub mod api;
pub mod auth;
pub mod bridge;
pub mod clock;
pub mod config;
pub mod data_frames;
pub mod deflate;
pub mod error;
pub mod health;
pub mod histogram;
pub mod history;
pub mod hooks;
pub mod hub;
pub mod join;
pub mod listen;
pub mod metrics;
pub mod namespace;
pub mod origin;
pub mod outbox;
pub mod presence;
pub mod protocol;
pub mod proxies;
pub mod publish;
pub mod rate_limit;
pub mod redis_link;
pub mod session;
pub mod shutdown;
pub mod slots;
pub mod sse;
pub mod start_error;
pub mod state;
pub mod transport;
pub mod upgrade;
pub mod webhooks;
pub mod write_buffer;
pub mod writer;

pub use listen::listen;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use warp::Filter;

use crate::bridge::Bridge;
use crate::config::Settings;
use crate::hub::Hub;
use crate::origin::AllowedOrigins;
use crate::redis_link::Redis;
use crate::shutdown::ShutdownTrigger;
use crate::start_error::StartError;
use crate::state::AppState;

/// Serves `listener` until `stop` resolves, then shuts down within `shutdown_grace`: stop
/// accepting, close every client with 1001, flush the bridge, return.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let settings = Arc::new(settings);
    let auth = auth::Auth::from_settings(&settings)?;
    let redis = Redis::from_settings(&settings)?;
    let history = history::History::from_settings(&settings, redis.as_ref());
    let (trigger, shutdown) = shutdown::channel();
    let hub = Hub::new(settings.name.clone(), settings.max_rooms_per_client);
    let bridge = Bridge::start(
        &settings,
        redis.as_ref(),
        &history,
        hub.clone(),
        shutdown.clone(),
    );
    match &bridge {
        Bridge::Disabled => {
            tracing::info!(
                "no REDIS_URL or REDIS_CLUSTER_NODES: running standalone, in-process delivery only"
            )
        }
        Bridge::Redis(_) => {
            tracing::info!(prefix = %settings.redis_prefix, "bridging to other hubs through redis")
        }
    }
    let users = auth::UserSlots::new(settings.max_connections_per_user);
    let (webhooks, webhooks_running) = webhooks::start(
        &settings,
        redis.as_ref(),
        hub.instance_id().to_string(),
        shutdown.clone(),
    );
    let webhook_counters = match &webhooks {
        webhooks::Webhooks::On { counters, .. } => Some(counters.clone()),
        webhooks::Webhooks::Off => None,
    };
    let metrics = Arc::new(
        metrics::Metrics::new(hub.clone(), bridge.clone(), users.clone())
            .with_webhooks(webhook_counters),
    );
    let presence = presence::Presence::new(
        hub.clone(),
        bridge.clone(),
        redis.clone(),
        &settings.redis_prefix,
    );
    let presence_timing = presence::writer::Timing {
        leave_delay: settings.presence_leave_delay,
        events_max: settings.presence_events_max,
        heartbeat: settings.hub_heartbeat,
        hub_timeout: settings.hub_timeout,
    };
    let presence_writer = tokio::spawn(presence::writer::run(
        presence.clone(),
        presence_timing,
        webhooks.clone(),
        shutdown.clone(),
    ));
    let slots = slots::Slots::new(settings.max_connections, settings.max_handshakes);
    let proxies = proxies::Proxies::new(&settings, metrics.clone());
    let state = AppState::new(state::Parts {
        hub: hub.clone(),
        bridge: bridge.clone(),
        redis,
        settings: settings.clone(),
        origins: Arc::new(AllowedOrigins::from_setting(
            settings.allowed_origins.as_deref(),
        )),
        shutdown: shutdown.clone(),
        sessions: TaskTracker::new(),
        slots: slots.clone(),
        auth,
        history,
        users,
        presence,
        metrics,
        proxies,
        webhooks,
    });
    let sessions = state.sessions.clone();
    let api_server = api::start(&state)?;
    let routes = upgrade::route(state.clone())
        .or(sse::routes(state.clone()))
        .unify()
        .or(health::routes(state))
        .unify()
        .with(warp::log("hub_server::http"));

    tracing::info!(
        addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        hub = %hub.name(),
        instance_id = %hub.instance_id(),
        auth_mode = ?settings.auth_mode,
        "hub listening"
    );
    let accept_stop = shutdown.clone();
    let server = tokio::spawn(http_accept::serve(
        listener,
        routes,
        settings.request_limits(),
        Arc::new(slots),
        async move { accept_stop.wait().await },
    ));

    stop.await;
    // One deadline for the whole shutdown: the accept loop gets what the drain left of the grace
    // period (its connections are already told to close), so the process exits within it.
    let deadline = tokio::time::Instant::now() + settings.shutdown_grace;
    drain(&trigger, &hub, &sessions, &bridge, deadline).await;
    // It took this hub's users out of presence when shutdown began; bounded like the rest.
    let _ = tokio::time::timeout_at(deadline, presence_writer).await;
    // Sessions and presence emitted their last events (client_disconnected, member_removed):
    // into the queue with them before the process ends.
    if let Some(running) = webhooks_running {
        running.stop(deadline).await;
    }
    let _ = tokio::time::timeout_at(deadline, server).await;
    if let Some(api_server) = api_server {
        let _ = tokio::time::timeout_at(deadline, api_server).await;
    }
    Ok(())
}

/// The shutdown sequence; every step is bounded by what is left until `deadline`.
async fn drain(
    trigger: &ShutdownTrigger,
    hub: &Hub,
    sessions: &TaskTracker,
    bridge: &Bridge,
    deadline: tokio::time::Instant,
) {
    tracing::info!(connections = hub.connections(), "shutting down");
    // Every session races its reads against this and closes its client with 1001.
    trigger.begin();
    sessions.close();
    if tokio::time::timeout_at(deadline, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = sessions.len(),
            "sessions still open at the end of the grace period"
        );
    }
    bridge
        .finish(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await;
    tracing::info!("shut down");
}
