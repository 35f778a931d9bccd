//! What both headroom binaries share, written once so that the two cannot drift: the
//! [`signal::Signal`] the agent sends and the coordinator applies, the [`id`] rule, the
//! [`duration`] syntax, [`token`] files, [`config`] loading with every problem reported,
//! [`logging`], how the policy's [`memory`] is stored, the [`schedule`] entries of a
//! configuration, peers' base [`url`]s, [`exit`] codes, the [`clock`], how the CLIs print to [`stdout`], and the
//! [`cli`] arguments of the commands the coordinator binary serves.
//!
//! No sockets, no SQLite: the agent links this crate and nothing of the coordinator's stack.
//! It depends on the pure `model` only (a schedule entry is checked by building its model).

pub mod cli;
pub mod clock;
pub mod config;
pub mod duration;
pub mod exclusive;
pub mod exit;
pub mod id;
pub mod logging;
pub mod memory;
pub mod schedule;
pub mod signal;
pub mod stdout;
pub mod tls;
pub mod token;
pub mod url;
