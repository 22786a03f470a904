//! Errors, and the one place where each maps to what a client sees: an `error` frame code or a
//! WebSocket close code.

use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A frame the hub refuses; the connection stays open and the client gets an `error` frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed JSON frame: {0}")]
    BadJson(String),
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    #[error("field {0:?} is required")]
    MissingField(&'static str),
    #[error("bad room name {0:?}: use 1-64 of A-Z a-z 0-9 _ . : -")]
    BadRoom(String),
    #[error("content must not be empty")]
    EmptyContent,
    #[error("binary frames are not supported; send JSON text frames")]
    BinaryUnsupported,
    #[error("too many messages: the limit is {0} per second")]
    RateLimited(u32),
    #[error("not a member of room {0:?}")]
    NotMember(String),
    #[error("too many rooms: the limit is {0} per connection")]
    TooManyRooms(usize),
    #[error("send {{\"type\":\"auth\",\"token\":\"<jwt>\"}} first")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("this hub runs with auth_mode = off: tokens are not checked")]
    AuthOff,
    #[error("the message could not be stored: the hub's outage buffer is full")]
    Unavailable,
    #[error("presence is unavailable: redis did not answer")]
    PresenceUnavailable,
    #[error("too many requests of this connection are still waiting: try again")]
    TooMuchWaiting,
    #[error("room {room:?} is in namespace {namespace:?}, which this hub does not declare")]
    UnknownNamespace { namespace: String, room: String },
    #[error("room {0:?} keeps no presence (its namespace sets presence = false)")]
    NoPresence(String),
    #[error(
        "this hub runs with auth_mode = proxy: the backend says who clients are, tokens are not read"
    )]
    AuthByProxy,
    #[error("rpc is not available on this hub (no proxy_rpc_url)")]
    NoRpc,
    /// A backend hook failed (timeout, refused connection, 5xx, too many calls in flight):
    /// what it guarded is refused, never let through.
    #[error("the backend is unavailable: try again later")]
    BackendUnavailable,
}

impl ProtocolError {
    /// The stable, machine-readable code of the `error` frame.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::BadJson(_) => "bad_json",
            ProtocolError::UnknownType(_) => "unknown_type",
            ProtocolError::MissingField(_) => "missing_field",
            ProtocolError::BadRoom(_) => "bad_room",
            ProtocolError::EmptyContent => "empty_content",
            ProtocolError::BinaryUnsupported => "binary_unsupported",
            ProtocolError::RateLimited(_) => "rate_limited",
            ProtocolError::NotMember(_) => "not_member",
            ProtocolError::TooManyRooms(_) => "too_many_rooms",
            ProtocolError::Unauthenticated => "unauthenticated",
            ProtocolError::Forbidden(_) => "forbidden",
            ProtocolError::AuthOff | ProtocolError::AuthByProxy => "auth_off",
            ProtocolError::NoRpc => "not_available",
            ProtocolError::UnknownNamespace { .. } => "unknown_namespace",
            ProtocolError::NoPresence(_) => "no_presence",
            ProtocolError::Unavailable
            | ProtocolError::PresenceUnavailable
            | ProtocolError::TooMuchWaiting
            | ProtocolError::BackendUnavailable => "unavailable",
        }
    }
}

/// Why the hub closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The hub is shutting down (SIGTERM/SIGINT).
    ShuttingDown,
    /// The client's queue filled up: it reads slower than its rooms talk.
    SlowConsumer,
    /// The client kept sending over the rate limit after being told.
    RateLimitExceeded,
    /// A frame over `max_message_bytes`.
    MessageTooBig,
    /// No frame or pong within `pong_timeout`.
    PongTimeout,
    /// The WebSocket protocol was violated.
    ProtocolViolation,
    /// A text message that is not UTF-8 (RFC 6455 8.1: 1007).
    InvalidPayload,
    /// A bad, missing or late token.
    AuthFailed(AuthFailure),
    /// The token's `exp` (plus `jwt_leeway`) passed without a refresh.
    TokenExpired,
    /// The user has `max_connections_per_user` connections on this hub already.
    TooManyUserConnections,
    /// A backend asked for the user to be disconnected (`POST /api/disconnect`).
    Disconnected,
}

/// Why a token was refused: said in the 4001 close frame and the log, never with the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token within `auth_timeout`.
    NoToken,
    /// Not three base64url parts of JSON, or an algorithm that does not exist (`none`).
    Malformed,
    /// An algorithm no configured key accepts.
    Algorithm,
    BadSignature,
    Expired,
    NotYetValid,
    MissingSub,
    MissingExp,
    BadClaims,
    Audience,
    Issuer,
    /// A refresh token for a different `sub` than the connection's.
    OtherUser,
    /// `auth_mode = proxy`: the backend refused the client (its message is the close reason).
    Refused,
    /// `auth_mode = proxy`: the backend did not answer in time, could not be reached, answered
    /// 5xx or garbage, or too many calls were in flight: the client is refused (fails closed).
    BackendUnavailable,
}

impl AuthFailure {
    pub fn text(self) -> &'static str {
        match self {
            AuthFailure::NoToken => "auth failed: no token in time",
            AuthFailure::Malformed => "auth failed: malformed token or unknown algorithm",
            AuthFailure::Algorithm => "auth failed: algorithm not accepted",
            AuthFailure::BadSignature => "auth failed: bad signature",
            AuthFailure::Expired => "auth failed: token expired",
            AuthFailure::NotYetValid => "auth failed: token not yet valid",
            AuthFailure::MissingSub => "auth failed: no sub claim",
            AuthFailure::MissingExp => "auth failed: no exp claim",
            AuthFailure::BadClaims => "auth failed: bad claims",
            AuthFailure::Audience => "auth failed: wrong audience",
            AuthFailure::Issuer => "auth failed: wrong issuer",
            AuthFailure::OtherUser => "auth failed: token is for another user",
            AuthFailure::Refused => "auth failed: refused by the backend",
            AuthFailure::BackendUnavailable => "auth failed: the backend is unavailable",
        }
    }
}

impl CloseReason {
    pub fn close_code(self) -> CloseCode {
        match self {
            CloseReason::ShuttingDown => CloseCode::Away,
            CloseReason::SlowConsumer => CloseCode::Library(4000),
            CloseReason::RateLimitExceeded => CloseCode::Policy,
            CloseReason::MessageTooBig => CloseCode::Size,
            CloseReason::PongTimeout => CloseCode::Policy,
            CloseReason::ProtocolViolation => CloseCode::Protocol,
            CloseReason::InvalidPayload => CloseCode::Invalid,
            CloseReason::AuthFailed(_) => CloseCode::Library(4001),
            CloseReason::TokenExpired => CloseCode::Library(4002),
            CloseReason::TooManyUserConnections => CloseCode::Library(4008),
            CloseReason::Disconnected => CloseCode::Library(4003),
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            CloseReason::ShuttingDown => "hub shutting down",
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::RateLimitExceeded => "rate limit exceeded",
            CloseReason::MessageTooBig => "message too big",
            CloseReason::PongTimeout => "pong timeout",
            CloseReason::ProtocolViolation => "protocol violation",
            CloseReason::InvalidPayload => "text frame not utf-8",
            CloseReason::AuthFailed(failure) => failure.text(),
            CloseReason::TokenExpired => "token expired",
            CloseReason::TooManyUserConnections => "too many connections for this user",
            CloseReason::Disconnected => "disconnected by the server",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_the_documented_ones() {
        let code = |r: CloseReason| u16::from(r.close_code());
        assert_eq!(code(CloseReason::ShuttingDown), 1001);
        assert_eq!(code(CloseReason::SlowConsumer), 4000);
        assert_eq!(code(CloseReason::RateLimitExceeded), 1008);
        assert_eq!(code(CloseReason::MessageTooBig), 1009);
        assert_eq!(code(CloseReason::AuthFailed(AuthFailure::Expired)), 4001);
        assert_eq!(code(CloseReason::TokenExpired), 4002);
        assert_eq!(code(CloseReason::TooManyUserConnections), 4008);
    }

    #[test]
    fn close_texts_fit_a_close_frame() {
        // A close frame's reason is at most 123 bytes.
        for failure in [
            AuthFailure::Malformed,
            AuthFailure::OtherUser,
            AuthFailure::NoToken,
        ] {
            assert!(CloseReason::AuthFailed(failure).text().len() <= 123);
        }
    }
}
