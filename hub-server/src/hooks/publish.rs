//! The publish proxy: a client's message to a room whose namespace sets `proxy_publish` is first
//! posted to the backend, which lets it through as sent (`{}`), replaces its content
//! (`{"content":"…"}`) or refuses it (`{"error":{"code","message"}}`: published nowhere).

use serde::{Deserialize, Serialize};

use super::answer::{BackendError, Refusal};
use crate::protocol::User;

/// What the hub posts.
#[derive(Debug, Serialize)]
pub struct Request<'a> {
    pub client_id: &'a str,
    pub user: User<'a>,
    pub room: &'a str,
    pub content: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct Answer {
    content: Option<String>,
    error: Option<BackendError>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Published as the client sent it.
    AsSent,
    /// Published with this content instead.
    Replace(String),
    Refuse(Refusal),
}

/// A replacement the hub cannot publish (empty, or longer than `max_message_bytes`).
#[derive(Debug, PartialEq, Eq)]
pub struct BadReplacement;

impl Answer {
    /// `max_bytes`: `max_message_bytes`, which a backend's replacement must also keep to.
    pub fn verdict(self, max_bytes: usize) -> Result<Verdict, BadReplacement> {
        if let Some(error) = self.error {
            return Ok(Verdict::Refuse(error.refusal()));
        }
        match self.content {
            None => Ok(Verdict::AsSent),
            Some(c) if c.is_empty() || c.len() > max_bytes => Err(BadReplacement),
            Some(c) => Ok(Verdict::Replace(c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(answer: &str) -> Result<Verdict, BadReplacement> {
        serde_json::from_str::<Answer>(answer)
            .expect("json")
            .verdict(10)
    }

    #[test]
    fn as_sent_replaced_or_refused() {
        assert_eq!(verdict("{}"), Ok(Verdict::AsSent));
        assert_eq!(
            verdict(r#"{"content":"***"}"#),
            Ok(Verdict::Replace("***".into()))
        );
        assert!(matches!(
            verdict(r#"{"error":{"code":"bad_word"}}"#),
            Ok(Verdict::Refuse(r)) if r.code == "bad_word"
        ));
        assert_eq!(verdict(r#"{"content":""}"#), Err(BadReplacement));
        assert_eq!(verdict(r#"{"content":"01234567890"}"#), Err(BadReplacement));
    }
}
