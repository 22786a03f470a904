//! The clients' identities: an HS256 token per user, signed with the secret the hubs verify, whose
//! `rooms` claim grants exactly `all` and the user's own room — so no client starts in `general`
//! (the hub puts a client there only if its grants allow it) and each is in two rooms, as the
//! benchmark asks.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use crate::error::BenchError;

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    rooms: &'a [&'a str],
}

pub struct Minter {
    key: EncodingKey,
    header: Header,
    ttl: Duration,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Minter")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Minter {
    pub fn new(secret: &str, ttl: Duration) -> Self {
        Minter {
            key: EncodingKey::from_secret(secret.as_bytes()),
            header: Header::default(),
            ttl,
        }
    }

    pub fn token(&self, user: &str, rooms: &[&str]) -> Result<String, BenchError> {
        let exp = super::frames::unix_us() / 1_000_000 + self.ttl.as_secs();
        let claims = Claims {
            sub: user,
            exp,
            rooms,
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key)
            .map_err(|e| BenchError::Usage(format!("token: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    #[test]
    fn tokens_carry_the_user_and_its_two_rooms() {
        let secret = "a-secret-of-at-least-32-bytes-long!!";
        let m = Minter::new(secret, Duration::from_secs(3600));
        let t = m.token("u17", &["all", "p-17"]).expect("signed");
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &t,
            &DecodingKey::from_secret(secret.as_bytes()),
            &Validation::default(),
        )
        .expect("verifies with the same secret");
        assert_eq!(data.claims["sub"], "u17");
        assert_eq!(data.claims["rooms"], serde_json::json!(["all", "p-17"]));
        assert!(
            data.claims["exp"].as_u64().expect("exp") > super::super::frames::unix_us() / 1_000_000
        );
        assert!(!format!("{m:?}").contains(secret));
    }
}
