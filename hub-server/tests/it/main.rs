//! The one integration-test binary of hub-server: real `redis-server` and real hub-server processes
//! on free loopback ports, driven by real WebSocket clients (one binary, shared support code, as in
//! zero-to-production, so the support code is compiled once and the tests run in parallel).

mod support;

mod cross_hub;
mod limits;
mod outage;
mod protocol;
mod shutdown;
mod standalone;
