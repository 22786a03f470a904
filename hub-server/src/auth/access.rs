//! What a connection may do with a room: the room's namespace first — an undeclared one is
//! refused (`unknown_namespace`), a personal room belongs to its user alone, `client_publish =
//! false` leaves publishing to the server API — then the connection's grants, where its
//! server-side subscriptions count as rooms it may join (it may have to join them again to
//! recover after a reconnect).

use super::verifier::Identity;
use crate::error::ProtocolError;
use crate::namespace::{Namespaces, Policy};
use crate::protocol::{Command, Room};

/// Whether `command` is allowed, and the policy of its room (`None` for a command without one).
pub fn check<'n>(
    identity: &Identity,
    namespaces: &'n Namespaces,
    command: &Command,
) -> Result<Option<&'n Policy>, ProtocolError> {
    match command {
        Command::Join { room, .. } | Command::Presence(room) => {
            let policy = namespaces.lookup(room)?;
            may_join(identity, room, policy)?;
            Ok(Some(policy))
        }
        Command::Message { room, .. } => {
            let policy = namespaces.lookup(room)?;
            may_publish(identity, room, policy)?;
            Ok(Some(policy))
        }
        Command::Broadcast { .. } if !identity.grants.broadcast => Err(ProtocolError::Forbidden(
            "not allowed to broadcast".to_owned(),
        )),
        _ => Ok(None),
    }
}

/// May `identity` be in `room` (join it, ask who is there)? Its own personal room always; another
/// user's never; any other room with a grant (`rooms`, `read`) or a server-side subscription.
pub fn may_join(identity: &Identity, room: &Room, policy: &Policy) -> Result<(), ProtocolError> {
    if *room == identity.personal_room {
        return Ok(());
    }
    if policy.is_personal() {
        return Err(ProtocolError::Forbidden(format!(
            "room {room:?} is another user's personal room"
        )));
    }
    match identity.grants.may_join(room) || identity.subs.contains(room) {
        true => Ok(()),
        false => Err(ProtocolError::Forbidden(format!(
            "not allowed to join room {room:?}"
        ))),
    }
}

/// May `identity` publish to `room`? Not where the namespace leaves it to the server API; then
/// in its own personal room, or with a `rooms` grant.
pub fn may_publish(identity: &Identity, room: &Room, policy: &Policy) -> Result<(), ProtocolError> {
    if !policy.client_publish {
        return Err(ProtocolError::Forbidden(format!(
            "only the server API publishes to room {room:?} (namespace {:?} sets client_publish = false)",
            policy.label()
        )));
    }
    match *room == identity.personal_room || identity.grants.may_publish(room) {
        true => Ok(()),
        false => Err(ProtocolError::Forbidden(format!(
            "not allowed to publish to room {room:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::{Grants, Patterns};
    use crate::namespace::{Globals, RawNamespaces};
    use crate::protocol::Replay;

    fn room(name: &str) -> Room {
        Room::parse(name).expect("room")
    }

    fn join(name: &str) -> Command {
        Command::Join {
            room: room(name),
            replay: Replay::None,
        }
    }

    fn say(name: &str) -> Command {
        Command::Message {
            room: room(name),
            content: "hi".into(),
            reference: None,
        }
    }

    fn code(result: Result<Option<&Policy>, ProtocolError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(err) => err.code(),
        }
    }

    fn namespaces(value: serde_json::Value) -> Namespaces {
        Namespaces::new(Globals::default(), &RawNamespaces::from_value(value)).expect("valid")
    }

    #[test]
    fn a_personal_room_is_its_users_alone_whatever_the_grants() {
        let ns = namespaces(json!({}));
        let ana = Identity::new("ana".into(), None, Grants::everything(), vec![], None);
        assert_eq!(code(check(&ana, &ns, &join("user:ana"))), "ok");
        assert_eq!(
            code(check(&ana, &ns, &Command::Presence(room("user:ana")))),
            "ok"
        );
        assert_eq!(code(check(&ana, &ns, &join("user:bo"))), "forbidden");
        assert_eq!(
            code(check(&ana, &ns, &Command::Presence(room("user:bo")))),
            "forbidden"
        );
        // By default only the server API publishes to personal rooms, one's own included.
        assert_eq!(code(check(&ana, &ns, &say("user:bo"))), "forbidden");
        assert_eq!(code(check(&ana, &ns, &say("user:ana"))), "forbidden");
        let open = namespaces(json!({"user": {"client_publish": true}}));
        assert_eq!(code(check(&ana, &open, &say("user:ana"))), "ok");
        assert_eq!(code(check(&ana, &open, &say("user:bo"))), "ok");
        let narrow = Grants {
            rooms: Patterns::parse(&["lobby"]),
            read: Patterns::default(),
            broadcast: false,
        };
        let limited = Identity::new("ana".into(), None, narrow, vec![], None);
        assert_eq!(code(check(&limited, &open, &say("user:ana"))), "ok");
        assert_eq!(code(check(&limited, &open, &say("user:bo"))), "forbidden");
        assert_eq!(code(check(&limited, &open, &join("user:ana"))), "ok");
    }

    #[test]
    fn subs_may_be_joined_again_but_not_published_to_without_a_grant() {
        let ns = namespaces(json!({"feed": {}}));
        let grants = Grants {
            rooms: Patterns::parse(&["lobby"]),
            read: Patterns::default(),
            broadcast: false,
        };
        let bo = Identity::new("bo".into(), None, grants, vec![room("feed:bo")], None);
        assert_eq!(code(check(&bo, &ns, &join("feed:bo"))), "ok");
        assert_eq!(code(check(&bo, &ns, &say("feed:bo"))), "forbidden");
        assert_eq!(code(check(&bo, &ns, &join("feed:other"))), "forbidden");
        assert_eq!(code(check(&bo, &ns, &say("lobby"))), "ok");
        assert_eq!(
            code(check(
                &bo,
                &ns,
                &Command::Broadcast {
                    content: "x".into()
                }
            )),
            "forbidden"
        );
    }

    #[test]
    fn the_namespace_comes_first() {
        let ns = namespaces(json!({"notify": {"client_publish": false}}));
        let ana = Identity::new("ana".into(), None, Grants::everything(), vec![], None);
        assert_eq!(code(check(&ana, &ns, &join("chat:x"))), "unknown_namespace");
        assert_eq!(code(check(&ana, &ns, &say("chat:x"))), "unknown_namespace");
        assert_eq!(code(check(&ana, &ns, &join("notify:x"))), "ok");
        assert_eq!(code(check(&ana, &ns, &say("notify:x"))), "forbidden");
        assert_eq!(code(check(&ana, &ns, &say("general"))), "ok");
        let policy = check(&ana, &ns, &join("notify:x")).expect("allowed");
        assert_eq!(policy.map(Policy::label), Some("notify"));
        assert_eq!(check(&ana, &ns, &Command::Ping), Ok(None));
    }
}
