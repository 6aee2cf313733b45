//! The plugin host's integration tests, in one test binary so wasmtime is linked once: the
//! sandbox, capabilities and loading against hostile test guests; every bundled plugin against
//! a real peer on loopback; the SDK's README followed step by step; the alert pipeline end to
//! end through the bundled webhook. (`soak.rs` stays a binary of its own: it measures this
//! process's RSS, which other tests running beside it would disturb.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

#[path = "../common/mod.rs"]
mod common;
#[path = "../support/bundled_peers.rs"]
mod peers;

mod bundled_alertmanager;
mod bundled_email;
mod bundled_exec_recovery;
mod bundled_feature_flag;
mod bundled_slack;
mod bundled_sms_gateway;
mod bundled_webhook;
mod cache;
mod capabilities;
mod contract;
mod crash;
mod fleet;
mod guest_text;
mod hostile;
mod http_pool;
mod load;
mod pipeline;
mod sandbox;
mod sdk_readme;
mod shares;
mod templates;
mod wall_bound;
