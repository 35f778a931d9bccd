//! High availability end to end: a real three-member etcd cluster on loopback, two or three
//! coordinator replicas with `[lease]` driving one Auto Scaling group on moto through the AWS
//! SDK, and real agents (each with a scripted application gauge as its demand) delivering
//! every signal to every replica.
//!
//! What is checked is what the replicas did (each one's actuation log, its state file) against
//! what the engine shows (moto's DesiredCapacity): one replica actuates at a time, a standby
//! takes over a killed leader, a paused leader sends nothing when it wakes, nobody actuates
//! without etcd's quorum. Timings are printed; their assertions are loose, as for any timing
//! on a shared 2-core machine.
//!
//! The failover figure: `cargo test --release --test e2e -- --ignored --nocapture failover`
//! (trials: `HEADROOM_FAILOVER_TRIALS`, default 3).

mod applied;
mod cluster;
mod deadline;
mod failover;
mod handover;
mod names;
mod partition;
mod pause;

use cluster::Actuation;

/// Replicas that switched places in the actuation log beyond `expected` handovers: each switch
/// from one replica to another that was not a handover is two replicas actuating in turn.
fn interleavings(log: &[Actuation], expected: usize) -> usize {
    let switches = log
        .windows(2)
        .filter(|w| w[0].replica != w[1].replica)
        .count();
    switches.saturating_sub(expected)
}
