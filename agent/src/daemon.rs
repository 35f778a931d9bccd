//! `headroom agent`: wires the sampler, pipeline, store writer, control socket, metrics
//! endpoint and signal sender to clocks, files and sockets.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use headroom_collector::{Sampler, SamplerConfig};

use crate::cli::AgentArgs;
use crate::config::Config;
use crate::pipeline::{
    Control, Pipeline, PipelineControl, PipelineParts, Refill, Shared, Snapshot, host_forecast,
};
use crate::store::{Reader, Rollup, StoreError, Writer, aside};
use crate::{control, metrics, paths, sender};
use headroom_common::clock::unix_now;
use headroom_common::exit::Exit;
use headroom_model::PolicyMemory;

/// The default configuration path; missing there means defaults.
pub const DEFAULT_CONFIG: &str = "/etc/headroom/headroom.toml";

/// Loads the configuration or fails with exit code 64.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path, path == Path::new(DEFAULT_CONFIG)).map_err(Exit::config)
}

/// The host id: configured, else /etc/machine-id, else the kernel's hostname.
fn host_id(cfg: &Config) -> String {
    if !cfg.agent.host_id.is_empty() {
        return cfg.agent.host_id.clone();
    }
    for path in ["/etc/machine-id", "/proc/sys/kernel/hostname"] {
        if let Ok(s) = std::fs::read_to_string(path) {
            let s = s.trim();
            if !s.is_empty() {
                return s.to_string();
            }
        }
    }
    "unknown-host".into()
}

/// The systemd watchdog period: `$WATCHDOG_USEC`, when `$WATCHDOG_PID` is unset (as libsystemd
/// accepts) or names this process.
fn watchdog_period(interval: Duration) -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    let period = Duration::from_micros(usec);
    if period < interval * 2 {
        tracing::warn!(
            watchdog_ms = period.as_millis() as u64,
            interval_ms = interval.as_millis() as u64,
            "WatchdogSec is under twice agent.interval: pings come once per tick and may be late"
        );
    }
    Some(period)
}

/// This host's EC2 instance id from IMDSv2, when an endpoint is configured.
fn instance_id(cfg: &Config) -> Option<String> {
    let endpoint = &cfg.coordinator.imds_endpoint;
    if endpoint.is_empty() {
        return None;
    }
    match crate::imds::instance_id(endpoint, Duration::from_secs(2)) {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::warn!(error = %e, endpoint, "instance id lookup failed; signals go without it");
            None
        }
    }
}

/// Page cache of the start-up scan of stored history, KiB: it reads each page once.
const REFILL_CACHE_KIB: u32 = 64;

/// Holds the state directory for this process: one agent per database, or two would write
/// the same history and send the same outbox.
fn lock_state_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    Ok(headroom_common::exclusive::hold(
        &dir.join("headroom.lock"),
        dir,
        "headroom agent",
    )?)
}

/// Runs the agent until SIGTERM or SIGINT.
pub fn run(args: &AgentArgs) -> anyhow::Result<()> {
    let cfg = Arc::new(load_config(&args.config)?);
    headroom_common::logging::init(Some(&cfg.agent.log));
    let state_dir = paths::state_dir(&cfg.agent.state_directory)?;
    if !state_dir.exists() {
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating state directory {}", state_dir.display()))?;
        std::fs::set_permissions(&state_dir, std::fs::Permissions::from_mode(0o750)).ok();
    }
    let _lock = lock_state_dir(&state_dir)?;
    let db_path = state_dir.join("headroom.db");
    let started = Instant::now();
    let History {
        store,
        refill,
        policy_memory,
        unrolled,
        set_aside,
    } = open_history(&db_path, &cfg)?;
    let epoch = store.epoch().to_string();

    let sampler_cfg = SamplerConfig {
        proc_root: cfg.sources.proc_root.clone(),
        sys_root: cfg.sources.sys_root.clone(),
        interval: cfg.agent.interval,
        ring_capacity: cfg.sources.ring_capacity,
        include_loopback: cfg.sources.include_loopback,
        app_endpoint: (!cfg.sources.app.endpoint.is_empty())
            .then(|| cfg.sources.app.endpoint.clone()),
        app_gauges: cfg.sources.app.gauges.clone(),
        app_timeout: cfg.sources.app.timeout,
        sock_diag: cfg.sources.sock_diag,
        ..SamplerConfig::default()
    };
    let (sampler, rx) = Sampler::spawn(sampler_cfg).context("starting the sampler")?;
    let capacity = cfg.model.capacity_in_force(&cfg.sources.proc_root);
    let host = host_id(&cfg);
    let committed = Reader::open(&db_path)
        .and_then(|r| r.committed())
        .unwrap_or_default();
    let shared = Shared::new(Snapshot::starting(
        &cfg,
        host.clone(),
        capacity,
        committed,
        db_path.clone(),
        unix_now(),
    ));
    shared.lock().history_set_aside = set_aside.map(|p| p.display().to_string());

    // Batches in flight to the writer: one per rollup close, so 256 is many minutes of a
    // writer stuck inside SQLite; the channel's slots are all written up front, so it stays
    // small. The writer keeps its own backlog of batches that failed to commit.
    let (writer_tx, writer_rx) = mpsc::sync_channel(256);
    let (writer_done_tx, writer_done_rx) = mpsc::channel();
    let writer = {
        let (shared, retention) = (shared.clone(), cfg.retention());
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                crate::pipeline::run_writer(store, writer_rx, shared, retention, writer_done_tx)
            })
            .context("starting the store writer")?
    };

    let watchdog = watchdog_period(cfg.agent.interval);
    let mut last_ping = Instant::now();
    let watched = shared.clone();
    // Pinged from the pipeline thread after each completed tick, only while the store writer
    // makes progress: a stalled pipeline stops the pings and systemd restarts the agent.
    let on_tick: Box<dyn FnMut() + Send> = Box::new(move || {
        if let Some(period) = watchdog
            && last_ping.elapsed() >= period / 4
            && watched.lock().progressing(period / 2)
        {
            last_ping = Instant::now();
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        }
    });
    let (control_tx, control_rx) = mpsc::channel();
    let pipeline = Pipeline::new(PipelineParts {
        cfg: cfg.clone(),
        capacity,
        rx,
        stats: sampler.stats().clone(),
        writer: writer_tx.clone(),
        shared: shared.clone(),
        control: control_rx,
        state_dir: state_dir.clone(),
        refill,
        policy_memory,
        unrolled,
        on_tick,
        instance_id: instance_id(&cfg),
    });
    let pipeline = std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || pipeline.run())
        .context("starting the pipeline")?;
    let control = PipelineControl::new(control_tx, pipeline.thread().clone());

    // The sender reads the outbox and hands what became of each signal to the store writer.
    let sender_stop = sender::spawn(&cfg, &db_path, writer_tx, shared.clone())?;

    let socket_path = paths::agent_socket(&cfg.agent.socket)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let bound = Arc::new(control::BoundSocket::default());
    let result = runtime.block_on(serve(
        &args.config,
        cfg.clone(),
        socket_path.clone(),
        shared.clone(),
        control.clone(),
        &epoch,
        &host,
        started,
        bound.clone(),
    ));

    control.send(Control::Stop);
    let _ = pipeline.join();
    // The writer ends once every sender of batches has gone: the pipeline (joined above),
    // then the sender (which waits at most one request timeout).
    if let Some(stop) = sender_stop {
        stop.stop();
    }
    // A writer still inside SQLite after 30 s is left to the process's exit.
    match writer_done_rx.recv_timeout(Duration::from_secs(30)) {
        Err(mpsc::RecvTimeoutError::Timeout) => {
            tracing::error!("the store writer did not finish within 30 s; stopping without it");
        }
        _ => {
            let _ = writer.join();
        }
    }
    sampler.stop();
    // Only the socket this agent bound: neither a refused start nor an agent whose socket
    // another one replaced may unlink a running agent's.
    bound.remove(&socket_path);
    tracing::info!("stopped");
    result
}

/// The history the agent starts from.
struct History {
    store: Writer,
    refill: Refill,
    policy_memory: Option<PolicyMemory>,
    /// The minute a kill -9 left open, folded from its 10-second rows.
    unrolled: Vec<Rollup>,
    /// Where a damaged file was set aside at this start, if one was.
    set_aside: Option<PathBuf>,
}

/// Opens the history at `db_path` and reads what the pipeline starts from. A file these first
/// reads find damaged, or one a running agent marked damaged and SQLite's `quick_check` fails,
/// is set aside and a new history started ([`aside`]); any other failure (a newer headroom's
/// file, a read-only one) stops the start with its reason.
fn open_history(db_path: &Path, cfg: &Config) -> anyhow::Result<History> {
    let mut set_aside = None;
    if aside::marked_damaged(db_path) {
        if !db_path.exists() {
            // The operator moved it: a new history starts anyway.
            aside::clear_mark(db_path);
        } else if aside::passes_quick_check(db_path)
            .with_context(|| format!("checking {}", db_path.display()))?
        {
            aside::clear_mark(db_path);
            tracing::warn!(
                database = %db_path.display(),
                "the history was marked damaged while running, but it passes SQLite's quick_check \
                 (repaired or restored?): kept, the mark removed"
            );
        } else {
            set_aside =
                set_damaged_aside(db_path, "marked damaged while running; quick_check fails")?;
        }
    }
    let read = match read_history(db_path, cfg) {
        Err(e) if set_aside.is_none() && damaged(&e) => {
            set_aside = set_damaged_aside(db_path, &format!("{e:#}"))?;
            read_history(db_path, cfg)
        }
        read => read,
    };
    let (store, refill, policy_memory, unrolled) = read?;
    Ok(History {
        store,
        refill,
        policy_memory,
        unrolled,
        set_aside,
    })
}

type Read = (Writer, Refill, Option<PolicyMemory>, Vec<Rollup>);

fn read_history(db_path: &Path, cfg: &Config) -> anyhow::Result<Read> {
    let store = Writer::open(db_path, cfg.store.cache_kib)
        .with_context(|| format!("opening {}", db_path.display()))?;
    let reader = Reader::open_with_cache(db_path, REFILL_CACHE_KIB)
        .with_context(|| format!("opening {}", db_path.display()))?;
    let now = unix_now();
    let refill = Refill::from_store(&reader, &cfg.model.demand, host_forecast(cfg), now)
        .with_context(|| format!("reading stored history from {}", db_path.display()))?;
    let policy_memory = reader
        .policy_memory(&cfg.model.demand)
        .with_context(|| format!("reading the policy memory from {}", db_path.display()))?;
    let unrolled = reader
        .unrolled_minute(now)
        .with_context(|| format!("reading the last minute from {}", db_path.display()))?;
    Ok((store, refill, policy_memory, unrolled))
}

/// Whether `e` says the database file is damaged (every read of the start is the store's, so
/// its error is in the chain).
fn damaged(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<StoreError>()
            .is_some_and(StoreError::is_damaged)
    })
}

/// Sets the damaged history aside and says so; where it went (`None`: no file was there).
fn set_damaged_aside(db_path: &Path, why: &str) -> anyhow::Result<Option<PathBuf>> {
    let kept = aside::set_aside(db_path, unix_now())
        .with_context(|| format!("setting the damaged {} aside", db_path.display()))?;
    if let Some(kept) = &kept {
        tracing::error!(
            database = %db_path.display(),
            kept = %kept.display(),
            why,
            "the history is damaged: set aside, a new one starts (what the host had learned, \
             and the signals not yet delivered, stay in the kept file only)"
        );
    }
    Ok(kept)
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    config_path: &Path,
    cfg: Arc<Config>,
    socket_path: PathBuf,
    shared: Arc<Shared>,
    control: PipelineControl,
    epoch: &str,
    host: &str,
    started: Instant,
    bound: Arc<control::BoundSocket>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = control::bind(&socket_path)?;
    bound.record(&socket_path);
    let control_task = tokio::spawn(control::serve(
        listener,
        socket_path.clone(),
        bound,
        shared.clone(),
    ));
    let metrics_task = if cfg.metrics.listen.is_empty() {
        None
    } else {
        let addr = cfg.metrics.listen.clone();
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding the metrics endpoint {addr}"))?;
        Some(tokio::spawn(metrics::serve(listener, shared.clone())))
    };
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    tracing::info!(
        socket = %socket_path.display(),
        host,
        epoch,
        database = %shared.lock().db_path.display(),
        startup_ms = started.elapsed().as_millis() as u64,
        "agent ready"
    );
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                match load_config(config_path) {
                    Ok(new) => {
                        shared.lock().reload_refused = None;
                        control.send(Control::Reload(Arc::new(new)));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "reloading the configuration failed; keeping the old one");
                        // The first line: the file and how many problems (the log has them all).
                        let first = format!("{e:#}").lines().next().unwrap_or_default().to_string();
                        shared.lock().reload_refused = Some(first);
                    }
                }
            }
        }
    }
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    tracing::info!("stopping: flushing history");
    control_task.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SCHEMA_VERSION;

    /// The files of `dir` whose name starts with `headroom.db.damaged-`.
    fn kept(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("headroom.db.damaged-")
            })
            .count()
    }

    #[test]
    fn only_damage_is_set_aside() {
        let cfg = Config::default();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("headroom.db");

        // A newer headroom's file (a rollback): refused, left where it is.
        drop(Writer::open(&db, 256).unwrap());
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = open_history(&db, &cfg)
            .err()
            .expect("a newer file was taken");
        assert!(format!("{e:#}").contains("newer"), "{e:#}");
        assert!(db.exists());
        assert_eq!(kept(dir.path()), 0);
        let c = rusqlite::Connection::open(&db).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION)
            .unwrap();
        drop(c);

        // Marked damaged, but sound (repaired, restored, or a one-off error): kept, the mark
        // removed.
        aside::mark_damaged(&db);
        let h = open_history(&db, &cfg).unwrap();
        assert_eq!(h.set_aside, None);
        assert!(!aside::marked_damaged(&db));
        assert_eq!(kept(dir.path()), 0);
        drop(h);

        // Not a database: set aside, and a new history opens.
        std::fs::write(&db, vec![0x5a_u8; 8192]).unwrap();
        let h = open_history(&db, &cfg).unwrap();
        let moved = h.set_aside.clone().expect("set aside");
        assert_eq!(std::fs::read(&moved).unwrap(), vec![0x5a_u8; 8192]);
        assert_eq!(kept(dir.path()), 1);
    }
}
