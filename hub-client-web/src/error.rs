//! The crate's error type and its one mapping to HTTP status codes.

use warp::http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The page template failed to render: a bug or a value the template cannot format.
    #[error("rendering the page: {0}")]
    Render(#[from] askama::Error),
    #[error("not found")]
    NotFound,
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::NotFound => StatusCode::NOT_FOUND,
        }
    }
}

impl warp::reject::Reject for WebError {}
