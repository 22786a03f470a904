//! Verifies a JWT against the configured keys and turns its claims into an [`Identity`].
//!
//! Each key accepts exactly one algorithm, fixed by its kind (HS256 for a secret, RS256 / ES256 /
//! EdDSA for an RSA / P-256 / Ed25519 public key), and a token is tried only against keys of its
//! header's algorithm family: `alg: none` does not parse, and a token signed "HS256" with a public
//! key's bytes as the secret meets no HMAC key that is that public key (algorithm confusion).
//! Every secret verifies, so a secret can be rotated by listing the new one beside the old.

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::grants::{GrantClaims, Grants, Patterns};
use crate::error::AuthFailure;
use crate::namespace::personal_room;
use crate::protocol::{Room, User};

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits (the web server's
/// demo sign-in checks the same bound).
pub use service_kit::MIN_SECRET_BYTES;
/// Longer user ids or names are refused / cut: they travel on every message.
pub const MAX_SUB_BYTES: usize = 256;
const MAX_NAME_CHARS: usize = 64;

/// A user's display name as it travels: trimmed, cut to [`MAX_NAME_CHARS`], none when empty.
pub fn shown_name(name: Option<String>) -> Option<String> {
    name.map(|n| n.trim().chars().take(MAX_NAME_CHARS).collect::<String>())
        .filter(|n| !n.is_empty())
}

/// Who a connection is, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Arc<str>,
    pub name: Option<Arc<str>>,
    pub grants: Grants,
    /// Server-side subscriptions: rooms the connection is in from the start (the token's `subs`
    /// claim; later the connect proxy's `subs`). Each may be joined again without a grant.
    pub subs: Vec<Room>,
    /// The user's personal room, `user:<user id>` (see [`personal_room`]).
    pub personal_room: Room,
    /// `exp` of the token (Unix seconds); `None` for anonymous clients.
    pub expires_at: Option<u64>,
}

impl Identity {
    /// `user_id` with these grants and server-side subscriptions, whatever vouched for them (a
    /// token, a backend, nobody in `auth_mode = off`).
    pub fn new(
        user_id: Arc<str>,
        name: Option<Arc<str>>,
        grants: Grants,
        subs: Vec<Room>,
        expires_at: Option<u64>,
    ) -> Self {
        Identity {
            personal_room: personal_room(&user_id),
            user_id,
            name,
            grants,
            subs,
            expires_at,
        }
    }

    /// How this user appears on the messages they send.
    pub fn user(&self) -> User<'_> {
        User {
            id: &self.user_id,
            name: self.name.as_deref(),
        }
    }
}

/// A key the hub cannot use: the hub does not start.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("auth_mode = jwt needs jwt_secrets or jwt_public_keys")]
    NoKeys,
    #[error("jwt_secrets: every secret must be at least {MIN_SECRET_BYTES} bytes (HS256)")]
    ShortSecret,
    #[error("jwt_public_keys: cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("jwt_public_keys: {path} is not an RSA, EC P-256 or Ed25519 public key in PEM")]
    NotAKey { path: String },
}

struct Key {
    key: DecodingKey,
    validation: Validation,
}

/// What verifies tokens; built once at start.
pub struct Verifier {
    keys: Vec<Key>,
    default_rooms: Patterns,
}

impl std::fmt::Debug for Verifier {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// How tokens are checked, beyond the signature.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    pub audience: Option<String>,
    pub issuer: Option<String>,
    /// Allowed clock skew, seconds, on `exp` and `nbf`.
    pub leeway_secs: u64,
    /// `rooms` when the token has none.
    pub default_rooms: Patterns,
}

#[derive(Deserialize)]
struct Claims {
    // Options, so that a missing one is reported by name by jsonwebtoken's own check.
    sub: Option<String>,
    exp: Option<u64>,
    name: Option<String>,
    #[serde(flatten)]
    grants: GrantClaims,
}

impl Verifier {
    /// `secrets`: HS256 secrets; `public_keys`: PEM files.
    pub fn new(
        secrets: &[String],
        public_keys: &[impl AsRef<Path>],
        checks: Checks,
    ) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for secret in secrets {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(KeyError::ShortSecret);
            }
            let key = DecodingKey::from_secret(secret.as_bytes());
            keys.push(Key {
                key,
                validation: validation(Algorithm::HS256, &checks),
            });
        }
        for path in public_keys {
            let path = path.as_ref();
            let shown = path.display().to_string();
            let pem = std::fs::read(path).map_err(|source| KeyError::Read {
                path: shown.clone(),
                source,
            })?;
            let (key, alg) = public_key(&pem).ok_or(KeyError::NotAKey { path: shown })?;
            keys.push(Key {
                key,
                validation: validation(alg, &checks),
            });
        }
        if keys.is_empty() {
            return Err(KeyError::NoKeys);
        }
        Ok(Verifier {
            keys,
            default_rooms: checks.default_rooms,
        })
    }

    pub fn verify(&self, token: &str) -> Result<Identity, AuthFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| failure(e.kind()))?;
        let mut tried = false;
        for key in &self.keys {
            if !key.validation.algorithms.contains(&header.alg) {
                continue;
            }
            tried = true;
            match jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation) {
                Ok(data) => return self.identity(data.claims),
                // Another secret of the same kind may be the one (rotation).
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
                Err(e) => return Err(failure(e.kind())),
            }
        }
        Err(if tried {
            AuthFailure::BadSignature
        } else {
            AuthFailure::Algorithm
        })
    }

    fn identity(&self, claims: Claims) -> Result<Identity, AuthFailure> {
        let sub = claims.sub.filter(|s| !s.is_empty());
        let sub = sub.ok_or(AuthFailure::MissingSub)?;
        let exp = claims.exp.ok_or(AuthFailure::MissingExp)?;
        if sub.len() > MAX_SUB_BYTES {
            return Err(AuthFailure::BadClaims);
        }
        let (grants, subs) = claims
            .grants
            .check(&self.default_rooms)
            .map_err(|_| AuthFailure::BadClaims)?;
        let name = shown_name(claims.name);
        Ok(Identity::new(
            sub.into(),
            name.map(Into::into),
            grants,
            subs,
            Some(exp),
        ))
    }
}

fn validation(alg: Algorithm, checks: &Checks) -> Validation {
    let mut v = Validation::new(alg);
    // jsonwebtoken checks `aud` / `iss` only when present: a configured one must also be there.
    let mut required = vec!["exp", "sub"];
    if checks.audience.is_some() {
        required.push("aud");
    }
    if checks.issuer.is_some() {
        required.push("iss");
    }
    v.set_required_spec_claims(&required);
    v.leeway = checks.leeway_secs;
    v.validate_nbf = true;
    // Without a configured audience there is nothing to compare a token's `aud` with.
    v.validate_aud = checks.audience.is_some();
    if let Some(aud) = &checks.audience {
        v.set_audience(&[aud]);
    }
    if let Some(iss) = &checks.issuer {
        v.set_issuer(&[iss]);
    }
    v
}

/// A PEM public key and the one algorithm it verifies.
fn public_key(pem: &[u8]) -> Option<(DecodingKey, Algorithm)> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Some((key, Algorithm::RS256));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Some((key, Algorithm::ES256));
    }
    DecodingKey::from_ed_pem(pem)
        .ok()
        .map(|key| (key, Algorithm::EdDSA))
}

fn failure(kind: &ErrorKind) -> AuthFailure {
    match kind {
        ErrorKind::InvalidSignature => AuthFailure::BadSignature,
        ErrorKind::ExpiredSignature => AuthFailure::Expired,
        ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
        ErrorKind::InvalidAudience => AuthFailure::Audience,
        ErrorKind::InvalidIssuer => AuthFailure::Issuer,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "sub" => AuthFailure::MissingSub,
            "aud" => AuthFailure::Audience,
            "iss" => AuthFailure::Issuer,
            _ => AuthFailure::MissingExp,
        },
        ErrorKind::InvalidClaimFormat(_) => AuthFailure::BadClaims,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm
        | ErrorKind::UnsupportedAlgorithm => AuthFailure::Algorithm,
        _ => AuthFailure::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn unusable_keys_stop_the_hub_with_the_setting_named() {
        let none: [&str; 0] = [];
        let err = Verifier::new(&[], &none, Checks::default()).unwrap_err();
        assert!(
            err.to_string().contains("jwt_secrets or jwt_public_keys"),
            "{err}"
        );
        let err = Verifier::new(&["short".into()], &none, Checks::default()).unwrap_err();
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        let err = Verifier::new(&[], &["/nonexistent/key.pem"], Checks::default()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/key.pem"), "{err}");
        let not_a_key = std::env::temp_dir().join(format!("not-a-key-{}.pem", std::process::id()));
        std::fs::write(&not_a_key, "hello").expect("write temp file");
        let err = Verifier::new(&[], &[&not_a_key], Checks::default()).unwrap_err();
        let _ = std::fs::remove_file(&not_a_key);
        assert!(err.to_string().contains("is not an RSA"), "{err}");
        assert!(Verifier::new(&[SECRET.into()], &none, Checks::default()).is_ok());
    }

    #[test]
    fn the_debug_form_shows_no_key_material() {
        let none: [&str; 0] = [];
        let v = Verifier::new(&[SECRET.into()], &none, Checks::default()).expect("verifier");
        assert!(!format!("{v:?}").contains(SECRET));
    }
}
