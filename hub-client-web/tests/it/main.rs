//! Integration tests: the real server on free ports, one test binary.

mod server;
mod token;
