//! The demo identity provider: `POST /token` turns a display name (and the user id the browser kept)
//! into a short-lived HS256 token signed with the secret the hubs verify. It proves nothing about the
//! person — anyone who reaches the page may pick any name — and exists so the stack shows names; a
//! real deployment puts its own identity provider in its place (see the README).

mod error;
mod request;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

pub use self::error::TokenError;
pub use self::request::{
    MAX_BODY_BYTES, TokenRequest, check_content_type, check_origin, parse_request,
};
use self::request::{valid_name, valid_sub};
use crate::config::Settings;

/// The answer: the token, and what it says, so the page needs no JWT parser.
#[derive(Debug, Serialize, Deserialize)]
pub struct Issued {
    pub token: String,
    pub sub: String,
    pub name: String,
    /// Expiry, Unix seconds (the token's `exp`).
    pub exp: u64,
}

/// The claims of a demo token. No `rooms` (the hub's `jwt_default_rooms` applies) and no `broadcast`:
/// the page never sends a broadcast, so its tokens do not carry the right to one.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub name: String,
    pub iat: u64,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Signs demo tokens. Built once at start from the settings; `None` when no secret is configured.
#[derive(Debug)]
pub struct Issuer {
    // EncodingKey's Debug is redacted, so deriving Debug here cannot print the secret.
    key: EncodingKey,
    ttl: Duration,
    issuer: Option<String>,
    audience: Option<String>,
}

impl Issuer {
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let secret = settings.jwt_secret.as_ref()?;
        Some(Issuer {
            key: EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            ttl: settings.token_ttl,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
        })
    }

    /// Validates the request and signs a token valid from `now` (Unix seconds) for the configured TTL.
    pub fn issue(&self, request: TokenRequest, now: u64) -> Result<Issued, TokenError> {
        let name = valid_name(&request.name)?;
        let sub = match request.sub {
            Some(sub) => valid_sub(sub)?,
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let claims = Claims {
            sub,
            name,
            iat: now,
            exp: now.saturating_add(self.ttl.as_secs().max(1)),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(TokenError::Sign)?;
        Ok(Issued {
            token,
            sub: claims.sub,
            name: claims.name,
            exp: claims.exp,
        })
    }
}

/// Seconds since the Unix epoch, for `iat` / `exp`.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    fn issuer(ttl: Duration) -> Issuer {
        let env = [("WEB_JWT_SECRET", SECRET), ("WEB_JWT_ISSUER", "demo")];
        let mut settings = Settings::load_from(None, env).expect("valid settings");
        settings.token_ttl = ttl;
        Issuer::from_settings(&settings).expect("a secret is set")
    }

    fn request(name: &str, sub: Option<&str>) -> TokenRequest {
        TokenRequest {
            name: name.to_string(),
            sub: sub.map(str::to_string),
        }
    }

    #[test]
    fn a_token_carries_the_name_the_kept_sub_and_the_lifetime() {
        let issuer = issuer(Duration::from_secs(900));
        let now = unix_now();
        let issued = issuer
            .issue(request(" Ana ", Some("kept-id_123")), now)
            .expect("issued");
        assert_eq!(
            (issued.name.as_str(), issued.sub.as_str()),
            ("Ana", "kept-id_123")
        );
        assert_eq!(issued.exp, now + 900);

        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["demo"]);
        let data = jsonwebtoken::decode::<Claims>(
            &issued.token,
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .expect("the token verifies with the shared secret");
        assert_eq!(data.header.alg, Algorithm::HS256);
        assert_eq!(
            data.claims,
            Claims {
                sub: "kept-id_123".into(),
                name: "Ana".into(),
                iat: now,
                exp: now + 900,
                iss: Some("demo".into()),
                aud: None,
            }
        );
        // No claim beyond those: in particular no broadcast right and no rooms.
        let raw = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            &issued.token,
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &validation,
        )
        .expect("verifies");
        let mut keys: Vec<&str> = raw.claims.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["exp", "iat", "iss", "name", "sub"]);
        let wrong = jsonwebtoken::decode::<Claims>(
            &issued.token,
            &DecodingKey::from_secret(b"another secret, also 32 bytes long"),
            &validation,
        );
        assert!(wrong.is_err(), "a different secret must not verify");
    }

    #[test]
    fn without_a_sub_a_fresh_random_one_is_made() {
        let issuer = issuer(Duration::from_secs(60));
        let a = issuer.issue(request("Ana", None), 1).expect("issued");
        let b = issuer.issue(request("Ana", None), 1).expect("issued");
        assert_eq!(a.sub.len(), 32);
        assert!(a.sub.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.sub, b.sub);
        assert!(valid_sub(a.sub).is_ok(), "a made sub passes our own check");
    }

    #[test]
    fn bad_names_and_subs_are_not_signed() {
        let issuer = issuer(Duration::from_secs(60));
        assert!(matches!(
            issuer.issue(request(" ", None), 1),
            Err(TokenError::BadName(_))
        ));
        assert!(matches!(
            issuer.issue(request("Ana", Some("x")), 1),
            Err(TokenError::BadSub)
        ));
    }
}
