//! The hub's heartbeat in the cluster's registry, on a task of its own. Another hub takes this
//! one for dead once its heartbeat is older than `hub_timeout`, and buries its presence. So the
//! beat must never wait behind the writer's own work: a storm's writes, a resync, or burying a
//! dead hub's crowded room (hundreds of Redis calls in a row). In a `make bench-c250k` run, 8 of
//! the 14 live hubs beat late while the writer that also beat was busy, and were buried in turn:
//! their users' presence went and came back, and each burial scanned a 250,000-entry room again.
//!
//! What the beats find (Redis did not know this hub; hubs whose heartbeat stopped; a beat that
//! failed) is gathered in [`Beats`] for the writer, which acts on it when it is free.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::Keys;
use super::Presence;
use super::scripts;

/// What the beats found since the writer last looked.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Found {
    /// A beat got no answer in time.
    pub failed: bool,
    /// Redis did not know this hub: it lost what the hub wrote (a restart, FLUSHALL), or another
    /// hub took it for dead and buried it.
    pub unknown: bool,
    /// Hubs whose heartbeat is older than `hub_timeout`, each once (never this hub).
    pub dead: Vec<String>,
}

/// Shared by the heartbeat task and the writer: the findings, and a wake-up for the writer.
#[derive(Debug, Default)]
pub(super) struct Beats {
    found: Mutex<Found>,
    beat: Notify,
}

impl Beats {
    /// Waits for a beat's findings (a beat while the writer was busy is kept, not lost).
    pub async fn next(&self) {
        self.beat.notified().await;
    }

    /// Everything found since the last call.
    pub fn take(&self) -> Found {
        std::mem::take(&mut *self.found.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn record(&self, failed: bool, unknown: bool, dead: Vec<String>, me: &str) {
        let mut found = self.found.lock().unwrap_or_else(PoisonError::into_inner);
        found.failed |= failed;
        found.unknown |= unknown;
        for instance in dead {
            // Bounded by the hubs in the registry.
            if instance != me && !found.dead.contains(&instance) {
                found.dead.push(instance);
            }
        }
        drop(found);
        self.beat.notify_one();
    }
}

/// Beats `every` (`hub_heartbeat`) until aborted: the writer aborts it before it leaves the
/// cluster, so no late beat puts this hub back in the registry. `hub_timeout`: how old another
/// hub's last beat may be before the script names it dead.
pub(super) async fn run(
    presence: Presence,
    keys: Keys,
    me: String,
    every: Duration,
    hub_timeout: Duration,
    beats: Arc<Beats>,
) {
    let script = redis::Script::new(scripts::HEARTBEAT);
    let timeout_ms = hub_timeout.as_millis() as u64;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(mut conn) = presence.commands().await else {
            beats.record(true, false, Vec::new(), &me);
            continue;
        };
        let info = serde_json::to_string(&presence.this_hub()).unwrap_or_default();
        let mut call = script.key(keys.hubs());
        call.key(keys.hub(&me)).arg(&me).arg(info).arg(timeout_ms);
        let beat = call.invoke_async::<(i64, Vec<String>)>(&mut conn);
        match tokio::time::timeout(every * 2, beat).await {
            Ok(Ok((known, dead))) => beats.record(false, known == 0, dead, &me),
            _ => {
                tracing::warn!("presence: heartbeat failed");
                beats.record(true, false, Vec::new(), &me);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_gather_until_taken_each_dead_hub_once_and_never_this_one() {
        let beats = Beats::default();
        beats.record(false, false, vec!["a".into(), "me".into()], "me");
        beats.record(true, true, vec!["a".into(), "b".into()], "me");
        assert_eq!(
            beats.take(),
            Found {
                failed: true,
                unknown: true,
                dead: vec!["a".into(), "b".into()],
            }
        );
        assert_eq!(beats.take(), Found::default(), "taken");
    }

    #[tokio::test]
    async fn a_beat_while_the_writer_is_busy_wakes_it_when_it_looks_again() {
        let beats = Beats::default();
        beats.record(false, false, vec!["a".into()], "me");
        // The writer was busy during the beat: it still wakes at once.
        tokio::time::timeout(std::time::Duration::from_secs(1), beats.next())
            .await
            .expect("woken");
        assert_eq!(beats.take().dead, vec!["a".to_owned()]);
    }
}
