//! Command line: `hub-client-web [--config FILE] [healthcheck]`, parsed by
//! [`service_kit::cli`] (the same shape as hub-server's); this is how it presents itself.

use service_kit::cli::Program;

pub const PROGRAM: Program = Program {
    name: "hub-client-web",
    version: env!("CARGO_PKG_VERSION"),
    about: "Serves the realtime-hub chat page (and its status page) paired with one hub-server",
    after_help: "\
Settings: built-in defaults, then FILE (TOML), then the environment
(WEB_LISTEN, HUB_URL, WEB_HUB_PORT, WEB_HUB_PATH, WEB_TITLE, WEB_HUB_LABEL, WEB_RECONNECT_MIN,
WEB_RECONNECT_MAX, WEB_REQUEST_HEADER_TIMEOUT, WEB_LOG_FORMAT, WEB_JWT_SECRET, WEB_TOKEN_TTL,
WEB_JWT_ISSUER, WEB_JWT_AUDIENCE, WEB_API_URLS, WEB_API_KEY).",
};
