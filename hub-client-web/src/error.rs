//! The web server's error type and its one mapping to HTTP status codes (`/token`'s own refusals
//! are [`TokenError`], which maps itself, to JSON codes too).

use warp::http::StatusCode;

use crate::token::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The page template failed to render: a bug or a value the template cannot format.
    #[error("rendering the page: {0}")]
    Render(#[from] askama::Error),
    #[error("not found")]
    NotFound,
    /// The page's Host header is missing or not a host name: the hub's address is derived from it.
    #[error("bad Host header")]
    BadHost,
    /// `POST /token` refused: answered as JSON `{"error":{"code","message"}}`.
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::BadHost => StatusCode::BAD_REQUEST,
            WebError::Token(e) => e.status(),
        }
    }
}

impl warp::reject::Reject for WebError {}
