//! Integration tests: the real server on free ports, one test binary.

mod cli;
mod server;
mod token;
