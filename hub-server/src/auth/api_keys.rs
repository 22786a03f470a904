//! API keys: `Authorization: Bearer <key>` against every configured key (`api_keys`, several so
//! a key can be rotated). Keys are kept only as SHA-256 digests and compared in constant time:
//! the presented key is hashed too, so neither its length nor the position of a first differing
//! byte shows in the timing, and every configured key is compared, without early exit.

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use secrecy::{ExposeSecret, SecretString};

use super::bearer::bearer_token;
use crate::config::comma_list;

/// Shortest key accepted: a key is a password for publishing to every room.
pub const MIN_KEY_BYTES: usize = 16;

#[derive(Clone)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys, redacted)", self.digests.len())
    }
}

/// Why `api_keys` is refused at start; never says the key.
#[derive(Debug, thiserror::Error)]
pub enum BadApiKeys {
    #[error("api_keys: no key in the list")]
    Empty,
    #[error(
        "api_keys: key {0} of the list is shorter than {MIN_KEY_BYTES} bytes or has spaces or control characters"
    )]
    Weak(usize),
}

fn digest(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl ApiKeys {
    /// Comma-separated keys; blanks around commas and empty entries are ignored.
    pub fn parse(keys: &SecretString) -> Result<Self, BadApiKeys> {
        let mut digests = Vec::new();
        for (i, key) in comma_list(keys.expose_secret()).enumerate() {
            let printable = key.bytes().all(|b| b.is_ascii_graphic());
            if key.len() < MIN_KEY_BYTES || !printable {
                return Err(BadApiKeys::Weak(i + 1));
            }
            digests.push(digest(key.as_bytes()));
        }
        if digests.is_empty() {
            return Err(BadApiKeys::Empty);
        }
        Ok(ApiKeys { digests })
    }

    /// Whether the request carries one of the keys.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(presented) = bearer_token(headers) else {
            return false;
        };
        let presented = digest(presented.as_bytes());
        let mut any = Choice::from(0);
        for key in &self.digests {
            any |= key.ct_eq(&presented);
        }
        any.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::AUTHORIZATION;

    fn secret(s: &str) -> SecretString {
        s.into()
    }

    fn headers(authorization: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, authorization.parse().expect("header"));
        h
    }

    #[test]
    fn every_configured_key_opens_and_nothing_else_does() {
        let keys = ApiKeys::parse(&secret("key-one-0123456789, key-two-0123456789")).expect("ok");
        assert!(keys.allows(&headers("Bearer key-one-0123456789")));
        assert!(keys.allows(&headers("bearer key-two-0123456789")));
        for wrong in [
            "Bearer key-one-012345678",
            "Bearer key-one-0123456789x",
            "Bearer ",
            "Basic key-one-0123456789",
            "key-one-0123456789",
            "Bearer key-one-0123456789, key-two-0123456789",
        ] {
            assert!(!keys.allows(&headers(wrong)), "{wrong:?}");
        }
        assert!(!keys.allows(&HeaderMap::new()));
    }

    #[test]
    fn weak_or_empty_lists_are_refused_without_showing_the_key() {
        let err = ApiKeys::parse(&secret("long-enough-key-0123,tiny9")).unwrap_err();
        assert!(matches!(err, BadApiKeys::Weak(2)), "{err}");
        assert!(!err.to_string().contains("tiny9"));
        assert!(ApiKeys::parse(&secret("with space in it 0123456")).is_err());
        assert!(matches!(
            ApiKeys::parse(&secret(" , ")),
            Err(BadApiKeys::Empty)
        ));
        let keys = ApiKeys::parse(&secret("key-one-0123456789")).expect("ok");
        assert!(!format!("{keys:?}").contains("key-one"));
    }
}
