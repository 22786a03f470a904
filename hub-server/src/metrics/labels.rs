//! The fixed label values of the labelled families: every one is known at start, so each family's
//! counters are an array made once (no map lookup or allocation when counting), every series is
//! exported from the start (at 0, so `rate()` and alerts see it), and no room name, user or
//! token can ever become a label.

use crate::error::{AuthFailure, CloseReason};
use crate::protocol::JoinOutcome;

/// `realtime_hub_transport_connections{transport}` and `…_accepted_total{transport}`: how a
/// client's session reaches it, indexed by [`crate::transport::Transport::index`].
pub const TRANSPORTS: &[&str] = &["ws", "sse"];

/// `realtime_hub_connections_closed_total{reason}`; `client` is a client that left on its own
/// (close frame, EOF, reset).
pub const CLOSE_REASONS: &[&str] = &[
    "client",
    "shutdown",
    "slow_consumer",
    "rate_limit",
    "message_too_big",
    "pong_timeout",
    "protocol_error",
    "invalid_payload",
    "auth_failed",
    "token_expired",
    "too_many_user_connections",
    "disconnected",
    "other",
];

/// `realtime_hub_auth_failures_total{reason}`: why a token was refused (close 4001).
pub const AUTH_FAILURES: &[&str] = &[
    "no_token",
    "malformed",
    "algorithm",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "missing_sub",
    "missing_exp",
    "bad_claims",
    "audience",
    "issuer",
    "other_user",
    "refused",
    "backend_unavailable",
];

/// `realtime_hub_errors_total{code}`: the codes of `error` frames (`ProtocolError::code`).
pub const ERROR_CODES: &[&str] = &[
    "bad_json",
    "unknown_type",
    "missing_field",
    "bad_room",
    "empty_content",
    "binary_unsupported",
    "rate_limited",
    "not_member",
    "too_many_rooms",
    "unauthenticated",
    "forbidden",
    "auth_off",
    "unavailable",
    "unknown_namespace",
    "no_presence",
    "not_available",
];

/// `realtime_hub_recoveries_total{result}`: a `since` join's outcome.
pub const RECOVERY_RESULTS: &[&str] = &[
    "recovered",
    "epoch_changed",
    "too_old",
    "too_many",
    "unavailable",
];

/// `realtime_hub_proxy_calls_total{kind}`: the backend proxies.
pub const PROXY_KINDS: &[&str] = &["connect", "subscribe", "publish", "rpc"];

/// `realtime_hub_proxy_calls_total{outcome}`: what the backend said, or why the call failed.
pub const PROXY_OUTCOMES: &[&str] = &[
    "allowed",
    "replaced",
    "refused",
    "busy",
    "timeout",
    "unreachable",
    "status",
    "bad_answer",
];

/// Where `value` is in `list`.
pub fn index(list: &[&str], value: &str) -> Option<usize> {
    list.iter().position(|v| *v == value)
}

/// The `reason` label of a connection's end (`None`: the client left).
pub fn close_reason(reason: Option<CloseReason>) -> usize {
    let name = match reason {
        None => "client",
        Some(CloseReason::ShuttingDown) => "shutdown",
        Some(CloseReason::SlowConsumer) => "slow_consumer",
        Some(CloseReason::RateLimitExceeded) => "rate_limit",
        Some(CloseReason::MessageTooBig) => "message_too_big",
        Some(CloseReason::PongTimeout) => "pong_timeout",
        Some(CloseReason::ProtocolViolation) => "protocol_error",
        Some(CloseReason::AuthFailed(_)) => "auth_failed",
        Some(CloseReason::TokenExpired) => "token_expired",
        Some(CloseReason::TooManyUserConnections) => "too_many_user_connections",
        Some(CloseReason::Disconnected) => "disconnected",
        // A reason added since: by its close code, so a 1007 still lands where it belongs.
        #[allow(unreachable_patterns)]
        Some(other) => match u16::from(other.close_code()) {
            1007 => "invalid_payload",
            _ => "other",
        },
    };
    index(CLOSE_REASONS, name).unwrap_or(CLOSE_REASONS.len() - 1)
}

/// The `reason` label of a refused token.
pub fn auth_failure(failure: AuthFailure) -> usize {
    let name = match failure {
        AuthFailure::NoToken => "no_token",
        AuthFailure::Malformed => "malformed",
        AuthFailure::Algorithm => "algorithm",
        AuthFailure::BadSignature => "bad_signature",
        AuthFailure::Expired => "expired",
        AuthFailure::NotYetValid => "not_yet_valid",
        AuthFailure::MissingSub => "missing_sub",
        AuthFailure::MissingExp => "missing_exp",
        AuthFailure::BadClaims => "bad_claims",
        AuthFailure::Audience => "audience",
        AuthFailure::Issuer => "issuer",
        AuthFailure::OtherUser => "other_user",
        AuthFailure::Refused => "refused",
        AuthFailure::BackendUnavailable => "backend_unavailable",
    };
    index(AUTH_FAILURES, name).unwrap_or(0)
}

/// The `result` label of a join that asked to recover (`since`); `None` for any other join.
pub fn recovery(joined: &JoinOutcome) -> Option<usize> {
    match joined.recovered? {
        true => Some(0),
        false => index(RECOVERY_RESULTS, joined.reason.unwrap_or("unavailable")),
    }
}

/// The code of an `error` frame, read from its first bytes (`{"type":"error","code":"…"`, as
/// `Frame::error` writes it); `None` for every other frame, after one comparison of their start.
pub fn error_code(frame: &str) -> Option<usize> {
    const HEAD: &str = r#"{"type":"error","code":""#;
    let rest = frame.strip_prefix(HEAD)?;
    let code = &rest[..rest.find('"')?];
    index(ERROR_CODES, code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ProtocolError;
    use crate::protocol::{Frame, Room};

    #[test]
    fn every_error_frame_is_recognized_with_its_code_and_nothing_else_is() {
        let room = Room::parse("r").expect("room");
        // Every variant (a new one breaks this match until it is listed here and in ERROR_CODES).
        let all = [
            ProtocolError::BadJson("x".into()),
            ProtocolError::UnknownType("x".into()),
            ProtocolError::MissingField("x"),
            ProtocolError::BadRoom("x".into()),
            ProtocolError::EmptyContent,
            ProtocolError::BinaryUnsupported,
            ProtocolError::RateLimited(1),
            ProtocolError::NotMember("x".into()),
            ProtocolError::TooManyRooms(1),
            ProtocolError::Unauthenticated,
            ProtocolError::Forbidden("x".into()),
            ProtocolError::AuthOff,
            ProtocolError::Unavailable,
            ProtocolError::PresenceUnavailable,
            ProtocolError::TooMuchWaiting,
            ProtocolError::UnknownNamespace {
                namespace: "x".into(),
                room: "x:y".into(),
            },
            ProtocolError::NoPresence("x".into()),
            ProtocolError::AuthByProxy,
            ProtocolError::NoRpc,
            ProtocolError::BackendUnavailable,
        ];
        for err in &all {
            match err {
                ProtocolError::BadJson(_)
                | ProtocolError::UnknownType(_)
                | ProtocolError::MissingField(_)
                | ProtocolError::BadRoom(_)
                | ProtocolError::EmptyContent
                | ProtocolError::BinaryUnsupported
                | ProtocolError::RateLimited(_)
                | ProtocolError::NotMember(_)
                | ProtocolError::TooManyRooms(_)
                | ProtocolError::Unauthenticated
                | ProtocolError::Forbidden(_)
                | ProtocolError::AuthOff
                | ProtocolError::Unavailable
                | ProtocolError::PresenceUnavailable
                | ProtocolError::TooMuchWaiting
                | ProtocolError::UnknownNamespace { .. }
                | ProtocolError::NoPresence(_)
                | ProtocolError::AuthByProxy
                | ProtocolError::NoRpc
                | ProtocolError::BackendUnavailable => {}
            }
            let want = index(ERROR_CODES, err.code());
            assert!(want.is_some(), "{} is not in ERROR_CODES", err.code());
            for frame in [
                Frame::error(err),
                Frame::error_for(err, Some("r1")),
                Frame::error_in(err, &room),
            ] {
                assert_eq!(error_code(frame.as_str()), want, "{}", frame.as_str());
            }
        }
        for other in [
            Frame::pong(),
            Frame::left(&room),
            Frame::chat(
                "i",
                Some(&room),
                "c",
                crate::protocol::User {
                    id: "u",
                    name: None,
                },
                "{\"type\":\"error\",\"code\":\"bad_json\"",
                "h",
            ),
        ] {
            assert_eq!(error_code(other.as_str()), None, "{}", other.as_str());
        }
    }

    #[test]
    fn every_close_reason_and_auth_failure_has_a_label_of_its_own() {
        let failures = [
            AuthFailure::NoToken,
            AuthFailure::Malformed,
            AuthFailure::Algorithm,
            AuthFailure::BadSignature,
            AuthFailure::Expired,
            AuthFailure::NotYetValid,
            AuthFailure::MissingSub,
            AuthFailure::MissingExp,
            AuthFailure::BadClaims,
            AuthFailure::Audience,
            AuthFailure::Issuer,
            AuthFailure::OtherUser,
            AuthFailure::Refused,
            AuthFailure::BackendUnavailable,
        ];
        let mut seen: Vec<usize> = failures.iter().map(|f| auth_failure(*f)).collect();
        seen.dedup();
        assert_eq!(seen, (0..AUTH_FAILURES.len()).collect::<Vec<_>>());
        let reasons = [
            None,
            Some(CloseReason::ShuttingDown),
            Some(CloseReason::SlowConsumer),
            Some(CloseReason::RateLimitExceeded),
            Some(CloseReason::MessageTooBig),
            Some(CloseReason::PongTimeout),
            Some(CloseReason::ProtocolViolation),
            Some(CloseReason::AuthFailed(AuthFailure::Expired)),
            Some(CloseReason::TokenExpired),
            Some(CloseReason::TooManyUserConnections),
            Some(CloseReason::Disconnected),
        ];
        let mut labels: Vec<&str> = reasons
            .iter()
            .map(|r| CLOSE_REASONS[close_reason(*r)])
            .collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), reasons.len(), "{labels:?}");
        assert!(!labels.contains(&"other"), "{labels:?}");
    }

    #[test]
    fn only_since_joins_count_as_recoveries() {
        let outcome = |recovered, reason| JoinOutcome {
            recovered,
            reason,
            ..JoinOutcome::default()
        };
        assert_eq!(recovery(&outcome(None, None)), None);
        assert_eq!(recovery(&outcome(Some(true), None)), Some(0));
        for (i, reason) in RECOVERY_RESULTS.iter().enumerate().skip(1) {
            assert_eq!(recovery(&outcome(Some(false), Some(reason))), Some(i));
        }
    }
}
