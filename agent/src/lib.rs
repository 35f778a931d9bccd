//! The library behind the `headroom` and `headroom-coordinator` binaries.
//!
//! Two binaries share these modules so that the agent, which runs on every VM, carries none
//! of the coordinator's code (AWS SDK, gRPC, TLS server): each binary links only what its
//! commands reach, and a smaller agent keeps fewer pages resident.

pub mod actuator;
pub mod cli;
pub mod config;
pub mod control;
pub mod coordinator;
pub mod daemon;
pub mod exit;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod paths;
pub mod pipeline;
pub mod query;
pub mod replay;
pub mod report;
pub mod sender;
pub mod signal;
pub mod store;
