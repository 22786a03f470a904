//! `hub-bench c250k`: a quarter of a million live connections over many hubs on one Redis (issue
//! 25, DESIGN section 19). The coordinator ([`coordinator`]) starts worker processes
//! ([`worker`], each holding at most an open-file limit's connections on one thread, every
//! connection a small task of [`conn`] over a minimal WebSocket codec, [`ws`]), then drives the
//! phases through the hubs' server API ([`api`]): everyone connected and in two rooms, a broadcast
//! to all, a message to the common room, personal messages at a fixed rate with one hub killed
//! meanwhile — its clients reconnect elsewhere with jittered backoff ([`backoff`]) and recover with
//! `join` + `since` — and the final count of what each connection got in each room ([`track`]).

use std::time::Duration;

pub mod api;
pub mod backoff;
pub mod conn;
pub mod control;
pub mod coordinator;
pub mod frames;
pub mod outcome;
pub mod schedule;
pub mod token;
pub mod track;
pub mod worker;
pub mod ws;

/// Where a personal room comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PersonalScheme {
    /// Each client joins a room of its own, `<prefix><user>` (until personal rooms exist).
    Join,
    /// The hub puts every connection in `user:<user id>` itself (DESIGN 17): no join frame; after a
    /// reconnect the client still joins it again with `since` to recover what it missed.
    User,
}

/// The two rooms of every connection.
#[derive(Debug, Clone, clap::Args)]
pub struct Rooms {
    /// The room every connection is in.
    #[arg(long, default_value = "all")]
    pub all_room: String,
    #[arg(long, value_enum, default_value = "join")]
    pub personal: PersonalScheme,
    /// `--personal join`: user N's room is `<prefix>N`.
    #[arg(long, default_value = "p-")]
    pub personal_prefix: String,
}

impl Rooms {
    pub fn user_id(user: u64) -> String {
        format!("u{user}")
    }

    pub fn personal_room(&self, user: u64) -> String {
        match self.personal {
            PersonalScheme::Join => format!("{}{user}", self.personal_prefix),
            PersonalScheme::User => format!("user:{}", Self::user_id(user)),
        }
    }

    /// The rooms a user's token grants: the common room and, for rooms it joins itself, its own
    /// (a personal room needs no grant).
    pub fn grants(&self, user: u64) -> Vec<String> {
        match self.personal {
            PersonalScheme::Join => vec![self.all_room.clone(), self.personal_room(user)],
            PersonalScheme::User => vec![self.all_room.clone()],
        }
    }
}

/// How each client connects and reconnects.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientOpts {
    /// First connects in flight at once, per worker.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Longest a connect + upgrade + both joins may take before the attempt counts as failed.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Reconnect backoff: attempt n waits a uniform draw below min(max, base × 2ⁿ).
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub backoff_base: Duration,
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub backoff_max: Duration,
    /// Lifetime of the clients' tokens (longer than the run).
    #[arg(long, default_value = "2h", value_parser = humantime::parse_duration)]
    pub token_ttl: Duration,
}

impl ClientOpts {
    /// The same options as flags, for a worker's command line.
    pub fn to_args(&self) -> Vec<String> {
        let d = |d: Duration| humantime::format_duration(d).to_string();
        vec![
            format!("--connect-concurrency={}", self.connect_concurrency),
            format!("--connect-timeout={}", d(self.connect_timeout)),
            format!("--backoff-base={}", d(self.backoff_base)),
            format!("--backoff-max={}", d(self.backoff_max)),
            format!("--token-ttl={}", d(self.token_ttl)),
        ]
    }
}

impl Rooms {
    pub fn to_args(&self) -> Vec<String> {
        vec![
            format!("--all-room={}", self.all_room),
            format!(
                "--personal={}",
                match self.personal {
                    PersonalScheme::Join => "join",
                    PersonalScheme::User => "user",
                }
            ),
            format!("--personal-prefix={}", self.personal_prefix),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_rooms_by_scheme() {
        let mut r = Rooms {
            all_room: "all".into(),
            personal: PersonalScheme::Join,
            personal_prefix: "p-".into(),
        };
        assert_eq!(r.personal_room(7), "p-7");
        assert_eq!(r.grants(7), ["all", "p-7"]);
        r.personal = PersonalScheme::User;
        assert_eq!(r.personal_room(7), "user:u7");
        assert_eq!(r.grants(7), ["all"]);
    }
}
