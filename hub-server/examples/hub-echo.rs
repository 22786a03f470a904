//! `hub-echo`: a hub whose sessions write back every message they read, for the Autobahn
//! WebSocket conformance cases (`scripts/autobahn.sh`). It is the real hub — `hub_server::run`
//! with its accept loop, `/ws` handshake, session read loop and writer — with one difference:
//! `Settings::echo`, which makes a session skip the chat protocol (no welcome, no rooms) and hand
//! each text or binary message it reads back to its writer as it is.
//!
//! Settings come from the environment as for `hub-server` (`HUB_LISTEN`, …), except that it is
//! always standalone, allows every Origin, and takes messages up to 32 MiB (Autobahn's section 9
//! sends 16 MiB ones) unless `HUB_MAX_MESSAGE_BYTES` says otherwise.

use anyhow::Context;
use hub_server::config::Settings;

const LARGEST_CASE: usize = 32 * 1024 * 1024;

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
    service_kit::log::init(settings.log_format);
    let listener = hub_server::listen(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    hub_server::run(listener, settings, service_kit::signal::stop()).await?;
    Ok(())
}
