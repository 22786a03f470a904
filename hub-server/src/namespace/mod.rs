//! Namespaces: the policy of each kind of room. A room `ns:rest` belongs to namespace `ns`, a room
//! without `:` to the default namespace, whose policy is the global settings. Each namespace may
//! set its own history (`history_size`, `history_ttl`, `recovery_max`), presence (`presence`,
//! `presence_events`), who publishes (`client_publish`) and which backend hooks it calls
//! (`proxy_subscribe`, `proxy_publish`); what it leaves unset is the global setting.
//!
//! The built-in namespace `user` holds the personal rooms ([`personal`]), with defaults of its own
//! (see [`parse`]), which `[namespaces.user]` may override. Once another namespace is declared,
//! rooms of undeclared namespaces are refused (`unknown_namespace`).
//!
//! A lookup is one split at the first `:` and one hash-map lookup by the namespace's name: its cost
//! does not depend on how many rooms exist. The rest of the hub asks [`Namespaces::lookup`] and
//! reads the [`Policy`]; this module knows nothing of sessions, history or presence.

mod parse;
mod personal;
mod policy;

use std::collections::HashMap;
use std::sync::Arc;

pub use parse::{Globals, RawNamespaces};
pub use personal::personal_room;
pub use policy::{PERSONAL, Policy, PresenceMode};

use crate::error::ProtocolError;
use crate::protocol::Room;

/// Every namespace's policy; cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub struct Namespaces(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// `[0]` the default namespace, `[1]` `user`, then the declared ones by name.
    policies: Vec<Policy>,
    /// Every named namespace (`user` included) → its place in `policies`.
    by_name: HashMap<Box<str>, usize>,
    /// A namespace other than `user` was declared: rooms of undeclared namespaces are refused.
    strict: bool,
}

const DEFAULT: usize = 0;
const USER: usize = 1;

impl Default for Namespaces {
    /// No namespace declared, the built-in global defaults.
    fn default() -> Self {
        Namespaces::new(Globals::default(), &RawNamespaces::default())
            .expect("no namespace declared is a valid configuration")
    }
}

impl Namespaces {
    /// The policies of the default namespace (`globals`), of `user`, and of every namespace
    /// `raw` declares; an error names the first bad key.
    pub fn new(globals: Globals, raw: &RawNamespaces) -> Result<Self, String> {
        let (policies, strict) = parse::policies(globals, raw)?;
        let by_name = policies
            .iter()
            .filter_map(|p| Some((Box::from(p.name.as_deref()?), p.index)))
            .collect();
        Ok(Namespaces(Arc::new(Inner {
            policies,
            by_name,
            strict,
        })))
    }

    /// The policy of `room`'s namespace; `unknown_namespace` when namespaces are declared and
    /// this one is not.
    pub fn lookup(&self, room: &Room) -> Result<&Policy, ProtocolError> {
        let Some((namespace, _)) = room.as_str().split_once(':') else {
            return Ok(&self.0.policies[DEFAULT]);
        };
        match self.0.by_name.get(namespace) {
            Some(&at) => Ok(&self.0.policies[at]),
            None if self.0.strict => Err(ProtocolError::UnknownNamespace {
                namespace: namespace.to_owned(),
                room: room.to_string(),
            }),
            None => Ok(&self.0.policies[DEFAULT]),
        }
    }

    /// The policy of `room`, the default one for a room of an unknown namespace: for code that
    /// only meets rooms a lookup already let through.
    pub fn policy(&self, room: &Room) -> &Policy {
        self.lookup(room)
            .unwrap_or_else(|_| &self.0.policies[DEFAULT])
    }

    /// Every policy: the default namespace's first, `user`'s second, then the declared ones.
    pub fn all(&self) -> &[Policy] {
        &self.0.policies
    }

    pub fn default_policy(&self) -> &Policy {
        &self.0.policies[DEFAULT]
    }

    pub fn personal(&self) -> &Policy {
        &self.0.policies[USER]
    }

    /// Whether rooms of undeclared namespaces are refused.
    pub fn is_strict(&self) -> bool {
        self.0.strict
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn room(name: &str) -> Room {
        Room::parse(name).expect("room")
    }

    fn declared(value: serde_json::Value) -> Namespaces {
        Namespaces::new(Globals::default(), &RawNamespaces::from_value(value)).expect("valid")
    }

    #[test]
    fn a_room_belongs_to_the_namespace_before_its_first_colon() {
        let ns = declared(json!({"chat": {"history_size": 7}, "feed": {}}));
        assert_eq!(ns.lookup(&room("general")).expect("default").name, None);
        assert_eq!(ns.lookup(&room("chat:x")).expect("chat").history_size, 7);
        assert_eq!(
            ns.lookup(&room("chat:a:b")).expect("chat").history_size,
            7,
            "the first colon splits"
        );
        assert_eq!(
            ns.lookup(&room("chat")).expect("default").history_size,
            100,
            "no colon: the default namespace, whatever the name"
        );
        assert!(ns.lookup(&room("user:u1")).expect("user").is_personal());
        let err = ns.lookup(&room("chta:x")).unwrap_err();
        assert_eq!(err.code(), "unknown_namespace");
        assert!(err.to_string().contains("\"chta\""), "{err}");
        assert_eq!(
            ns.lookup(&room(":x")).unwrap_err().code(),
            "unknown_namespace"
        );
    }

    #[test]
    fn without_declared_namespaces_every_room_is_known() {
        let ns = Namespaces::default();
        assert!(!ns.is_strict());
        let other = ns.lookup(&room("anything:x")).expect("known");
        assert_eq!(other, ns.default_policy());
        assert!(ns.lookup(&room("user:u1")).expect("user").is_personal());
        // Tuning only the built-in `user` namespace does not make the hub strict either.
        let ns = declared(json!({"user": {"presence": true}}));
        assert!(!ns.is_strict());
        assert!(ns.lookup(&room("x:y")).is_ok());
        assert!(ns.personal().presence);
    }

    #[test]
    fn presence_modes_follow_the_two_keys() {
        let ns = declared(json!({
            "off": {"presence": false},
            "quiet": {"presence_events": false},
            "on": {},
        }));
        let mode = |r: &str| ns.lookup(&room(r)).expect("known").presence_mode();
        assert_eq!(mode("off:1"), PresenceMode::Off);
        assert_eq!(mode("quiet:1"), PresenceMode::Quiet);
        assert_eq!(mode("on:1"), PresenceMode::Events);
        assert_eq!(mode("general"), PresenceMode::Events);
        assert_eq!(mode("user:u"), PresenceMode::Off);
    }

    #[test]
    fn every_named_namespace_is_found_by_its_name() {
        let ns = declared(json!({"b": {}, "a": {}}));
        for policy in &ns.all()[1..] {
            let name = policy.label();
            let room = room(&format!("{name}:x"));
            assert_eq!(ns.lookup(&room).expect("declared"), policy);
        }
    }

    #[test]
    fn policies_are_indexed_by_their_place() {
        let ns = declared(json!({"b": {}, "a": {}}));
        for (i, policy) in ns.all().iter().enumerate() {
            assert_eq!(policy.index, i);
        }
        let names: Vec<_> = ns.all().iter().map(Policy::label).collect();
        assert_eq!(names, ["default", "user", "a", "b"]);
    }
}
