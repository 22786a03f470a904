//! How a backend knows a request came from a hub: `X-Hub-Signature: sha256=<hex>`, the
//! HMAC-SHA256 of the raw body with `hook_secret`, and `X-Hub-Timestamp`, the hub's clock in unix
//! milliseconds (a receiver refuses old ones, so a captured request cannot be replayed later).

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

pub const SIGNATURE_HEADER: &str = "x-hub-signature";
pub const TIMESTAMP_HEADER: &str = "x-hub-timestamp";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `hook_secret`, keyed into an HMAC once: keying hashes the secret's inner and outer pads (two
/// SHA-256 blocks), which every request then starts from by cloning instead of computing again.
/// It signs as the secret does, so it is kept like it: never printed (its `Debug` says nothing).
#[derive(Clone)]
pub struct Signer(Hmac<Sha256>);

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &SecretString) -> Self {
        // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
        Signer(
            Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
                .unwrap_or_else(|_| unreachable!("HMAC accepts every key length")),
        )
    }

    /// `sha256=` and the lowercase hex HMAC-SHA256 of `body`, as header bytes.
    pub fn sign(&self, body: &[u8]) -> Vec<u8> {
        let mut mac = self.0.clone();
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        let mut out = Vec::with_capacity(7 + 2 * digest.len());
        out.extend_from_slice(b"sha256=");
        for byte in digest {
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
        }
        out
    }
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &SecretString, body: &[u8]) -> String {
    let signed = Signer::new(secret).sign(body);
    // Only ASCII went in.
    String::from_utf8(signed).unwrap_or_else(|_| unreachable!("hex is ASCII"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_rfc_4231_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        let secret = SecretString::from("Jefe");
        assert_eq!(
            signature(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            signature(&secret, b"what do ya want for nothing!"),
            signature(&secret, b"what do ya want for nothing?")
        );
    }

    #[test]
    fn one_keyed_signer_signs_each_body_as_a_fresh_key_would() {
        let secret = SecretString::from("Jefe");
        let signer = Signer::new(&secret);
        // Earlier bodies must leave nothing behind in the keyed state.
        for body in [
            &b"first"[..],
            b"",
            b"what do ya want for nothing?",
            b"first",
        ] {
            let mut fresh = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
            fresh.update(body);
            let hex: String = fresh
                .finalize()
                .into_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                signer.sign(body),
                format!("sha256={hex}").into_bytes(),
                "{body:?}"
            );
        }
        assert_eq!(format!("{signer:?}"), "Signer(..)", "nothing of the key");
    }
}
