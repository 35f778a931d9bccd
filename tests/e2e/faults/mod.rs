//! Fault tests of the built `headroom` binary, a module per fault: kill -9 at random moments
//! ([`crash`]), a full state filesystem ([`disk`]), a damaged history ([`damaged`]), broken /proc files ([`proc`]), hostile
//! control-socket clients ([`control`]) and recovery times ([`recovery`]); coordinator outages
//! are [`crate::delivery`]'s. Real processes, real SQLite files, real HTTP on 127.0.0.1, a fake
//! proc root copied from the real /proc.
//!
//! Long variants are `#[ignore]`d; each documents its command.

mod control;
mod crash;
mod damaged;
mod disk;
mod proc;
mod recovery;
