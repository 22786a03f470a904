//! `hubctl api publish-batch FILE`: the messages of a JSON-lines file (or stdin) published through
//! `POST /api/publish/batch`, 100 to a request, one request after the other so that the file's
//! order holds. Every line is read and checked before anything is sent. One result line per
//! message on stdout, in the file's order; fails (exit 1) when any message was refused, or when a
//! request failed whole (the lines printed before it were published, none after).

use std::io::Read;

use hub_client::api::{ApiClient, ApiError, BatchMessage, Published};
use serde_json::{Value, json};

/// Most messages in one request (the API's bound).
const PER_REQUEST: usize = 100;

pub async fn run(api: &ApiClient, file: &str) -> Result<(), String> {
    let messages = parse(&read(file)?)?;
    if messages.is_empty() {
        return Err(format!("{file}: no messages"));
    }
    let mut refused = 0;
    for (n, chunk) in messages.chunks(PER_REQUEST).enumerate() {
        let results = api.publish_batch(chunk).await.map_err(|e| {
            format!(
                "{e} (the {} messages before were sent, none after)",
                n * PER_REQUEST
            )
        })?;
        for result in results {
            refused += usize::from(result.is_err());
            println!("{}", line(result));
        }
    }
    if refused > 0 {
        return Err(format!("{refused} of {} messages refused", messages.len()));
    }
    Ok(())
}

fn read(file: &str) -> Result<String, String> {
    let mut text = String::new();
    let read = if file == "-" {
        std::io::stdin().read_to_string(&mut text).map(drop)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text).map(drop))
    };
    read.map_err(|e| format!("cannot read {file}: {e}"))?;
    Ok(text)
}

/// One message a line; blank lines are skipped. A bad line fails the whole file, by number.
fn parse(text: &str) -> Result<Vec<BatchMessage>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

fn line(result: Result<Published, ApiError>) -> Value {
    match result {
        Ok(published) => json!({
            "id": published.id,
            "offset": published.offset,
            "epoch": published.epoch,
        }),
        Err(e) => json!({"error": {"code": e.code, "message": e.message}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_messages_and_a_bad_one_is_named() {
        let text = r#"{"room":"a","content":"x"}

{"room":"b","content":"y","idempotency_key":"k"}
"#;
        let messages = parse(text).expect("two messages");
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].idempotency_key.as_deref(), Some("k"));
        let bad = parse("{\"room\":\"a\",\"content\":\"x\"}\n{\"room\":\"a\"}\n").expect_err("bad");
        assert!(bad.starts_with("line 2:"), "{bad}");
        let unknown = parse(r#"{"room":"a","content":"x","colour":1}"#).expect_err("unknown");
        assert!(unknown.contains("colour"), "{unknown}");
    }
}
