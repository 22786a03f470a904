//! The error of an API call: the API's own (its HTTP status and `code`) or a local one.

/// A failed API call: the API's error (`status` and its `code`), or a local one (`status` none:
/// the API could not be reached, a bad URL, an answer that is not JSON). A message of a batch
/// that the API refused on its own has the API's `code` and no `status` (its request succeeded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{code}: {message}", status.map(|s| format!("HTTP {s} ")).unwrap_or_default())]
pub struct ApiError {
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub(super) fn local(message: impl Into<String>) -> Self {
        ApiError {
            status: None,
            code: "client".to_owned(),
            message: message.into(),
        }
    }
}
