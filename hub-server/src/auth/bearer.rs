//! The token of an `Authorization: Bearer <token>` header: how non-browser clients present a JWT
//! with the WebSocket upgrade, and backends their API key. Tokens in the URL are never read:
//! they would land in proxy and access logs.

use http::HeaderMap;
use http::header::AUTHORIZATION;

/// The token of the request's `Authorization: Bearer <token>` (the scheme is case-insensitive,
/// RFC 9110), if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().expect("header"));
        bearer_token(&headers).map(str::to_owned)
    }

    #[test]
    fn only_a_bearer_scheme_with_a_token_counts() {
        assert_eq!(token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(token("bEaReR  abc ").as_deref(), Some("abc"));
        assert_eq!(token("Basic abc"), None);
        assert_eq!(token("Bearer "), None);
        assert_eq!(token("abc"), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
