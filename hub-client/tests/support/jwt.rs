//! The HS256 tokens the runner signs for hubs in `auth_mode = jwt` (what an identity provider
//! would issue).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

/// A token for `sub` (and `name`), issued now, lasting `ttl_ms` (at least a second).
pub fn sign(secret: &str, sub: &str, name: Option<&str>, ttl_ms: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let ttl = (ttl_ms as f64 / 1000.0).round().max(1.0) as u64;
    let mut claims = serde_json::json!({"sub": sub, "iat": now, "exp": now + ttl});
    if let Some(name) = name {
        claims["name"] = name.into();
    }
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign HS256")
}
