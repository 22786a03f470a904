//! Connection metadata in Redis: `<prefix>conn:<client_id>` is a hash (hub, instance_id, ip,
//! connected_at, rooms) with a TTL. Written when clients come, change rooms or go, refreshed in one
//! pipeline per tick (not one round trip per client), deleted on disconnect; if this hub dies, the
//! TTL removes its entries. The state is derived from the hub each time, so nothing is lost when
//! Redis was away: after a reconnect everything is written again.

use std::collections::HashMap;
use std::time::Duration;

use crate::hub::{ClientId, Hub, PresenceEntry};

use super::Link;

/// Coalesces bursts of connects/joins into one pipeline.
const DEBOUNCE: Duration = Duration::from_millis(50);

pub(super) async fn run(link: Link, hub: Hub, interval: Duration, ttl: Duration) {
    let ttl_secs = ttl.as_secs().max(1);
    loop {
        let Some(mut conn) = link.connect("presence").await else {
            return;
        };
        let mut written: HashMap<ClientId, PresenceEntry> = HashMap::new();
        let mut tick = tokio::time::interval(interval);
        loop {
            let refresh = tokio::select! {
                _ = link.shutdown.wait() => {
                    // The sessions are closing: remove our entries rather than wait for the TTL.
                    let mut pipe = redis::pipe();
                    for id in written.keys() {
                        pipe.del(link.bridge.channels.presence_key(id));
                    }
                    let _ = tokio::time::timeout(link.timeout, pipe.query_async::<()>(&mut conn)).await;
                    return;
                }
                _ = tick.tick() => true,
                _ = hub.presence_changed() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    false
                }
            };
            let now: HashMap<ClientId, PresenceEntry> = hub
                .presence_snapshot()
                .into_iter()
                .map(|e| (e.client_id.clone(), e))
                .collect();
            let mut pipe = redis::pipe();
            for (id, entry) in &now {
                let key = link.bridge.channels.presence_key(id);
                if written.get(id) != Some(entry) {
                    pipe.del(&key)
                        .hset_multiple(
                            &key,
                            &[
                                ("hub", hub.name().to_owned()),
                                ("instance_id", hub.instance_id().to_string()),
                                ("user", entry.user.to_string()),
                                ("name", entry.name.as_deref().unwrap_or_default().to_owned()),
                                ("ip", entry.ip.to_string()),
                                ("connected_at", entry.connected_at.clone()),
                                ("rooms", entry.rooms.clone()),
                            ],
                        )
                        .expire(&key, ttl_secs as i64);
                } else if refresh {
                    pipe.expire(&key, ttl_secs as i64);
                }
            }
            for id in written.keys().filter(|id| !now.contains_key(*id)) {
                pipe.del(link.bridge.channels.presence_key(id));
            }
            if pipe.cmd_iter().next().is_none() {
                continue;
            }
            match tokio::time::timeout(link.timeout, pipe.query_async::<()>(&mut conn)).await {
                Ok(Ok(())) => written = now,
                Ok(Err(err)) => {
                    tracing::warn!(%err, "presence update failed; reconnecting");
                    break;
                }
                Err(_) => {
                    tracing::warn!("presence update timed out; reconnecting");
                    break;
                }
            }
        }
        if !link.pause(link.reconnect_max / 2).await {
            return;
        }
    }
}
