//! Why `POST /token` said no, and how each refusal is answered: HTTP status and JSON code.

use warp::http::StatusCode;

/// Why `POST /token` said no. The messages go to the browser: they name what was wrong and never
/// carry a secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("sign-in is not enabled on this server (no jwt_secret)")]
    Disabled,
    #[error("POST only")]
    MethodNotAllowed,
    #[error("a request from a page needs its Origin and Host headers")]
    NoOrigin,
    #[error("the request does not come from this server's page")]
    ForeignOrigin,
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("the body needs a Content-Length")]
    LengthRequired,
    /// Larger than the limit it carries (`MAX_BODY_BYTES`, one of the request rules).
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the body is not a valid request: {0}")]
    BadJson(String),
    #[error("{0}")]
    BadName(&'static str),
    #[error("sub must be 8 to 64 of A-Z a-z 0-9 _ -")]
    BadSub,
    /// Signing failed: a bug, since the key is an HMAC secret checked at start.
    #[error("the token could not be signed")]
    Sign(#[source] jsonwebtoken::errors::Error),
}

impl TokenError {
    pub fn status(&self) -> StatusCode {
        match self {
            TokenError::Disabled => StatusCode::NOT_FOUND,
            TokenError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            TokenError::NoOrigin | TokenError::ForeignOrigin => StatusCode::FORBIDDEN,
            TokenError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TokenError::LengthRequired => StatusCode::LENGTH_REQUIRED,
            TokenError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            TokenError::BadJson(_) | TokenError::BadName(_) | TokenError::BadSub => {
                StatusCode::BAD_REQUEST
            }
            TokenError::Sign(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Disabled => "not_found",
            TokenError::MethodNotAllowed => "method_not_allowed",
            TokenError::NoOrigin | TokenError::ForeignOrigin => "bad_origin",
            TokenError::UnsupportedMediaType => "unsupported_media_type",
            TokenError::LengthRequired => "length_required",
            TokenError::TooLarge(_) => "too_large",
            TokenError::BadJson(_) => "bad_json",
            TokenError::BadName(_) => "bad_name",
            TokenError::BadSub => "bad_sub",
            TokenError::Sign(_) => "internal",
        }
    }
}
