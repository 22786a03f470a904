//! The one error type of the SDK: a code the application can match on (the SDK's own, or the
//! hub's passed through as it sent it), a message for people, and for publishes whether the hub
//! may have stored the message anyway.

use std::fmt;

/// What went wrong, as a stable code. [`ErrorCode::as_str`] gives the wire spelling, the same as
/// the JavaScript SDK's `err.code`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A publish found the bounded queue full, or was not acknowledged within
    /// [`publish_timeout`](crate::ClientOptions::publish_timeout); a presence question likewise.
    Timeout,
    /// The client was closed ([`HubClient::close`](crate::HubClient::close), or every handle
    /// dropped).
    Closed,
    /// The room was unsubscribed before the publish or question was answered.
    Unsubscribed,
    /// The frame would be larger than [`max_message_bytes`](crate::ClientOptions::max_message_bytes):
    /// the hub would close the connection (1009). Nothing was sent.
    TooLarge,
    /// A publish was sent, its connection dropped before the ack, and the room's history could no
    /// longer tell whether it was stored (reset or trimmed meanwhile). It is not sent again.
    Unknown,
    /// The hub refused the token and it cannot be renewed (a fixed string, or none given): the
    /// client is closed.
    Unauthorized,
    /// The server API disconnected this user (close 4003): the client is closed.
    DisconnectedByServer,
    /// The room is subscribed already on this client.
    AlreadySubscribed,
    /// A bad argument (a room name, empty content, a bad URL): nothing was sent.
    BadArgument,
    /// The token provider failed; the client keeps trying.
    Token,
    /// An error code of the hub, as it sent it: `forbidden`, `unavailable`, `rate_limited`,
    /// `bad_room`, … (README, "Protocol").
    Hub(String),
}

impl ErrorCode {
    /// The code as a string: `timeout`, `closed`, …, or the hub's own code.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Timeout => "timeout",
            ErrorCode::Closed => "closed",
            ErrorCode::Unsubscribed => "unsubscribed",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unknown => "unknown",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::DisconnectedByServer => "disconnected_by_server",
            ErrorCode::AlreadySubscribed => "already_subscribed",
            ErrorCode::BadArgument => "bad_argument",
            ErrorCode::Token => "token",
            ErrorCode::Hub(code) => code,
        }
    }

    /// The code of a hub's `error` frame (`forbidden`, …); an empty one reads as `error`.
    pub(crate) fn from_hub(code: Option<&str>) -> Self {
        ErrorCode::Hub(code.filter(|c| !c.is_empty()).unwrap_or("error").to_owned())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error of the SDK: its [`code`](HubError::code), a message, and for publishes
/// [`maybe_stored`](HubError::maybe_stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HubError {
    code: ErrorCode,
    message: String,
    maybe_stored: Option<bool>,
}

impl HubError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        HubError {
            code,
            message: message.into(),
            maybe_stored: None,
        }
    }

    /// The same error, saying whether the publish it ends may have been stored.
    pub(crate) fn stored(mut self, maybe_stored: bool) -> Self {
        self.maybe_stored = Some(maybe_stored);
        self
    }

    pub(crate) fn closed() -> Self {
        HubError::new(ErrorCode::Closed, "the client is closed")
    }

    pub(crate) fn bad_argument(message: impl Into<String>) -> Self {
        HubError::new(ErrorCode::BadArgument, message)
    }

    /// What went wrong.
    pub fn code(&self) -> &ErrorCode {
        &self.code
    }

    /// For people: what happened, in a sentence.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For a failed publish: `Some(false)` when the hub certainly did not store it (it may be sent
    /// again), `Some(true)` when it may have (sending it again could store it twice). `None` for
    /// errors that are not about a publish.
    pub fn maybe_stored(&self) -> Option<bool> {
        self.maybe_stored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelled_as_the_javascript_sdk_spells_them() {
        let spelled: Vec<&str> = [
            ErrorCode::Timeout,
            ErrorCode::Closed,
            ErrorCode::Unsubscribed,
            ErrorCode::TooLarge,
            ErrorCode::Unknown,
            ErrorCode::Unauthorized,
            ErrorCode::DisconnectedByServer,
            ErrorCode::AlreadySubscribed,
            ErrorCode::BadArgument,
        ]
        .iter()
        .map(ErrorCode::as_str)
        .collect();
        assert_eq!(
            spelled,
            [
                "timeout",
                "closed",
                "unsubscribed",
                "too_large",
                "unknown",
                "unauthorized",
                "disconnected_by_server",
                "already_subscribed",
                "bad_argument"
            ]
        );
        assert_eq!(ErrorCode::from_hub(Some("forbidden")).as_str(), "forbidden");
        assert_eq!(ErrorCode::from_hub(Some("")).as_str(), "error");
    }

    #[test]
    fn display_names_code_and_message() {
        let e = HubError::new(ErrorCode::Timeout, "no ack").stored(true);
        assert_eq!(e.to_string(), "timeout: no ack");
        assert_eq!(e.maybe_stored(), Some(true));
    }
}
