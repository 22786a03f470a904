//! Why the hub does not start: the one error [`crate::run`] returns, gathering what each part
//! refuses at start-up (a Redis URL, keys, the API listener). It sits above those parts, so
//! none of them depends on it.

/// Why the hub does not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Redis(#[from] crate::redis_link::BadRedisUrl),
    #[error(transparent)]
    Keys(#[from] crate::auth::KeyError),
    #[error(transparent)]
    ApiKeys(#[from] crate::auth::BadApiKeys),
    #[error("cannot listen on api_listen {addr}: {source}")]
    ApiListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}
