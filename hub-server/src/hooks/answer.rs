//! What every proxy's answer may say to refuse: `{"error":{"code","message"}}`, bounded before it
//! reaches a client (an error frame, or a close reason of at most 123 bytes).

use serde::Deserialize;

/// Longest code the hub passes on from a backend (a machine-readable word).
const MAX_CODE_CHARS: usize = 64;
/// Longest message the hub passes on from a backend in an error frame.
const MAX_MESSAGE_CHARS: usize = 256;

/// The `error` object of an answer, as the backend wrote it.
#[derive(Debug, Default, Deserialize)]
pub struct BackendError {
    code: Option<String>,
    message: Option<String>,
}

/// A refusal as the client sees it: the backend's code and message, cut to size, with defaults
/// for what the backend left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: String,
    pub message: String,
}

impl BackendError {
    pub fn refusal(self) -> Refusal {
        let cut = |text: Option<String>, max: usize, default: &str| {
            let text: String = text.unwrap_or_default().trim().chars().take(max).collect();
            if text.is_empty() {
                default.to_owned()
            } else {
                text
            }
        };
        Refusal {
            code: cut(self.code, MAX_CODE_CHARS, "forbidden"),
            message: cut(self.message, MAX_MESSAGE_CHARS, "refused by the backend"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_takes_the_backends_words_cut_to_size_with_defaults() {
        let e: BackendError =
            serde_json::from_str(r#"{"code":"bad_word","message":"mind your language"}"#)
                .expect("json");
        assert_eq!(
            e.refusal(),
            Refusal {
                code: "bad_word".into(),
                message: "mind your language".into()
            }
        );
        let e: BackendError = serde_json::from_str("{}").expect("json");
        assert_eq!(e.refusal().code, "forbidden");
        let long = format!(r#"{{"message":"{}"}}"#, "é".repeat(1000));
        let e: BackendError = serde_json::from_str(&long).expect("json");
        assert_eq!(e.refusal().message.chars().count(), MAX_MESSAGE_CHARS);
    }
}
