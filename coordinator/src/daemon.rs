//! `headroom coordinator`: the wiring of the running coordinator. It opens the state file,
//! restores each group from it, starts the decision loops, the hourly prune, the etcd session
//! (with `[lease]`), the KEDA service and the HTTP listener, then waits for signals: SIGHUP
//! re-reads the token files, SIGTERM and SIGINT stop it: the decision loops first (an
//! actuation in flight finishes, none starts), then the lease is revoked.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use headroom_common::cli::CoordinatorArgs;
use headroom_common::clock::unix_now;
use headroom_common::exit::Exit;
use tokio::signal::unix::{SignalKind, signal};

use crate::actuator::{Actuator, ActuatorConfig, Shared};
use crate::app::{App, Group};
use crate::auth::{GroupTokens, Tokens};
use crate::config::CoordinatorConfig;
use crate::group::GroupState;
use crate::lease::Lease;
use crate::lock::locked;
use crate::metrics::Metrics;
use crate::state::State;
use crate::{api, decision, http, writer};

/// Replacements looked at, at start, to not repeat one made before a restart (one per host
/// in an unhealthy streak at most).
const REPLACEMENTS_RESTORED: usize = 1000;

/// Demand history restored into a group's forecaster at start, seconds.
pub(crate) const RESTORE_HISTORY_S: f64 = 14.0 * 86_400.0;
/// How often the state file's WAL is checkpointed (passively), off the commit path.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Ledger hours read back at start: the day `headroom groups` shows.
const LEDGER_RESTORED_S: f64 = 25.0 * 3600.0;

/// How often stored data past its retention is deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Runs the coordinator until SIGTERM or SIGINT.
pub fn run(args: &CoordinatorArgs) -> anyhow::Result<()> {
    headroom_common::logging::init(None);
    let (config, tokens) = Tokens::load(args).map_err(Exit::config)?;
    let origin = CoordinatorConfig::origin(args);
    if args.check {
        if let Some(tls) = &config.tls {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .context("starting the tokio runtime")?
                .block_on(crate::http::server_tls(tls))
                .map_err(|e| Exit::config(format!("{}: tls: {e:#}", origin.display())))?;
        }
        let n = config.groups.len();
        let mut said = format!(
            "{}: valid ({n} group{}; every token file passes the rule, read as this user)\n",
            origin.display(),
            if n == 1 { "" } else { "s" }
        );
        for (name, g) in &config.groups {
            if let ActuatorConfig::Command(c) = &g.actuator
                && !crate::actuator::command::program_found(&c.program)
            {
                said.push_str(&format!(
                    "note: groups.{name}.actuator.program: {:?} is no executable file here, as \
                     this user (on PATH for a bare name); the hook would fail to start\n",
                    c.program
                ));
            }
        }
        return headroom_common::stdout::print(&said);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(config, tokens, args))
}

async fn serve(
    config: CoordinatorConfig,
    loaded: GroupTokens,
    args: &CoordinatorArgs,
) -> anyhow::Result<()> {
    // The file as started from: a SIGHUP re-reads the token files only, and says so when the
    // file changed since (and whether it would start).
    let started_from = args
        .config
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let _lock = State::hold(&config.state)?;
    let state = State::open(&config.state)?;
    let _checkpointer = state.checkpoint_in_background(&config.state, CHECKPOINT_EVERY)?;
    let shared = Shared::default();
    let start = unix_now();
    // KEDA pulls the same value from every replica: its groups need no leader.
    let lease = config.lease.clone().map(|lc| {
        let governed = config
            .groups
            .iter()
            .filter(|(_, g)| !matches!(g.actuator, ActuatorConfig::Keda(_)))
            .map(|(name, _)| name.clone());
        Lease::new(lc, governed)
    });
    let mut groups = BTreeMap::new();
    for (name, gc) in &config.groups {
        let actuator = Actuator::build(name, &gc.actuator, &shared).await?;
        let mut gs = GroupState::new(gc.clone());
        gs.restore(
            &state.demand(name, start - RESTORE_HISTORY_S)?,
            state.latest_signals(name, start - gc.host_ttl.as_secs_f64())?,
            state.last_set(name)?,
            state.actions(name, 20)?,
            &state.actions_of_kind(name, "replace", REPLACEMENTS_RESTORED)?,
            state.counts(name)?,
        );
        gs.restore_ledger(state.ledger(name, start - LEDGER_RESTORED_S)?, start);
        gs.restore_warmups(state.warmups(name, crate::warmup::KEPT)?);
        if let Some(memory) = state.policy_memory(name)? {
            gs.restore_policy(memory);
        }
        groups.insert(
            name.clone(),
            Arc::new(Group {
                config: gc.clone(),
                state: Mutex::new(gs),
                actuator,
                lease: lease.clone().filter(|l| l.governs(name)),
            }),
        );
    }
    let tokens = Tokens::default();
    tokens.set(loaded);
    let state = Arc::new(Mutex::new(state));
    let app = Arc::new(App {
        groups,
        tokens,
        writer: writer::Writer::spawn(state.clone()),
        state,
        metrics: Metrics::new(),
        max_body_bytes: config.max_body_bytes,
    });

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut decision_loops = tokio::task::JoinSet::new();
    for name in app.groups.keys() {
        decision_loops.spawn(decision::run_group(
            app.clone(),
            name.clone(),
            stop_rx.clone(),
        ));
    }
    tokio::spawn(prune_loop(app.clone(), config.retention, stop_rx.clone()));
    // The lease stops on its own signal, after the decision loops: see the end of `run`.
    let (lease_stop_tx, lease_stop_rx) = tokio::sync::watch::channel(false);
    let lease_task = lease.map(|l| tokio::spawn(crate::lease::run(l, lease_stop_rx)));

    #[cfg(feature = "keda")]
    if let Some(keda) = &config.keda {
        let listener = tokio::net::TcpListener::bind(&keda.listen)
            .await
            .with_context(|| format!("binding keda.listen {}", keda.listen))?;
        crate::http::listening(&format!(
            "keda external scaler listening on {}",
            listener.local_addr()?
        ));
        let mut rx = stop_rx.clone();
        let board = shared.keda.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = crate::actuator::keda::serve(listener, board, stop).await {
                tracing::error!("keda service stopped: {e:#}");
            }
        });
    }

    let server = http::Server::start(&config, api::router(app.clone())).await?;
    tracing::info!(addr = %server.addr, groups = app.groups.len(), state = %config.state.display(), "coordinator started");
    // Under systemd (Type=notify): units ordered after this one start once it accepts signals.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let (tokens, refused) = Tokens::reload(&config);
                app.tokens.set(tokens);
                for p in &refused {
                    tracing::error!("SIGHUP: {}: {}; no token of this file is accepted now", p.key, p.reason);
                }
                tracing::info!(refused = refused.len(), "SIGHUP: token files reloaded");
                if let Some(path) = &args.config
                    && std::fs::read_to_string(path).ok() != started_from
                {
                    match Tokens::load(args) {
                        Ok(_) => tracing::warn!(
                            file = %path.display(),
                            "SIGHUP: the configuration changed since start: the running one's \
                             token files were re-read; every change in the file, its token \
                             files included, applies at the next restart"
                        ),
                        Err(e) => tracing::error!(
                            file = %path.display(),
                            "SIGHUP: the configuration changed since start and would not start \
                             as it is: {e}"
                        ),
                    }
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    // An actuation in flight finishes before the lease is handed over, or a standby that wins
    // at once would actuate beside it.
    let settled = tokio::time::timeout(DECISIONS_SETTLE, async {
        while decision_loops.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    if let Some(t) = lease_task {
        if settled {
            // Revokes the lease, so a standby takes the groups over now rather than at the TTL.
            let _ = lease_stop_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        } else {
            tracing::warn!(
                "an actuation is still running after {DECISIONS_SETTLE:?}: the lease is left to expire at its TTL rather than handed over now"
            );
        }
    }
    server.stop().await
}

/// How long a stopping coordinator waits for its decision loops (an actuation in flight) before
/// it stops without handing the lease over: inside the unit's `TimeoutStopSec` (30 s).
const DECISIONS_SETTLE: Duration = Duration::from_secs(20);

/// Deletes stored data older than the retention, hourly.
async fn prune_loop(
    app: Arc<App>,
    retention: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let db = app.state.clone();
        let before = unix_now() - retention.as_secs_f64();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = locked(&db).prune(before) {
                tracing::warn!("pruning the state file: {e:#}");
            }
        })
        .await;
    }
}
