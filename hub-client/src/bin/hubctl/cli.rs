//! hubctl's command line: `sub`, `pub` and `api` with their flags (clap; unknown flags are
//! errors). Secrets can come from the environment (`HUB_TOKEN`, `HUB_API_KEY`) rather than the
//! command line, where other users of the machine could read them; help never shows their values.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hubctl",
    version,
    about = "Talk to a realtime-hub: subscribe, publish, and call its server API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every message of ROOM as one JSON line (the hub's frame), exactly once and in order,
    /// across reconnects, until interrupted.
    Sub(Sub),
    /// Publish TEXT to ROOM and print the ack: {"id":…,"offset":…}.
    #[command(name = "pub")]
    Pub(Pub),
    /// Call the hub's server API and print its JSON answer.
    Api(Api),
}

#[derive(Debug, Args)]
pub struct Connection {
    /// The hub's WebSocket URL, e.g. ws://localhost:8080/ws.
    #[arg(long, value_name = "WS_URL")]
    pub url: String,
    /// A JWT, for hubs with auth_mode = jwt.
    #[arg(long, value_name = "T", env = "HUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct Sub {
    #[command(flatten)]
    pub connection: Connection,
    /// First print the last N messages of the room's history.
    #[arg(long, value_name = "N")]
    pub history: Option<u32>,
    pub room: String,
}

#[derive(Debug, Args)]
pub struct Pub {
    #[command(flatten)]
    pub connection: Connection,
    /// Give up (exit 1) when the hub has not acknowledged the message by then.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    pub room: String,
    pub text: String,
}

#[derive(Debug, Args)]
pub struct Api {
    /// The hub's server API URL, e.g. http://127.0.0.1:8090.
    #[arg(long, value_name = "API_URL")]
    pub url: String,
    /// One of the hub's HUB_API_KEYS.
    #[arg(long, value_name = "KEY", env = "HUB_API_KEY", hide_env_values = true)]
    pub key: String,
    /// Give up when the API has not answered by then.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    #[command(subcommand)]
    pub call: ApiCall,
}

#[derive(Debug, Args)]
pub struct AsUser {
    /// Publish as this user id (default: "api").
    #[arg(long, value_name = "ID")]
    pub user_id: Option<String>,
    /// The user's display name (with --user-id).
    #[arg(long, value_name = "NAME", requires = "user_id")]
    pub user_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApiCall {
    /// POST /api/publish: store TEXT in ROOM's history and deliver it on every hub.
    Publish {
        room: String,
        text: String,
        #[command(flatten)]
        user: AsUser,
        /// The same key within 5 minutes publishes nothing and answers the first result.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// POST /api/publish/batch: every message of FILE, one JSON object a line
    /// ({"room","content","user"?,"idempotency_key"?}; - reads stdin), 100 to a request, in order.
    /// Prints one line per message: {"id","offset","epoch"} or {"error":{"code","message"}}.
    PublishBatch {
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// POST /api/broadcast: TEXT to every client on every hub.
    Broadcast {
        text: String,
        #[command(flatten)]
        user: AsUser,
    },
    /// GET /api/rooms: every room with members, across every hub.
    Rooms,
    /// GET /api/rooms/{ROOM}/presence: who is in ROOM, across every hub.
    Presence { room: String },
    /// GET /api/rooms/{ROOM}/history: the stored messages, oldest first.
    History {
        room: String,
        /// Only the last N.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Every message after --since-offset of this epoch (all or nothing).
        #[arg(long, value_name = "EPOCH", requires = "since_offset")]
        since_epoch: Option<String>,
        #[arg(long, value_name = "OFFSET", requires = "since_epoch")]
        since_offset: Option<u64>,
    },
    /// GET /api/hubs: every live hub with its figures.
    Hubs,
    /// POST /api/disconnect: close every connection of USER on every hub (close 4003).
    Disconnect { user: String },
}
