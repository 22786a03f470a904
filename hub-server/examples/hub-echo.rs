//! `hub-echo`: a hub whose sessions write back every message they read, for the Autobahn
//! WebSocket conformance cases (`scripts/autobahn.sh`). It is the real hub — `hub_server::run`
//! with its accept loop, `/ws` handshake, session read loop and writer — with one difference:
//! `Settings::echo`, which makes a session skip the chat protocol (no welcome, no rooms) and hand
//! each text or binary message it reads back to its writer as it is.
//!
//! Settings come from the environment as for `hub-server` (`HUB_LISTEN`, …), except that it is
//! always standalone, allows every Origin, takes messages up to 32 MiB (Autobahn's section 9
//! sends 16 MiB ones) unless `HUB_MAX_MESSAGE_BYTES` says otherwise, and compresses every message
//! it echoes when the client agreed to permessage-deflate (`compression_min_bytes = 0`): the
//! conformance client (kosoku 0.1.0) fails its 16- and 64-byte cases of sections 12 and 13 when
//! a short message comes back uncompressed, which RFC 7692 allows and the hub does by default
//! (`tests/it/compression.rs` checks that rule). It sends no pings either (unless
//! `HUB_PING_INTERVAL` is set): kosoku ends a case of section 12 as failed when a ping comes in the
//! middle of its 1000 echoes, which on a busy machine take longer than the hub's 20 s interval.

use std::time::Duration;

use anyhow::Context;
use hub_server::config::Settings;

const LARGEST_CASE: usize = 32 * 1024 * 1024;
/// Longer than any case runs (Autobahn gives each at most 480 s).
const NO_PINGS: Duration = Duration::from_secs(3600);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings = Settings::load(None)?;
    settings.echo = true;
    settings.redis_url = None;
    settings.allowed_origins = Some("*".into());
    if std::env::var_os("HUB_MAX_MESSAGE_BYTES").is_none() {
        settings.max_message_bytes = LARGEST_CASE;
    }
    settings.send_queue_bytes = settings.send_queue_bytes.max(settings.max_message_bytes);
    settings.compression_min_bytes = 0;
    if std::env::var_os("HUB_PING_INTERVAL").is_none() {
        settings.ping_interval = NO_PINGS;
        settings.pong_timeout = settings.pong_timeout.max(2 * NO_PINGS);
    }
    service_kit::log::init(settings.log_format);
    let listener = hub_server::listen(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    hub_server::run(listener, settings, service_kit::signal::stop()).await?;
    Ok(())
}
