//! Whether a hook request came from a hub: `X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw
//! body>` under the shared `hook_secret`, compared in constant time, and an `X-Hub-Timestamp` (unix
//! ms) close enough to now that a captured request cannot be replayed later.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const SIGNATURE_HEADER: &str = "x-hub-signature";
pub const TIMESTAMP_HEADER: &str = "x-hub-timestamp";

/// How far the hub's timestamp may be from this server's clock, either way (clocks of two
/// machines drift; a replay later than this is refused).
pub const MAX_SKEW_MS: u64 = 5 * 60 * 1000;

/// Why a request is refused (401). Said to the caller and logged; none of them carries the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Hub-Signature header")]
    MissingSignature,
    #[error("no X-Hub-Timestamp header, or not unix milliseconds")]
    BadTimestamp,
    #[error("X-Hub-Timestamp is more than 5 minutes from this server's clock")]
    StaleTimestamp,
    #[error("X-Hub-Signature does not match the body")]
    Mismatch,
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under `secret` (as the hubs sign).
pub fn sign(secret: &SecretString, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in mac.finalize().into_bytes() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Checks one request's headers against its raw body at `now_ms`.
pub fn verify(
    secret: &SecretString,
    body: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    now_ms: u64,
) -> Result<(), SignatureError> {
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    let sent: u64 = timestamp
        .and_then(|t| t.trim().parse().ok())
        .ok_or(SignatureError::BadTimestamp)?;
    if sent.abs_diff(now_ms) > MAX_SKEW_MS {
        return Err(SignatureError::StaleTimestamp);
    }
    let want = sign(secret, body);
    // Constant time over the whole string (a different length is refused at once: the length of
    // a sha256 hex signature is no secret).
    if bool::from(want.as_bytes().ct_eq(signature.trim().as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_765_082_000_000;

    #[test]
    fn the_signature_is_the_rfc_4231_hmac_sha256_in_hex() {
        // RFC 4231, test case 2: the hubs sign the same way (hub-server/src/hooks/sign.rs).
        let secret = SecretString::from("Jefe");
        assert_eq!(
            sign(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_good_signature_with_a_fresh_timestamp_passes_and_anything_else_is_refused() {
        let secret = SecretString::from("hook-secret-0123456789");
        let body = br#"{"room":"moderated:lobby","content":"hi"}"#;
        let good = sign(&secret, body);
        let at = |ms: u64| ms.to_string();
        assert_eq!(
            verify(&secret, body, Some(&good), Some(&at(NOW)), NOW),
            Ok(())
        );
        // Within the skew either way.
        assert_eq!(
            verify(
                &secret,
                body,
                Some(&good),
                Some(&at(NOW - MAX_SKEW_MS)),
                NOW
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                &secret,
                body,
                Some(&good),
                Some(&at(NOW + MAX_SKEW_MS)),
                NOW
            ),
            Ok(())
        );
        let cases = [
            (None, Some(at(NOW)), SignatureError::MissingSignature),
            (Some(good.clone()), None, SignatureError::BadTimestamp),
            (
                Some(good.clone()),
                Some("yesterday".into()),
                SignatureError::BadTimestamp,
            ),
            (
                Some(good.clone()),
                Some(at(NOW - MAX_SKEW_MS - 1)),
                SignatureError::StaleTimestamp,
            ),
            (
                Some(good.clone()),
                Some(at(NOW + MAX_SKEW_MS + 1)),
                SignatureError::StaleTimestamp,
            ),
            // Signed with another secret, over another body, cut short, without its prefix.
            (
                Some(sign(&SecretString::from("another-secret"), body)),
                Some(at(NOW)),
                SignatureError::Mismatch,
            ),
            (
                Some(sign(&secret, b"{}")),
                Some(at(NOW)),
                SignatureError::Mismatch,
            ),
            (
                Some(good[..good.len() - 1].to_string()),
                Some(at(NOW)),
                SignatureError::Mismatch,
            ),
            (
                Some(good["sha256=".len()..].to_string()),
                Some(at(NOW)),
                SignatureError::Mismatch,
            ),
        ];
        for (signature, timestamp, want) in cases {
            assert_eq!(
                verify(
                    &secret,
                    body,
                    signature.as_deref(),
                    timestamp.as_deref(),
                    NOW
                ),
                Err(want),
                "{signature:?} {timestamp:?}"
            );
        }
    }
}
