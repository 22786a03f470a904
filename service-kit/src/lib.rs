//! What hub-server and hub-client-web share, written once: layered settings ([`settings`]), log
//! set-up ([`log`]), the stop signal ([`signal`]), the command line ([`cli`]) and the client of the
//! `healthcheck` subcommand ([`healthcheck`]).

pub mod cli;
pub mod healthcheck;
pub mod log;
pub mod settings;
pub mod signal;

pub use log::LogFormat;
pub use settings::{ConfigError, Layers};

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits). The hubs
/// refuse shorter `jwt_secrets`, and hub-client-web a shorter `jwt_secret`, which would only fail
/// later, on every sign-in.
pub const MIN_SECRET_BYTES: usize = 32;
