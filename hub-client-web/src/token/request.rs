//! What a `POST /token` request must be before anything is signed: from this server's own page,
//! JSON, small, with a valid display name and user id.

use serde::Deserialize;

use super::error::TokenError;

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
    use super::*;

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
}
