//! The name of a user's personal room. Room names are 1-64 of `[A-Za-z0-9_.:-]`, user ids (a JWT's
//! `sub`) up to 256 bytes of anything — an e-mail address, `auth0|5f7c…` — so not every id fits:
//! - an id of 1-59 of those characters, not starting with `sha256:`, is used as it is:
//!   `user:u-17`, `user:5bc1…` (an anonymous client's id);
//! - any other id is hashed: `user:sha256:` + the first 40 hex digits of the SHA-256 of the id's
//!   bytes (`user:sha256:258d8dc916db8cea2cafb6c3cd0cb0246efe0614` for `admin@example.com`),
//!   which a backend computes the same way to publish to that user. Ids that start with
//!   `sha256:` are hashed too, so no id can take another's room.

use sha2::{Digest, Sha256};

use super::policy::PERSONAL;
use crate::protocol::Room;

/// Hashed ids start with this, after `user:`.
const HASHED: &str = "sha256:";
/// Hex digits of the hash kept: 160 bits.
const HASH_DIGITS: usize = 40;

/// `user_id`'s personal room.
pub fn personal_room(user_id: &str) -> Room {
    if !user_id.is_empty() && !user_id.starts_with(HASHED) {
        // Room::parse checks the alphabet and the length (`user:` + 59 = 64).
        if let Ok(room) = Room::parse(&format!("{PERSONAL}:{user_id}")) {
            return room;
        }
    }
    let digest = Sha256::digest(user_id.as_bytes());
    let hex: String = digest
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0xf])
        .take(HASH_DIGITS)
        .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
        .collect();
    Room::parse(&format!("{PERSONAL}:{HASHED}{hex}"))
        .expect("user:sha256: and 40 hex digits is a valid room name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_used_as_they_are_and_the_rest_is_hashed() {
        assert_eq!(personal_room("u-17").as_str(), "user:u-17");
        let uuid = "5bc1a2d4-0f3e-4a55-9d61-2b8f0c7e9a10";
        assert_eq!(personal_room(uuid).as_str(), format!("user:{uuid}"));
        let longest = "a".repeat(59);
        assert_eq!(personal_room(&longest).as_str().len(), 64);
        // `printf %s 'admin@example.com' | sha256sum`, first 40 digits.
        assert_eq!(
            personal_room("admin@example.com").as_str(),
            "user:sha256:258d8dc916db8cea2cafb6c3cd0cb0246efe0614"
        );
        for hashed in [
            "a".repeat(60),
            "auth0|5f7c8ec7c33c6c004bbafe82".to_owned(),
            "ana ma".to_owned(),
            "é".to_owned(),
            String::new(),
            "sha256:258d8dc916db8cea2cafb6c3cd0cb0246efe0614".to_owned(),
        ] {
            let room = personal_room(&hashed);
            assert!(
                room.as_str().starts_with("user:sha256:"),
                "{hashed:?}: {room}"
            );
            assert_eq!(room.as_str().len(), 52);
        }
        assert_ne!(
            personal_room("sha256:258d8dc916db8cea2cafb6c3cd0cb0246efe0614"),
            personal_room("admin@example.com"),
            "an id shaped like a hashed room gets a room of its own"
        );
    }
}
