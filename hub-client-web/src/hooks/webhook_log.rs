//! The latest webhook events this server received, for the status page: a bounded ring (oldest
//! dropped), each event once by its `id` (the hubs send at least once: a batch may come again).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// Events the status page shows.
pub const KEEP: usize = 50;
/// Event ids remembered to drop a repeat, beyond those shown: a batch retried after the ring moved
/// on must not come back as new.
pub const REMEMBER_IDS: usize = 1000;

/// A webhook event as the status page shows it (fields a hub may add are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Event {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub room: Option<String>,
    #[serde(default)]
    pub user: Option<EventUser>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub hub: Option<String>,
    #[serde(default)]
    pub time_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct EventUser {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
}

/// One POST's body: `{"id","time_ms","events":[…]}`.
#[derive(Debug, Deserialize)]
pub struct Batch {
    pub events: Vec<Event>,
}

#[derive(Debug, Default)]
struct Inner {
    events: VecDeque<Event>,
    ids: HashSet<String>,
    id_order: VecDeque<String>,
    received: u64,
    duplicates: u64,
}

/// The cloneable handle the webhook route writes and the status route reads.
#[derive(Debug, Clone, Default)]
pub struct WebhookLog {
    inner: Arc<Mutex<Inner>>,
}

/// What `/status/webhooks` answers.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookView {
    /// False when this server has no `hook_secret`: it receives no webhooks.
    pub configured: bool,
    /// Newest first.
    pub events: Vec<Event>,
    /// Distinct events received since start, and repeats dropped.
    pub received: u64,
    pub duplicates: u64,
}

impl WebhookLog {
    /// Adds a batch's events in order; returns how many were new.
    pub fn add(&self, events: Vec<Event>) -> usize {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut new = 0;
        for event in events {
            if !g.ids.insert(event.id.clone()) {
                g.duplicates += 1;
                continue;
            }
            g.id_order.push_back(event.id.clone());
            if g.id_order.len() > REMEMBER_IDS
                && let Some(old) = g.id_order.pop_front()
            {
                g.ids.remove(&old);
            }
            if g.events.len() == KEEP {
                g.events.pop_front();
            }
            g.events.push_back(event);
            g.received += 1;
            new += 1;
        }
        new
    }

    pub fn view(&self, configured: bool) -> WebhookView {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        WebhookView {
            configured,
            events: g.events.iter().rev().cloned().collect(),
            received: g.received,
            duplicates: g.duplicates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize) -> Event {
        Event {
            id: format!("e{n}"),
            name: "member_added".into(),
            room: Some("general".into()),
            user: Some(EventUser {
                id: format!("u{n}"),
                name: None,
            }),
            client_id: None,
            hub: None,
            time_ms: n as u64,
        }
    }

    #[test]
    fn the_ring_keeps_the_latest_events_newest_first_and_drops_repeats() {
        let log = WebhookLog::default();
        assert_eq!(log.add((0..KEEP + 7).map(event).collect()), KEEP + 7);
        let view = log.view(true);
        assert_eq!(view.events.len(), KEEP, "bounded");
        assert_eq!(view.events[0].id, format!("e{}", KEEP + 6), "newest first");
        assert_eq!(view.events[KEEP - 1].id, "e7", "the oldest dropped");
        // A batch sent again, even one the ring no longer shows, adds nothing.
        assert_eq!(log.add(vec![event(0), event(KEEP + 6)]), 0);
        let view = log.view(true);
        assert_eq!((view.received, view.duplicates), (KEEP as u64 + 7, 2));
        assert_eq!(view.events[0].id, format!("e{}", KEEP + 6));
    }

    #[test]
    fn the_remembered_ids_are_bounded_too() {
        let log = WebhookLog::default();
        log.add((0..REMEMBER_IDS + 10).map(event).collect());
        let g = log.inner.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(g.ids.len(), REMEMBER_IDS);
        assert_eq!(g.id_order.len(), REMEMBER_IDS);
        assert!(!g.ids.contains("e9") && g.ids.contains("e10"));
    }

    #[test]
    fn a_hub_batch_parses_with_fields_it_may_add() {
        let body = r#"{"id":"b1","time_ms":1,"events":[
          {"id":"0b8e","name":"room_occupied","room":"lobby","time_ms":5},
          {"id":"9d2c","name":"client_disconnected","client_id":"c1","user":{"id":"u-9"},"hub":"hub1","code":1000,"reason":"","time_ms":6}]}"#;
        let batch: Batch = serde_json::from_str(body).expect("parses");
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.events[1].hub.as_deref(), Some("hub1"));
        assert_eq!(
            batch.events[1].user.as_ref().map(|u| u.id.as_str()),
            Some("u-9")
        );
    }
}
