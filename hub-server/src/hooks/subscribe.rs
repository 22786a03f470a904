//! The subscribe proxy: a join of a room whose namespace sets `proxy_subscribe` is first posted
//! to the backend, which allows it (`{}`) or refuses it with its own error code and message.

use serde::{Deserialize, Serialize};

use super::answer::{BackendError, Refusal};
use crate::protocol::User;

/// What the hub posts.
#[derive(Debug, Serialize)]
pub struct Request<'a> {
    pub client_id: &'a str,
    pub user: User<'a>,
    pub room: &'a str,
}

/// `{}`, or `{"error":{"code","message"}}`.
#[derive(Debug, Deserialize)]
pub struct Answer {
    error: Option<BackendError>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Refuse(Refusal),
}

impl Answer {
    pub fn verdict(self) -> Verdict {
        match self.error {
            None => Verdict::Allow,
            Some(error) => Verdict::Refuse(error.refusal()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_answer_allows_an_error_refuses_with_its_code() {
        let answer: Answer = serde_json::from_str("{}").expect("json");
        assert_eq!(answer.verdict(), Verdict::Allow);
        let answer: Answer =
            serde_json::from_str(r#"{"error":{"code":"not_invited","message":"no"}}"#)
                .expect("json");
        let Verdict::Refuse(refusal) = answer.verdict() else {
            panic!("refused");
        };
        assert_eq!(refusal.code, "not_invited");
    }
}
