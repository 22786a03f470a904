//! The demo identity provider: `POST /token` turns a display name (and the user id the browser kept)
//! into a short-lived HS256 token signed with the secret the hubs verify. It proves nothing about the
//! person — anyone who reaches the page may pick any name — and exists so the stack shows names; a
//! real deployment puts its own identity provider in its place (see the README).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::error::TokenError;

/// Largest request body `POST /token` reads: a name and an id fit many times over.
pub const MAX_BODY_BYTES: u64 = 4096;
/// Display names: 1 to 32 characters once trimmed.
pub const MAX_NAME_CHARS: usize = 32;
/// Ids the browser sends back: 8 to 64 of `[A-Za-z0-9_-]` (ours are 32 hex digits).
pub const SUB_LEN: std::ops::RangeInclusive<usize> = 8..=64;

/// The body of `POST /token`. Unknown fields are refused, so a client cannot believe it asked for
/// rooms or broadcast rights it will not get.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    #[serde(default)]
    pub sub: Option<String>,
}

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
            key: EncodingKey::from_secret(secret.expose()),
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

/// A display name, trimmed: 1–32 characters, no control characters and no invisible formatting
/// characters (bidirectional overrides and zero-width marks would let one name pose as another).
pub fn valid_name(raw: &str) -> Result<String, TokenError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(TokenError::BadName("the name is empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(TokenError::BadName("the name is longer than 32 characters"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || is_invisible_format(c))
    {
        return Err(TokenError::BadName(
            "the name contains a control or invisible character",
        ));
    }
    Ok(name.to_owned())
}

fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{FEFF}')
}

/// A user id the browser kept from an earlier answer.
pub fn valid_sub(sub: String) -> Result<String, TokenError> {
    let ok = SUB_LEN.contains(&sub.len())
        && sub
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok { Ok(sub) } else { Err(TokenError::BadSub) }
}

/// Same-origin check: the request's `Origin` must be this server's own origin as the browser sees it,
/// `http://<Host>` (or `https://<Host>` behind a TLS proxy that keeps the Host header). A page elsewhere
/// cannot mint tokens in a visitor's browser; a request without `Origin` is not from our page.
pub fn check_origin(origin: Option<&str>, host: Option<&str>) -> Result<(), TokenError> {
    let origin = origin.ok_or(TokenError::NoOrigin)?;
    let host = host.filter(|h| !h.is_empty()).ok_or(TokenError::NoOrigin)?;
    let same = ["http://", "https://"].iter().any(|scheme| {
        origin
            .strip_prefix(scheme)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    });
    if same {
        Ok(())
    } else {
        Err(TokenError::ForeignOrigin)
    }
}

/// Only `application/json` (parameters such as `charset` allowed): a plain HTML form cannot send it,
/// and a cross-origin `fetch` with it needs a CORS preflight this server never grants.
pub fn check_content_type(content_type: Option<&str>) -> Result<(), TokenError> {
    let media = content_type
        .and_then(|ct| ct.split(';').next())
        .map(str::trim)
        .unwrap_or("");
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(TokenError::UnsupportedMediaType)
    }
}

/// Parses the body; any JSON or shape error is a 400 that says what was wrong. Only an object is a
/// request (serde alone would also take `["Ana"]` as the struct's fields in order).
pub fn parse_request(body: &[u8]) -> Result<TokenRequest, TokenError> {
    let bad = |e: serde_json::Error| TokenError::BadJson(e.to_string());
    match serde_json::from_slice(body).map_err(bad)? {
        object @ serde_json::Value::Object(_) => serde_json::from_value(object).map_err(bad),
        _ => Err(TokenError::BadJson("expected a JSON object".into())),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    fn issuer(ttl: Duration) -> Issuer {
        let env = [
            ("WEB_JWT_SECRET".to_string(), SECRET.to_string()),
            ("WEB_JWT_ISSUER".to_string(), "demo".to_string()),
        ];
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
    fn names_are_trimmed_and_bounded() {
        assert_eq!(valid_name("  Ana  ").ok().as_deref(), Some("Ana"));
        assert_eq!(valid_name("Zoë 🚀").ok().as_deref(), Some("Zoë 🚀"));
        // 32 characters of four bytes each are fine: the limit is characters, not bytes.
        assert!(valid_name(&"🚀".repeat(32)).is_ok());
        for bad in [
            "",
            "   ",
            &"x".repeat(33),
            "Ana\nBob",
            "tab\there",
            "nul\0",
            "evil\u{202E}txt",
            "zero\u{200B}width",
            "del\u{7f}",
        ] {
            assert!(
                matches!(valid_name(bad), Err(TokenError::BadName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn subs_are_8_to_64_safe_characters() {
        for good in ["abcdefgh", "A-b_9xyz", &"a".repeat(64)] {
            assert!(valid_sub(good.to_string()).is_ok(), "{good}");
        }
        for bad in [
            "short",
            &"a".repeat(65),
            "has space",
            "slash/abc",
            "ünicode1",
            "",
        ] {
            assert!(
                matches!(valid_sub(bad.to_string()), Err(TokenError::BadSub)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_the_pages_own_origin_may_ask() {
        assert!(check_origin(Some("http://127.0.0.1:9081"), Some("127.0.0.1:9081")).is_ok());
        assert!(check_origin(Some("https://Chat.Example"), Some("chat.example")).is_ok());
        assert!(matches!(
            check_origin(None, Some("127.0.0.1:9081")),
            Err(TokenError::NoOrigin)
        ));
        assert!(matches!(
            check_origin(Some("http://127.0.0.1:9081"), None),
            Err(TokenError::NoOrigin)
        ));
        for foreign in [
            "http://evil.example",
            "http://127.0.0.1:9082",
            "http://127.0.0.1:9081.evil.example",
            "null",
            "127.0.0.1:9081",
            "ws://127.0.0.1:9081",
        ] {
            assert!(
                matches!(
                    check_origin(Some(foreign), Some("127.0.0.1:9081")),
                    Err(TokenError::ForeignOrigin)
                ),
                "{foreign}"
            );
        }
    }

    #[test]
    fn only_json_bodies_are_read() {
        assert!(check_content_type(Some("application/json")).is_ok());
        assert!(check_content_type(Some("Application/JSON; charset=utf-8")).is_ok());
        for bad in [
            None,
            Some(""),
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
        ] {
            assert!(
                matches!(
                    check_content_type(bad),
                    Err(TokenError::UnsupportedMediaType)
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bodies_with_unknown_fields_or_wrong_types_are_refused() {
        assert!(parse_request(br#"{"name":"Ana"}"#).is_ok());
        assert!(parse_request(br#"{"name":"Ana","sub":"abcdefgh"}"#).is_ok());
        for bad in [
            &br#"{"name":"Ana","broadcast":true}"#[..],
            br#"{"name":"Ana","rooms":["*"]}"#,
            br#"{"sub":"abcdefgh"}"#,
            br#"{"name":42}"#,
            br#"["Ana"]"#,
            b"name=Ana",
            b"",
        ] {
            assert!(
                matches!(parse_request(bad), Err(TokenError::BadJson(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
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
