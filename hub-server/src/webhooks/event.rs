//! One webhook event as the backend receives it: `{"id":"<uuid>","name":"member_added","room":"r",
//! "user":{"id","name"},"time_ms":…}`; `client_disconnected` carries `client_id`, `user`, `hub`,
//! `code` and `reason` instead of a room. The `id` is made once, when the event happens, and
//! travels with it through every retry: a receiver drops what it has seen by it.

use serde::{Deserialize, Serialize};

/// The events a backend can be told of (DESIGN 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    /// A room's first member in, across all hubs.
    RoomOccupied,
    /// A room's last member out, across all hubs.
    RoomVacated,
    /// A user's first connection joined a room (as presence says it).
    MemberAdded,
    /// A user's last connection left a room (after `presence_leave_delay`).
    MemberRemoved,
    /// A connection ended, for whatever reason.
    ClientDisconnected,
}

/// Who, on an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventUser {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub name: EventName,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub room: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user: Option<EventUser>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    pub time_ms: u64,
}

impl Event {
    fn new(name: EventName) -> Self {
        Event {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            room: None,
            user: None,
            client_id: None,
            hub: None,
            code: None,
            reason: None,
            time_ms: crate::clock::unix_micros() / 1000,
        }
    }

    /// `room_occupied` / `room_vacated`.
    pub fn room(name: EventName, room: &str) -> Self {
        Event {
            room: Some(room.to_owned()),
            ..Event::new(name)
        }
    }

    /// `member_added` / `member_removed`.
    pub fn member(name: EventName, room: &str, user: &str, user_name: Option<&str>) -> Self {
        Event {
            room: Some(room.to_owned()),
            user: Some(EventUser {
                id: user.to_owned(),
                name: user_name.map(str::to_owned),
            }),
            ..Event::new(name)
        }
    }

    /// `client_disconnected`; `code` and `reason` as in the close frame (1000 / "" when the
    /// client left on its own).
    pub fn disconnected(client_id: &str, user: &str, hub: &str, code: u16, reason: &str) -> Self {
        Event {
            client_id: Some(client_id.to_owned()),
            user: Some(EventUser {
                id: user.to_owned(),
                name: None,
            }),
            hub: Some(hub.to_owned()),
            code: Some(code),
            reason: Some(reason.to_owned()),
            ..Event::new(EventName::ClientDisconnected)
        }
    }
}

/// One POST to the webhook: a batch of events, oldest first, under an id of its own.
#[derive(Debug, Serialize)]
pub struct Delivery<'a> {
    pub id: String,
    pub time_ms: u64,
    pub events: &'a [Event],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_the_documented_fields_only() {
        let added = Event::member(EventName::MemberAdded, "lobby", "u-17", Some("Ana"));
        let v = serde_json::to_value(&added).expect("json");
        assert_eq!(v["name"], "member_added");
        assert_eq!(v["room"], "lobby");
        assert_eq!(v["user"], serde_json::json!({"id": "u-17", "name": "Ana"}));
        assert!(v["id"].as_str().is_some_and(|id| id.len() == 36));
        assert!(v.get("client_id").is_none() && v.get("code").is_none());
        let gone = Event::disconnected("c1", "u-17", "hub1", 4002, "token expired");
        let v = serde_json::to_value(&gone).expect("json");
        assert_eq!(v["name"], "client_disconnected");
        assert_eq!(
            (v["code"].as_u64(), v["reason"].as_str()),
            (Some(4002), Some("token expired"))
        );
        assert!(v.get("room").is_none());
        let back: Event = serde_json::from_value(v).expect("round trip");
        assert_eq!(back, gone);
    }
}
