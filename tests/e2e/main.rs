//! The end-to-end tests of both binaries: real processes, real sockets on 127.0.0.1, real
//! SQLite files, a real moto server behind the AWS SDK, real systemd tools. One test binary,
//! a module per area; [`common`] is their one harness.
//!
//! Run `cargo build --workspace --bins` first: the tests run the binaries the workspace built
//! (a missing one fails with a line naming it). `cargo test --test e2e -- NAME` runs one area
//! or test.

mod common;

mod access;
mod agent;
mod api_requests;
mod aws;
mod coordinator;
mod delivery;
mod faults;
mod fleet;
mod ha;
mod ingest;
mod installed;
mod keda;
mod load;
mod packaging;
mod protection;
mod replay;
mod schedule;
mod warmup;
