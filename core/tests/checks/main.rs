//! Log watching and synthetic checks against real peers: real files rotated for real in a
//! temporary directory, loopback HTTP, HTTPS and TCP servers.

mod logs;
mod probes;
