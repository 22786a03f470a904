//! Namespaces from the configuration: `[namespaces.NAME]` tables in the TOML file, or the same as
//! a JSON object in `HUB_NAMESPACES`. Every key is checked here and a bad one is refused with its
//! full name (`namespaces.chat.history_ttl: …`), so the hub does not start on a typo.
//!
//! The built-in `user` namespace (personal rooms) has defaults of its own, chosen for a hub where
//! every connection has a personal room (250,000 of them in the bench): no presence (a user's own
//! room has one member; counting it would cost a Redis write per connect and disconnect and two
//! hashes per user in Redis), a short history (10 messages for 2 minutes: enough to recover a
//! reconnect, bounded to ~4 KiB of Redis per active user), and only the server API publishes.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::policy::{PERSONAL, Policy};

/// What a namespace leaves unset: the hub's global settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Globals {
    pub history_size: usize,
    pub history_ttl: Duration,
    pub recovery_max: usize,
}

impl Default for Globals {
    /// The hub's built-in defaults (`config::DEFAULTS`).
    fn default() -> Self {
        Globals {
            history_size: 100,
            history_ttl: Duration::from_secs(600),
            recovery_max: 300,
        }
    }
}

/// Personal rooms keep at most this many messages (fewer when the global `history_size` is
/// smaller)…
const USER_HISTORY_SIZE: usize = 10;
/// …for at most this long (shorter when the global `history_ttl` is).
const USER_HISTORY_TTL: Duration = Duration::from_secs(120);

/// The `namespaces` setting as read: a table (TOML), a JSON object in a string (`HUB_NAMESPACES`),
/// or nothing.
#[derive(Debug, Clone, Default)]
pub struct RawNamespaces(Option<Value>);

impl<'de> Deserialize<'de> for RawNamespaces {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(|v| RawNamespaces(Some(v)))
    }
}

impl RawNamespaces {
    /// The setting as a JSON value (for tests).
    pub fn from_value(value: Value) -> Self {
        RawNamespaces(Some(value))
    }

    /// The namespaces' tables by name.
    fn tables(&self) -> Result<Map<String, Value>, String> {
        let shape = "namespaces: expected [namespaces.NAME] tables (TOML) or a JSON object of \
                     objects (HUB_NAMESPACES)";
        match &self.0 {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(Value::String(json)) => match serde_json::from_str(json) {
                Ok(Value::Object(map)) => Ok(map),
                Ok(_) => Err(shape.to_owned()),
                Err(err) => Err(format!("namespaces: HUB_NAMESPACES is not JSON: {err}")),
            },
            Some(_) => Err(shape.to_owned()),
        }
    }
}

/// The policies of the default namespace (`globals`), of `user`, and of every namespace `raw`
/// declares, each at its [`Policy::index`]; and whether a namespace other than `user` was
/// declared. An error names the first bad key.
pub(super) fn policies(
    globals: Globals,
    raw: &RawNamespaces,
) -> Result<(Vec<Policy>, bool), String> {
    let mut tables: Vec<(String, Value)> = raw.tables()?.into_iter().collect();
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    let global = Policy {
        name: None,
        history_size: globals.history_size,
        history_ttl: globals.history_ttl,
        recovery_max: globals.recovery_max,
        presence: true,
        presence_events: true,
        client_publish: true,
        proxy_subscribe: false,
        proxy_publish: false,
        index: 0,
    };
    let user = Policy {
        name: Some(PERSONAL.into()),
        history_size: globals.history_size.min(USER_HISTORY_SIZE),
        history_ttl: globals.history_ttl.min(USER_HISTORY_TTL),
        presence: false,
        presence_events: false,
        client_publish: false,
        index: 1,
        ..global.clone()
    };
    let mut policies = vec![global.clone(), user];
    let mut strict = false;
    for (name, table) in tables {
        check_name(&name)?;
        if name == PERSONAL {
            policies[1] = apply(policies[1].clone(), &name, &table)?;
            continue;
        }
        let base = Policy {
            name: Some(name.as_str().into()),
            index: policies.len(),
            ..global.clone()
        };
        policies.push(apply(base, &name, &table)?);
        strict = true;
    }
    Ok((policies, strict))
}

/// 1-63 of a room name's characters but `:` (the namespace and `:` start a room name of ≤ 64).
fn check_name(name: &str) -> Result<(), String> {
    let valid = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    if name.is_empty() || name.len() > 63 || !name.chars().all(valid) {
        return Err(format!(
            "namespaces.{name}: a namespace name is 1-63 of A-Z a-z 0-9 _ . - (a room `NAME:rest` \
             belongs to it)"
        ));
    }
    Ok(())
}

/// `base` with what `table` sets.
fn apply(mut policy: Policy, name: &str, table: &Value) -> Result<Policy, String> {
    let Value::Object(table) = table else {
        return Err(format!(
            "namespaces.{name}: expected a table of settings (history_size, presence, …)"
        ));
    };
    let mut events_set = None;
    for (key, value) in table {
        let bad = |what: &str| format!("namespaces.{name}.{key}: {what}");
        let flag = || value.as_bool().ok_or_else(|| bad("must be true or false"));
        let count = || {
            value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| bad("must be a whole number, 0 or more"))
        };
        match key.as_str() {
            "history_size" => policy.history_size = count()?,
            "history_ttl" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| bad("must be a duration such as \"10m\" or \"1h\""))?;
                let ttl = humantime_serde::re::humantime::parse_duration(text)
                    .map_err(|err| bad(&format!("{text:?} is not a duration: {err}")))?;
                // Redis key TTLs are whole seconds: below one second a key would never expire.
                if ttl < Duration::from_secs(1) {
                    return Err(bad("must be at least 1s"));
                }
                policy.history_ttl = ttl;
            }
            "recovery_max" => match count()? {
                0 => return Err(bad("must be greater than 0")),
                n => policy.recovery_max = n,
            },
            "presence" => policy.presence = flag()?,
            "presence_events" => events_set = Some(flag()?),
            "client_publish" => policy.client_publish = flag()?,
            "proxy_subscribe" => policy.proxy_subscribe = flag()?,
            "proxy_publish" => policy.proxy_publish = flag()?,
            _ => {
                return Err(bad(
                    "unknown key (known: history_size, history_ttl, recovery_max, presence, \
                     presence_events, client_publish, proxy_subscribe, proxy_publish)",
                ));
            }
        }
    }
    policy.presence_events = match (policy.presence, events_set) {
        (false, Some(true)) => {
            return Err(format!(
                "namespaces.{name}.presence_events: needs presence = true (no presence, no events)"
            ));
        }
        (false, _) => false,
        (true, Some(events)) => events,
        // Presence turned on for `user` alone: its events come with it.
        (true, None) => policy.presence_events || table.contains_key("presence"),
    };
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::namespace::Namespaces;

    fn build(value: Value) -> Result<Namespaces, String> {
        Namespaces::new(Globals::default(), &RawNamespaces::from_value(value))
    }

    #[test]
    fn unset_keys_take_the_global_settings_and_set_ones_win() {
        let globals = Globals {
            history_size: 50,
            history_ttl: Duration::from_secs(300),
            recovery_max: 40,
        };
        let raw = RawNamespaces::from_value(json!({
            "chat": {"history_size": 1000, "history_ttl": "1d"},
            "notify": {"client_publish": false, "proxy_publish": true, "proxy_subscribe": true},
        }));
        let ns = Namespaces::new(globals, &raw).expect("valid");
        let chat = &ns.all()[2];
        assert_eq!(chat.label(), "chat");
        assert_eq!(
            (chat.history_size, chat.history_ttl, chat.recovery_max),
            (1000, Duration::from_secs(86_400), 40)
        );
        assert!(chat.presence && chat.presence_events && chat.client_publish);
        let notify = &ns.all()[3];
        assert_eq!(notify.history_size, 50);
        assert!(!notify.client_publish && notify.proxy_publish && notify.proxy_subscribe);
        assert!(ns.is_strict());
    }

    #[test]
    fn the_user_namespace_has_defaults_of_its_own_and_can_be_overridden() {
        let ns = build(json!({})).expect("valid");
        let user = ns.personal();
        assert_eq!(
            (user.history_size, user.history_ttl, user.recovery_max),
            (10, Duration::from_secs(120), 300)
        );
        assert!(!user.presence && !user.presence_events && !user.client_publish);
        // Never more than the global settings: a hub without history keeps none for users either.
        let none = Globals {
            history_size: 0,
            history_ttl: Duration::from_secs(30),
            ..Globals::default()
        };
        let ns = Namespaces::new(none, &RawNamespaces::default()).expect("valid");
        assert_eq!(ns.personal().history_size, 0);
        assert_eq!(ns.personal().history_ttl, Duration::from_secs(30));
        let ns = build(json!({"user": {"presence": true, "history_size": 3}})).expect("valid");
        let user = ns.personal();
        assert!(
            user.presence && user.presence_events,
            "events come with presence"
        );
        assert_eq!((user.history_size, user.history_ttl.as_secs()), (3, 120));
        assert!(
            !user.client_publish,
            "unset: the user namespace's own default"
        );
    }

    #[test]
    fn a_json_string_is_read_like_a_table() {
        let raw = RawNamespaces::from_value(json!(r#"{"live":{"presence":false}}"#));
        let ns = Namespaces::new(Globals::default(), &raw).expect("valid");
        let live = &ns.all()[2];
        assert_eq!(live.label(), "live");
        assert!(!live.presence && !live.presence_events);
    }

    #[test]
    fn every_bad_value_is_refused_with_its_key_named() {
        let cases = [
            (
                json!({"chat": {"history_ttl": "soon"}}),
                "namespaces.chat.history_ttl",
            ),
            (
                json!({"chat": {"history_ttl": 60}}),
                "namespaces.chat.history_ttl",
            ),
            (
                json!({"chat": {"history_ttl": "500ms"}}),
                "namespaces.chat.history_ttl",
            ),
            (
                json!({"chat": {"history_size": -1}}),
                "namespaces.chat.history_size",
            ),
            (
                json!({"chat": {"history_size": "10"}}),
                "namespaces.chat.history_size",
            ),
            (
                json!({"chat": {"recovery_max": 0}}),
                "namespaces.chat.recovery_max",
            ),
            (
                json!({"chat": {"presence": "no"}}),
                "namespaces.chat.presence",
            ),
            (
                json!({"chat": {"client_publish": 1}}),
                "namespaces.chat.client_publish",
            ),
            (
                json!({"chat": {"proxy_publish": null}}),
                "namespaces.chat.proxy_publish",
            ),
            (
                json!({"chat": {"histroy_size": 1}}),
                "namespaces.chat.histroy_size",
            ),
            (
                json!({"chat": {"presence": false, "presence_events": true}}),
                "namespaces.chat.presence_events",
            ),
            (json!({"chat": 5}), "namespaces.chat:"),
            (json!({"a:b": {}}), "namespaces.a:b:"),
            (json!({"": {}}), "namespaces.:"),
            (json!({"x".repeat(64): {}}), "namespaces.xxx"),
            (json!([1]), "namespaces:"),
            (json!("{not json"), "HUB_NAMESPACES is not JSON"),
            (json!("[]"), "namespaces:"),
        ];
        for (value, named) in cases {
            let shown = value.to_string();
            let err = build(value).unwrap_err();
            assert!(err.contains(named), "{shown}: {err}");
        }
    }
}
