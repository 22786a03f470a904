//! Signs test tokens the way an identity provider would: HS256 with a shared secret, or RS256 /
//! ES256 / EdDSA with the test-only private keys in `tests/fixtures/jwt/`.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

/// A secret long enough for the hub (at least 32 bytes).
pub const SECRET: &str = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
pub const OTHER_SECRET: &str = "another-secret-0123456789-abcdefghijklmnopqrstuv";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Claims of a user `sub` called `name`, valid for `ttl_secs`.
pub fn claims(sub: &str, name: &str, ttl_secs: i64) -> Value {
    json!({"sub": sub, "name": name, "exp": now() as i64 + ttl_secs})
}

/// `claims` signed HS256 with `secret`.
pub fn hs256(secret: &str, claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign HS256")
}

/// A fixture file's path: `rs256-public.pem`, `es256-private.pem`, …
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

/// `claims` signed with the fixture private key of `alg` (RS256, ES256 or EdDSA).
pub fn signed(alg: Algorithm, claims: &Value) -> String {
    let read = |name: &str| std::fs::read(fixture(name)).expect("read fixture key");
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&read("rs256-private.pem")),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&read("es256-private.pem")),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&read("ed25519-private.pem")),
        other => panic!("no fixture key for {other:?}"),
    }
    .expect("fixture private key");
    encode(&Header::new(alg), claims, &key).expect("sign")
}

/// A token with `alg: none` and no signature, as an attacker would send it.
pub fn unsigned(claims: &Value) -> String {
    let part = |v: &Value| b64url(v.to_string().as_bytes());
    format!(
        "{}.{}.",
        part(&json!({"alg": "none", "typ": "JWT"})),
        part(claims)
    )
}

/// A token whose header says `alg` but that is signed HMAC-SHA256 with `secret` (for the HS/RS
/// confusion: the "secret" being a public key everybody has).
pub fn hs256_claiming(alg: &str, secret: &[u8], claims: &Value) -> String {
    let part = |v: &Value| b64url(v.to_string().as_bytes());
    let signing_input = format!(
        "{}.{}",
        part(&json!({"alg": alg, "typ": "JWT"})),
        part(claims)
    );
    let key = EncodingKey::from_secret(secret);
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256)
        .expect("HMAC sign");
    format!("{signing_input}.{signature}")
}

fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
