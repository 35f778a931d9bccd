//! The library behind the `headroom` binary: the agent daemon, its local CLI and the replay
//! tools (`backtest`, `simulate`).
//!
//! The coordinator is its own crate and binary (`headroom-coordinator`); `headroom coordinator`
//! and `headroom groups` run it. This crate links none of its stack (cloud SDKs, gRPC, its
//! API server): what the two share, the Signal first, is in `headroom-common`.

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod health;
pub mod imds;
pub mod metrics;
pub mod paths;
pub mod pipeline;
pub mod query;
pub mod replay;
pub mod sender;
pub mod store;
