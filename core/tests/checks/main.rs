//! Log watching and synthetic checks against real peers: real files rotated for real in a
//! temporary directory, loopback HTTP, HTTPS and TCP servers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

mod logs;
mod probes;
