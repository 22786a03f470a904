//! hub-client's integration tests with real processes: hubctl (the built binary) against real
//! hubs and a real Redis, and the README's example run as written. The conformance scenarios
//! have a runner of their own (`tests/conformance`).

#[allow(
    dead_code,
    reason = "shared with the conformance runner: each test binary uses a part"
)]
#[path = "../support/mod.rs"]
mod support;

mod env;
mod hubctl;
mod hubctl_api;
mod hubctl_pub;
mod hubctl_sub;
mod hubctl_usage;
mod readme;
mod sdk;
