//! headroom's group coordinator: receives the agents' signals over HTTP, applies each exactly
//! once, decides every group's capacity from its summed demand with the same model code the
//! agents run, and drives the group's engine through an actuator.
//!
//! | module | job |
//! |---|---|
//! | [`daemon`] | wiring: state file, groups, listeners, signals (SIGHUP, SIGTERM) |
//! | [`app`], [`lock`], [`every`] | what the handlers and loops share; locks that survive a panic; a periodic pass's cadence |
//! | [`config`] | the TOML configuration and its validation |
//! | [`http`], [`api`], [`auth`] | the HTTP listener, the `/v1` routes, per-group tokens |
//! | [`writer`], [`state`], [`dedup`] | group commit of received signals, the SQLite state file, the per-sender dedup window |
//! | [`group`], [`decision`], [`ledger`], [`backfill`], [`warmup`] | a group's hosts, forecaster and policy; its decision loop; its ledger; its history rebuilt from signals received late; its instances' warm-up, measured |
//! | [`actuator`], [`protection`] | AWS Auto Scaling, KEDA, a command hook, dry-run; scale-in protection of busy instances |
//! | [`lease`], [`leading`] | which replica actuates a group: its election in etcd, fencing; one actuation's hold on it, call by call |
//! | [`view`], [`metrics`], [`client`] | what `/v1/groups` returns, `/metrics`, `headroom groups` |
//! | [`upcoming`] | `headroom schedule`: the next firings of each group's scheduled entries |
//!
//! The agent binary links none of this crate: it depends on `headroom-common` for the Signal.

pub mod actuator;
pub mod api;
pub mod app;
pub mod auth;
pub mod backfill;
pub mod client;
pub mod config;
pub mod daemon;
pub mod decision;
pub mod dedup;
pub mod every;
pub mod fault;
pub mod group;
pub mod http;
pub mod leading;
pub mod lease;
pub mod ledger;
pub mod lock;
pub mod metrics;
pub mod protection;
pub mod state;
pub mod upcoming;
pub mod view;
pub mod warmup;
pub mod writer;
