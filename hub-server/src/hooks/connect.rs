//! The connect proxy (`auth_mode = "proxy"`): who a client is, asked of the backend after the
//! upgrade and before `welcome`, with the upgrade's allowed headers (its cookies, say). The
//! answer's user and grants are read as a JWT's claims are ([`crate::auth`]'s types and bounds).

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};

use super::answer::BackendError;
use crate::auth::{BadGrants, GrantClaims, Identity, MAX_SUB_BYTES, Patterns, shown_name};

/// The allowed headers of an upgrade request, by lowercase name (several values joined by `, `).
pub type Headers = BTreeMap<String, String>;

/// Longest close reason a WebSocket close frame carries (RFC 6455 5.5: 125 bytes with the code).
const MAX_CLOSE_REASON: usize = 123;

/// What the hub posts.
#[derive(Debug, Serialize)]
pub struct Request<'a> {
    pub client_id: &'a str,
    pub hub: &'a str,
    pub remote_addr: String,
    pub headers: &'a Headers,
}

/// What the backend answers: a user and grants, or an `error`.
#[derive(Debug, Deserialize)]
pub struct Answer {
    user: Option<User>,
    #[serde(flatten)]
    grants: GrantClaims,
    error: Option<BackendError>,
}

#[derive(Debug, Deserialize)]
struct User {
    id: String,
    name: Option<String>,
}

/// What the answer means for the client.
#[derive(Debug)]
pub enum Verdict {
    Admit(Identity),
    /// Closed with 4001 and this reason (the backend's message, cut to fit a close frame).
    Refuse(String),
}

/// The headers of `upgrade` named in `allowed` (`proxy_headers`), and no others.
pub fn allowed_headers(upgrade: &HeaderMap, allowed: &[HeaderName]) -> Headers {
    let mut out = Headers::new();
    for name in allowed {
        let values: Vec<&str> = upgrade
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if !values.is_empty() {
            out.insert(name.as_str().to_owned(), values.join(", "));
        }
    }
    out
}

impl Answer {
    /// `default_rooms`: the grants of an answer without `rooms` (`jwt_default_rooms`, as for a
    /// token). An answer that breaks a token's bounds (an empty or over-long user id, too many
    /// patterns, a `subs` entry that is no room) refuses the client: a backend's mistake is not
    /// let through.
    pub fn verdict(self, default_rooms: &Patterns) -> Verdict {
        if let Some(error) = self.error {
            return Verdict::Refuse(close_reason(error.refusal().message));
        }
        let Some(user) = self
            .user
            .filter(|u| !u.id.is_empty() && u.id.len() <= MAX_SUB_BYTES)
        else {
            return Verdict::Refuse("the backend's answer names no valid user".into());
        };
        let (grants, subs) = match self.grants.check(default_rooms) {
            Ok(checked) => checked,
            Err(BadGrants::TooMany) => {
                return Verdict::Refuse("the backend's answer has too many rooms".into());
            }
            Err(BadGrants::BadSub) => {
                return Verdict::Refuse("the backend's answer has a bad room in subs".into());
            }
        };
        let name = shown_name(user.name);
        Verdict::Admit(Identity::new(
            user.id.into(),
            name.map(Into::into),
            grants,
            subs,
            None,
        ))
    }
}

/// `message` cut at a character boundary to fit a close frame.
fn close_reason(message: String) -> String {
    let mut end = message.len().min(MAX_CLOSE_REASON);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Room;

    fn verdict(answer: &str) -> Verdict {
        let answer: Answer = serde_json::from_str(answer).expect("json");
        answer.verdict(&Patterns::parse_list("lobby"))
    }

    fn room(name: &str) -> Room {
        Room::parse(name).expect("room")
    }

    #[test]
    fn an_answer_grants_as_a_token_would() {
        let Verdict::Admit(ana) = verdict(
            r#"{"user":{"id":"ana","name":" Ana "},"rooms":["team.*"],"read":["news"],
                "broadcast":true,"subs":["alerts"]}"#,
        ) else {
            panic!("admitted");
        };
        assert_eq!((&*ana.user_id, ana.name.as_deref()), ("ana", Some("Ana")));
        assert!(ana.grants.may_publish(&room("team.x")) && ana.grants.broadcast);
        assert!(ana.grants.may_join(&room("news")) && !ana.grants.may_publish(&room("news")));
        assert_eq!(ana.subs, [room("alerts")]);
        assert_eq!(ana.expires_at, None);
        let Verdict::Admit(bo) = verdict(r#"{"user":{"id":"bo"}}"#) else {
            panic!("admitted");
        };
        assert!(bo.grants.may_publish(&room("lobby")) && !bo.grants.may_join(&room("x")));
        assert!(!bo.grants.broadcast);
    }

    #[test]
    fn refusals_and_bad_answers_refuse_with_a_reason_that_fits_a_close_frame() {
        let Verdict::Refuse(why) = verdict(r#"{"error":{"message":"session expired"}}"#) else {
            panic!("refused");
        };
        assert_eq!(why, "session expired");
        for bad in [
            "{}",
            r#"{"user":{"id":""}}"#,
            r#"{"user":{"id":"a"},"subs":["no spaces"]}"#,
        ] {
            assert!(matches!(verdict(bad), Verdict::Refuse(_)), "{bad}");
        }
        let long = format!(r#"{{"error":{{"message":"{}"}}}}"#, "ü".repeat(100));
        let Verdict::Refuse(why) = verdict(&long) else {
            panic!("refused");
        };
        assert!(why.len() <= MAX_CLOSE_REASON && why.starts_with('ü'));
    }

    #[test]
    fn only_the_allowed_headers_are_posted() {
        let mut upgrade = HeaderMap::new();
        upgrade.insert("cookie", "sid=abc".parse().expect("value"));
        upgrade.insert("x-secret", "no".parse().expect("value"));
        upgrade.append("origin", "http://a".parse().expect("value"));
        let allowed = [
            HeaderName::from_static("cookie"),
            HeaderName::from_static("origin"),
        ];
        let headers = allowed_headers(&upgrade, &allowed);
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["cookie"], "sid=abc");
        assert!(!headers.contains_key("x-secret"));
    }
}
