//! A client of the hub's server API (README, "Server API"; `docs/api/openapi.json`): publish and
//! broadcast from a backend, and read rooms, presence, history and hubs. Each call is one HTTP
//! request with the API key; errors carry the API's code (`bad_room`, `unavailable`, …).
//!
//! ```no_run
//! # async fn demo() -> Result<(), hub_client::api::ApiError> {
//! use hub_client::api::ApiClient;
//!
//! let api = ApiClient::new("http://127.0.0.1:8090", "my-api-key-0123456789")?;
//! let stored = api.publish("general", "Deploy finished", None, Some("deploy-8812")).await?;
//! println!("stored at offset {:?}", stored.offset);
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod http;
mod models;

pub use client::ApiClient;
pub use error::ApiError;
pub use models::{BatchMessage, History, HistoryQuery, Published};
