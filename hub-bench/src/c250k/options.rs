//! The flags the coordinator and its workers share: the two rooms of every connection (the common
//! one and a personal one, by scheme) and how each client connects and reconnects.

use std::time::Duration;

/// Where a personal room comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PersonalScheme {
    /// Each client joins a room of its own, `<prefix><user>` (how the runs before personal rooms
    /// went).
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
    #[arg(long, value_enum, default_value = "user")]
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

    /// Whether `room` is `user`'s personal room (without building its name: this runs for every
    /// personal message).
    pub fn is_personal(&self, room: &str, user: u64) -> bool {
        let number = match self.personal {
            PersonalScheme::Join => room.strip_prefix(self.personal_prefix.as_str()),
            PersonalScheme::User => room.strip_prefix("user:u"),
        };
        number.and_then(|n| n.parse::<u64>().ok()) == Some(user)
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

    #[test]
    fn personal_room_names() {
        let mut r = Rooms {
            all_room: "all".into(),
            personal: PersonalScheme::Join,
            personal_prefix: "p-".into(),
        };
        assert!(r.is_personal("p-17", 17));
        assert!(!r.is_personal("p-17", 1));
        assert!(!r.is_personal("p-", 0));
        assert!(!r.is_personal("all", 0));
        r.personal = PersonalScheme::User;
        assert!(r.is_personal("user:u17", 17));
        assert!(!r.is_personal("p-17", 17));
    }
}
