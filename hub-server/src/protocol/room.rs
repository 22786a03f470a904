//! Room names: 1–64 of `[A-Za-z0-9_.:-]`, and the default room every client starts in.

use crate::error::ProtocolError;

/// Every client starts in this room, so a plain chat needs no set-up.
pub const DEFAULT_ROOM: &str = "general";
const MAX_ROOM_LEN: usize = 64;

/// A validated room name: 1–64 of `[A-Za-z0-9_.:-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Room(String);

impl Room {
    pub fn parse(name: &str) -> Result<Self, ProtocolError> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || "_.:-".contains(c);
        if name.is_empty() || name.len() > MAX_ROOM_LEN || !name.chars().all(valid_char) {
            return Err(ProtocolError::BadRoom(name.chars().take(80).collect()));
        }
        Ok(Room(name.to_owned()))
    }

    pub fn default_room() -> Self {
        Room(DEFAULT_ROOM.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_accept_the_documented_alphabet_only() {
        assert!(Room::parse(&"a".repeat(64)).is_ok());
        for bad in ["a b", "a/b", "é", "a\nb", "<script>"] {
            assert!(Room::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
