//! What a user may do, from the token's claims: join and publish (`rooms`), join only (`read`),
//! send `broadcast`. [`super::access`] weighs them with the room's namespace. A pattern is an exact room name or a prefix ending in `*` (`team-42.*`; `*`
//! alone is every room).

use serde::Deserialize;

use crate::protocol::Room;

/// A token may carry at most this many patterns per claim: each join or publish checks them in
/// turn, so a huge list would make every frame slow. Real grant lists are a handful.
pub const MAX_PATTERNS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    Prefix(String),
}

impl Pattern {
    fn parse(text: &str) -> Self {
        match text.strip_suffix('*') {
            Some(prefix) => Pattern::Prefix(prefix.to_owned()),
            None => Pattern::Exact(text.to_owned()),
        }
    }

    fn matches(&self, room: &str) -> bool {
        match self {
            Pattern::Exact(name) => name == room,
            Pattern::Prefix(prefix) => room.starts_with(prefix.as_str()),
        }
    }
}

/// A list of room patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns(Vec<Pattern>);

impl Patterns {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Self {
        Patterns(
            items
                .iter()
                .map(|s| s.as_ref().trim())
                .filter(|s| !s.is_empty())
                .map(Pattern::parse)
                .collect(),
        )
    }

    /// Comma-separated patterns, as in `HUB_JWT_DEFAULT_ROOMS`.
    pub fn parse_list(list: &str) -> Self {
        Self::parse(&crate::config::comma_list(list).collect::<Vec<_>>())
    }

    pub fn everything() -> Self {
        Patterns(vec![Pattern::Prefix(String::new())])
    }

    pub fn matches(&self, room: &Room) -> bool {
        self.0.iter().any(|p| p.matches(room.as_str()))
    }
}

/// The permissions of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// Rooms the user may join and publish to.
    pub rooms: Patterns,
    /// Rooms the user may join but not publish to.
    pub read: Patterns,
    pub broadcast: bool,
}

impl Grants {
    /// `auth_mode = off`: wave 1's open hub.
    pub fn everything() -> Self {
        Grants {
            rooms: Patterns::everything(),
            read: Patterns::default(),
            broadcast: true,
        }
    }

    pub fn may_join(&self, room: &Room) -> bool {
        self.rooms.matches(room) || self.read.matches(room)
    }

    pub fn may_publish(&self, room: &Room) -> bool {
        self.rooms.matches(room)
    }
}

/// The grant claims as a token or the connect proxy's answer carries them, before they are checked.
#[derive(Debug, Default, Deserialize)]
pub struct GrantClaims {
    rooms: Option<Vec<String>>,
    read: Option<Vec<String>>,
    #[serde(default)]
    broadcast: bool,
    /// Room names (not patterns) joined at connect.
    #[serde(default)]
    subs: Vec<String>,
}

/// Why a token's or an answer's grants are refused.
#[derive(Debug, PartialEq, Eq)]
pub enum BadGrants {
    /// More than [`MAX_PATTERNS`] entries in `rooms`, `read` or `subs`.
    TooMany,
    /// A `subs` entry that is no room name.
    BadSub,
}

impl GrantClaims {
    /// The grants and the rooms to join at connect; `default_rooms` when there is no `rooms`.
    /// A name in `subs` that is no room is a backend's mistake: refused, not silently skipped.
    pub fn check(self, default_rooms: &Patterns) -> Result<(Grants, Vec<Room>), BadGrants> {
        let too_many = |l: &Option<Vec<String>>| l.as_ref().is_some_and(|l| l.len() > MAX_PATTERNS);
        if too_many(&self.rooms) || too_many(&self.read) || self.subs.len() > MAX_PATTERNS {
            return Err(BadGrants::TooMany);
        }
        let subs = self
            .subs
            .iter()
            .map(|s| Room::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| BadGrants::BadSub)?;
        let grants = Grants {
            rooms: self
                .rooms
                .map_or_else(|| default_rooms.clone(), |r| Patterns::parse(&r)),
            read: self.read.map(|r| Patterns::parse(&r)).unwrap_or_default(),
            broadcast: self.broadcast,
        };
        Ok((grants, subs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> Room {
        Room::parse(name).expect("valid room")
    }

    #[test]
    fn exact_names_and_prefixes_match_as_documented() {
        let p = Patterns::parse(&["lobby", "team-42.*"]);
        assert!(p.matches(&room("lobby")));
        assert!(!p.matches(&room("lobby2")), "exact means exact");
        assert!(p.matches(&room("team-42.ops")));
        assert!(p.matches(&room("team-42.")));
        assert!(!p.matches(&room("team-421")), "the prefix includes the dot");
        assert!(!p.matches(&room("team-4")));
        assert!(Patterns::parse_list("*").matches(&room("anything")));
        assert!(!Patterns::parse_list("").matches(&room("anything")));
        assert!(Patterns::parse_list(" a , b.* ").matches(&room("b.c")));
    }

    #[test]
    fn read_patterns_allow_joining_but_not_publishing() {
        let grants = Grants {
            rooms: Patterns::parse(&["chat.*"]),
            read: Patterns::parse(&["news"]),
            broadcast: false,
        };
        assert!(grants.may_join(&room("news")));
        assert!(!grants.may_publish(&room("news")));
        assert!(grants.may_join(&room("chat.x")) && grants.may_publish(&room("chat.x")));
        assert!(!grants.may_join(&room("secret")));
    }
}
