//! `headroom coordinator`: receives signals from a group's agents and drives its actuator.
//!
//! Agents POST [`Signal`](crate::signal::Signal)s; each (host, epoch, seq) is recorded once in
//! the SQLite state file (an append-only log, with a replay window per sender to tell resends
//! apart, see [`replay`]), so resends (at-least-once delivery) and coordinator restarts never
//! apply a signal twice. Every `decision_interval` each group sums its live hosts' current
//! demand, forecasts and decides with the model crate, and asks its actuator for the capacity
//! (rate-limited, logged with its reason). SIGHUP re-reads the token files; SIGTERM/SIGINT stop.

pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod group;
pub mod metrics;
pub mod replay;
pub mod state;
pub mod view;
pub mod writer;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};

use crate::actuator::{self, Actuator, Shared};
use crate::cli::CoordinatorArgs;
use crate::exit::{CONFIG_INVALID, Exit};
use auth::Tokens;
use config::{CoordinatorConfig, GroupConfig};
use group::{GroupState, Step};
use metrics::{ActuationLabel, GroupLabel, Metrics};
use state::{ActionRecord, State};
use view::GroupView;

/// Demand history restored into a group's forecaster at start, seconds.
const RESTORE_HISTORY_S: f64 = 14.0 * 86_400.0;
/// How often the state file's WAL is checkpointed (passively), off the commit path.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Unix seconds now.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One group at run time.
pub struct Group {
    /// Its configuration.
    pub config: GroupConfig,
    /// Hosts, forecaster, policy, last evaluation.
    pub state: Mutex<GroupState>,
    /// What applies its capacity.
    pub actuator: Actuator,
}

impl Group {
    /// The API view.
    pub fn view(&self, name: &str, now: f64) -> GroupView {
        locked(&self.state).view(name, self.actuator.kind(), now)
    }
}

/// Locks `m`, taking the data of a lock poisoned by a panic elsewhere: a group that stopped
/// deciding, or a state file that refused every signal, after one panicked request would be
/// worse than going on with what that request left.
pub fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the HTTP handlers and the decision loops share.
pub struct App {
    /// Groups by name.
    pub groups: BTreeMap<String, Arc<Group>>,
    /// Accepted tokens.
    pub tokens: Tokens,
    /// The state file.
    pub state: Arc<Mutex<State>>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Records received signals in group commits.
    pub writer: writer::Writer,
}

/// Runs the coordinator until SIGTERM or SIGINT.
pub fn run(args: CoordinatorArgs) -> anyhow::Result<()> {
    crate::logging::init(None);
    let config = CoordinatorConfig::load(&args)?;
    let tokens = Tokens::load(&config).map_err(|e| Exit::new(CONFIG_INVALID, e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(config, tokens))
}

async fn serve(
    config: CoordinatorConfig,
    loaded: BTreeMap<String, Vec<Vec<u8>>>,
) -> anyhow::Result<()> {
    let state = State::open(&config.state)?;
    let _checkpointer = state.checkpoint_in_background(&config.state, CHECKPOINT_EVERY)?;
    let shared = Shared::default();
    let start = now();
    let mut groups = BTreeMap::new();
    for (name, gc) in &config.groups {
        let actuator = Actuator::build(name, &gc.actuator, &shared).await?;
        let mut gs = GroupState::new(gc.clone(), start);
        gs.restore(
            &state.demand(name, start - RESTORE_HISTORY_S)?,
            state.latest_signals(name, start - gc.host_ttl.0)?,
            state.last_set(name)?,
            state.actions(name, 20)?,
            state.counts(name)?,
        );
        groups.insert(
            name.clone(),
            Arc::new(Group {
                config: gc.clone(),
                state: Mutex::new(gs),
                actuator,
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
    for name in app.groups.keys() {
        tokio::spawn(decision_loop(app.clone(), name.clone(), stop_rx.clone()));
    }
    tokio::spawn(prune_loop(app.clone(), config.retention.0, stop_rx.clone()));

    #[cfg(feature = "keda")]
    if let Some(keda) = &config.keda {
        let listener = tokio::net::TcpListener::bind(&keda.listen)
            .await
            .with_context(|| format!("binding keda.listen {}", keda.listen))?;
        println!(
            "keda external scaler listening on {}",
            listener.local_addr()?
        );
        let mut rx = stop_rx.clone();
        let board = shared.keda.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = actuator::keda::serve(listener, board, stop).await {
                tracing::error!("keda service stopped: {e:#}");
            }
        });
    }

    let listener = std::net::TcpListener::bind(&config.listen)
        .with_context(|| format!("binding listen address {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let service = api::router(app.clone()).into_make_service();
    let server = match &config.tls {
        Some(tls) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?;
            // HTTP/1.1 only, as over plain HTTP: HTTP/2 has no header timeout.
            let mut only_http1 = (*rustls.get_inner()).clone();
            only_http1.alpn_protocols = vec![b"http/1.1".to_vec()];
            rustls.reload_from_config(Arc::new(only_http1));
            println!("headroom coordinator listening on https://{addr}");
            let mut server = axum_server::from_tcp_rustls(listener, rustls);
            slow_client_limits(server.http_builder());
            tokio::spawn(server.handle(handle.clone()).serve(service))
        }
        None => {
            println!("headroom coordinator listening on http://{addr}");
            let mut server = axum_server::from_tcp(listener).acceptor(Http1Gate);
            slow_client_limits(server.http_builder());
            tokio::spawn(server.handle(handle.clone()).serve(service))
        }
    };
    tracing::info!(%addr, groups = app.groups.len(), state = %config.state.display(), "coordinator started");
    // Under systemd (Type=notify): units ordered after this one start once it accepts signals.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);

    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let (tokens, refused) = Tokens::reload(&config);
                app.tokens.set(tokens);
                for e in &refused {
                    tracing::error!("SIGHUP: {e}; no token of this file is accepted now");
                }
                tracing::info!(refused = refused.len(), "SIGHUP: token files reloaded");
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    handle.graceful_shutdown(Some(Duration::from_secs(5)));
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e).context("HTTP server"),
        Err(e) => Err(e).context("HTTP server task"),
    }
}

/// Evaluates one group every decision interval and applies what it decides.
async fn decision_loop(app: Arc<App>, name: String, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(group) = app.groups.get(&name).cloned() else {
        return;
    };
    let mut tick = tokio::time::interval(actuator::duration(group.config.decision_interval));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let label = GroupLabel {
        group: name.clone(),
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let reported = match group.actuator.current().await {
            Ok(c) => c.map(|c| c.desired),
            Err(e) => {
                tracing::warn!(group = %name, "reading actual capacity: {e}");
                None
            }
        };
        let t = now();
        // Forecasting may take milliseconds with a long history: keep it off the async workers.
        let (step, eval) = tokio::task::block_in_place(|| {
            let mut g = locked(&group.state);
            (g.evaluate(t, reported), g.evaluation().cloned())
        });
        if let Some(e) = &eval {
            // Not for a group no host has spoken for: that would publish its minimum.
            if e.live_hosts > 0 {
                group.actuator.seed(e.actual);
            }
            app.metrics
                .desired
                .get_or_create(&label)
                .set(i64::from(e.desired));
            app.metrics
                .actual
                .get_or_create(&label)
                .set(i64::from(e.actual));
            app.metrics.demand.get_or_create(&label).set(e.demand);
            app.metrics
                .hosts
                .get_or_create(&label)
                .set(e.live_hosts as i64);
            if e.live_hosts > 0 {
                let (db, demand) = (app.state.clone(), e.demand);
                let group_name = name.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if let Err(err) = locked(&db).add_demand(&group_name, t, demand) {
                        tracing::warn!(group = %group_name, "storing demand: {err:#}");
                    }
                })
                .await;
            }
        }
        let Some(step) = step else { continue };
        let record = act(&group, step).await;
        let outcome = if record.ok { "ok" } else { "error" };
        app.metrics
            .actuations
            .get_or_create(&ActuationLabel {
                group: name.clone(),
                kind: record.kind.clone(),
                outcome: outcome.into(),
            })
            .inc();
        locked(&group.state).record(record.clone());
        let db = app.state.clone();
        let group_name = name.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(err) = locked(&db).add_action(&group_name, &record) {
                tracing::warn!(group = %group_name, "storing action: {err:#}");
            }
        })
        .await;
    }
}

/// Runs one step on the group's actuator and describes it.
async fn act(group: &Group, step: Step) -> ActionRecord {
    let at = now();
    match step {
        Step::SetCapacity { from, to, reason } => {
            let result = group.actuator.set_capacity(to, from, &reason).await;
            match &result {
                Ok(applied) => {
                    tracing::info!(actuator = group.actuator.kind(), from, to, applied, %reason, "actuation")
                }
                Err(e) => {
                    tracing::warn!(actuator = group.actuator.kind(), from, to, %reason, "actuation failed: {e}")
                }
            }
            ActionRecord {
                at,
                kind: "set_capacity".into(),
                from: Some(from),
                to: Some(*result.as_ref().unwrap_or(&to)),
                host: None,
                reason,
                ok: result.is_ok(),
                detail: result.map_or_else(|e| e.to_string(), |n| format!("applied {n}")),
            }
        }
        Step::Replace {
            host,
            instance_id,
            reason,
        } => {
            let result = group
                .actuator
                .replace(&host, instance_id.as_deref(), &reason)
                .await;
            match &result {
                Ok(d) => {
                    tracing::info!(actuator = group.actuator.kind(), %host, %reason, "replacement: {d}")
                }
                Err(e) => {
                    tracing::warn!(actuator = group.actuator.kind(), %host, %reason, "replacement failed: {e}")
                }
            }
            ActionRecord {
                at,
                kind: "replace".into(),
                from: None,
                to: None,
                host: Some(host),
                reason,
                ok: result.is_ok(),
                detail: result.unwrap_or_else(|e| e.to_string()),
            }
        }
    }
}

/// Deletes stored data older than the retention, hourly.
async fn prune_loop(app: Arc<App>, retention_s: f64, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let db = app.state.clone();
        let before = now() - retention_s;
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(e) = locked(&db).prune(before) {
                tracing::warn!("pruning the state file: {e:#}");
            }
        })
        .await;
    }
}

/// Admits a plain-HTTP connection only once its first bytes show an HTTP/1 request, within
/// [`HEADER_READ_TIMEOUT`]. A client that sends nothing held its connection (and a
/// descriptor) for ever, since hyper starts its header timeout only with the first bytes; and
/// HTTP/2 by prior knowledge, which the API does not need, has no header timeout at all. TLS
/// connections have the handshake's own timeout and negotiate HTTP/1.1.
#[derive(Clone, Copy)]
struct Http1Gate;

impl<S: Send + 'static> axum_server::accept::Accept<tokio::net::TcpStream, S> for Http1Gate {
    type Stream = tokio::net::TcpStream;
    type Service = S;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = std::io::Result<(tokio::net::TcpStream, S)>> + Send>>;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        Box::pin(async move {
            let refuse = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
            let first = async {
                // Enough to tell `PRI * HTTP/2.0` from an HTTP/1 method.
                let mut head = [0u8; 3];
                loop {
                    let n = stream.peek(&mut head).await?;
                    if n == 0 || n == head.len() {
                        return Ok::<_, std::io::Error>(head[..n] == *b"PRI");
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            match tokio::time::timeout(HEADER_READ_TIMEOUT, first).await {
                Ok(Ok(false)) => Ok((stream, service)),
                Ok(Ok(true)) => Err(refuse("HTTP/2 by prior knowledge")),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(refuse("nothing received")),
            }
        })
    }
}

/// How long a client may take to send a request's headers before its connection is closed.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Closes connections whose headers do not arrive within [`HEADER_READ_TIMEOUT`]: hyper only
/// enforces its header timeout when given a timer, and without one a slowloris client
/// (trickling header bytes) holds a connection and a descriptor forever.
fn slow_client_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
}
