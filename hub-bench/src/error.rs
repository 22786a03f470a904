//! Errors of the load tool, in one enum so each failure says which step and which peer went wrong.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BenchError {
    #[error("bad argument: {0}")]
    Usage(String),
    /// A task of the tool itself panicked or was cancelled.
    #[error("{0}")]
    Task(String),
    #[error("connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("{url}: handshake: {reason}")]
    Handshake { url: String, reason: String },
    #[error("{url}: timed out waiting for {what}")]
    Timeout { url: String, what: &'static str },
    #[error("websocket: {0}")]
    Ws(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    #[error("bad frame: {0}")]
    Frame(#[from] crate::eio::FrameError),
    #[error("/proc/{pid}: {reason}")]
    Proc { pid: u32, reason: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<tokio_tungstenite::tungstenite::Error> for BenchError {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        BenchError::Ws(Box::new(e))
    }
}
