//! The RPC proxy: a client's `rpc` frame posted to the backend; its `data` comes back to the
//! client as an `rpc_result`, its `error` as an error frame, both with the frame's `ref`.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::answer::{BackendError, Refusal};
use crate::protocol::User;

/// What the hub posts; `data` is the client's JSON as it sent it.
#[derive(Debug, Serialize)]
pub struct Request<'a> {
    pub client_id: &'a str,
    pub user: User<'a>,
    pub method: &'a str,
    pub data: &'a RawValue,
}

#[derive(Debug, Deserialize)]
pub struct Answer {
    data: Option<Box<RawValue>>,
    error: Option<BackendError>,
}

#[derive(Debug)]
pub enum Verdict {
    /// What the backend answered, as it wrote it (`null` when it left `data` out).
    Result(Box<RawValue>),
    Refuse(Refusal),
}

impl Answer {
    pub fn verdict(self) -> Verdict {
        match (self.error, self.data) {
            (Some(error), _) => Verdict::Refuse(error.refusal()),
            (None, Some(data)) => Verdict::Result(data),
            (None, None) => Verdict::Result(null()),
        }
    }
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_owned()).unwrap_or_else(|_| unreachable!("null is JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(answer: &str) -> Verdict {
        serde_json::from_str::<Answer>(answer)
            .expect("json")
            .verdict()
    }

    #[test]
    fn data_comes_back_as_written_errors_as_refusals() {
        let Verdict::Result(data) = verdict(r#"{"data": {"sum": 3}}"#) else {
            panic!("result");
        };
        assert_eq!(data.get(), r#"{"sum": 3}"#);
        let Verdict::Result(data) = verdict("{}") else {
            panic!("result");
        };
        assert_eq!(data.get(), "null");
        assert!(matches!(
            verdict(r#"{"error":{"code":"no_such_method","message":"?"}}"#),
            Verdict::Refuse(r) if r.code == "no_such_method"
        ));
    }
}
