//! The HTTP API: `POST /v1/signals`, `GET /v1/groups`, `GET /v1/groups/{name}`, `/metrics`,
//! `/healthz`.
//!
//! For senders: `POST /v1/signals` takes one Signal or a JSON array of them (at most
//! `max_body_bytes`, default 64 KiB) with `Authorization: Bearer TOKEN` valid for every signal's
//! group. 200 means every signal of the request is durably recorded (its outcome is `applied`,
//! `stored` or `duplicate`): all are delivered and may leave the outbox. 401 (token), 400
//! (malformed or invalid signal) and 413 (split the batch) will not succeed on retry as they are;
//! 503, 408 (body not received within 10 s) and connection errors are worth a retry with backoff.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::auth::bearer;
use crate::lock::locked;
use crate::metrics::GroupLabel;
use crate::state::Outcome;
use crate::view::GroupsView;
use headroom_common::clock::unix_now;
use headroom_common::signal::{ErrorAnswer, SIGNAL_VERSION, Signal, SignalError, newer_version};

/// How long a sender may take to send a request's body, once its token is accepted.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether reading a body failed on the size limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The router over the shared coordinator state.
///
/// No route takes a body through an extractor: `POST /v1/signals` reads its own, bounded by
/// `max_body_bytes`, once the token is accepted.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/signals", post(post_signals))
        .route("/v1/groups", get(get_groups))
        .route("/v1/groups/{name}", get(get_group))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(app)
}

/// An error answer: `{"error": "..."}`.
/// A signal of a version this coordinator cannot read: 501, which the agent retries (keeping
/// the signal) until the coordinator is upgraded, rather than a 400 it would drop it for.
fn newer_than_this_coordinator(app: &App, version: u32) -> Response {
    app.metrics.reject("version");
    error(
        StatusCode::NOT_IMPLEMENTED,
        format!(
            "signal version {version} is newer than this coordinator reads (1 to {SIGNAL_VERSION}): \
             upgrade the coordinator; the agent keeps the signal and sends it again"
        ),
    )
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(ErrorAnswer {
            error: message.into(),
        }),
    )
        .into_response()
}

/// What happened to one signal of a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalResult {
    /// The signal's host.
    pub host: String,
    /// Its store epoch.
    pub epoch: String,
    /// Its seq.
    pub seq: u64,
    /// Applied, stored for audit, or a duplicate.
    pub outcome: Outcome,
}

/// The answer to `POST /v1/signals`: counts and one result per signal, in request order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestResponse {
    /// New, fresh signals that updated their group.
    pub applied: usize,
    /// New signals older than the signal TTL, stored for audit only.
    pub stored: usize,
    /// Signals seen before: acknowledged, not applied again.
    pub duplicates: usize,
    /// One per signal, in request order.
    pub results: Vec<SignalResult>,
}

async fn post_signals(State(app): State<Arc<App>>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let response = ingest(&app, &parts.headers, body).await;
    app.metrics
        .ingest_latency
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn ingest(app: &Arc<App>, headers: &HeaderMap, body: Body) -> Response {
    let Some(token) = bearer(headers.get(header::AUTHORIZATION)) else {
        app.metrics.reject("unauthorized");
        return error(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer TOKEN)",
        );
    };
    // A token that opens no group is refused before the body is looked at, so a client
    // without a valid token learns nothing about the body and costs no JSON parsing.
    if app.tokens.groups_for(token).is_empty() {
        app.metrics.reject("unauthorized");
        return error(StatusCode::UNAUTHORIZED, "token not valid for any group");
    }
    // The body is read only now, after the token, and within a time limit: a client without
    // a token, or one trickling its body, holds no connection for long.
    let read = tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, app.max_body_bytes),
    )
    .await;
    let body = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if is_length_limit(&e) => {
            app.metrics.reject("too_large");
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "body larger than {} bytes: send smaller batches",
                    app.max_body_bytes
                ),
            );
        }
        Ok(Err(e)) => {
            app.metrics.reject("malformed");
            return error(StatusCode::BAD_REQUEST, format!("cannot read body: {e}"));
        }
        Err(_) => {
            app.metrics.reject("malformed");
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!("body not received within {} s", BODY_READ_TIMEOUT.as_secs()),
            );
        }
    };
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let parsed = if batch {
        serde_json::from_slice::<Vec<Signal>>(&body)
    } else {
        serde_json::from_slice::<Signal>(&body).map(|s| vec![s])
    };
    let signals = match parsed {
        Ok(s) if s.is_empty() => {
            app.metrics.reject("malformed");
            return error(StatusCode::BAD_REQUEST, "empty batch");
        }
        Ok(s) => s,
        Err(e) => {
            if let Some(v) = newer_version(&body) {
                return newer_than_this_coordinator(app, v);
            }
            app.metrics.reject("malformed");
            return error(
                StatusCode::BAD_REQUEST,
                format!("malformed signal JSON: {e}"),
            );
        }
    };
    for (i, s) in signals.iter().enumerate() {
        match s.validate() {
            Ok(()) => {}
            Err(SignalError::Version(v)) if v > SIGNAL_VERSION => {
                return newer_than_this_coordinator(app, v);
            }
            Err(e) => {
                app.metrics.reject("invalid");
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("signal {i} (host {:?}, seq {}): {e}", s.host, s.seq),
                );
            }
        }
    }
    for s in &signals {
        if !app.groups.contains_key(&s.group) || !app.tokens.allows(&s.group, token) {
            app.metrics.reject("unauthorized");
            return error(
                StatusCode::UNAUTHORIZED,
                format!("token not valid for group {:?}", s.group),
            );
        }
    }
    let now = unix_now();
    // A signal's age is read on the agent's own clock (sent minus decided), so a host whose
    // clock is off neither has every signal taken for a backlog nor an old backlog for news.
    let fresh = signals
        .iter()
        .map(|s| {
            let ttl = app
                .groups
                .get(&s.group)
                .map_or(0.0, |g| g.config.signal_ttl.as_secs_f64());
            s.age_s() <= ttl
        })
        .collect();
    // Recording and applying run on their own task: a client that hangs up while its signals
    // commit must not leave them stored (answered as duplicates on the retry) but never
    // applied to the group.
    let task = tokio::spawn(record_and_apply(app.clone(), now, signals, fresh));
    task.await.unwrap_or_else(|e| {
        tracing::error!("recording signals: {e}");
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "recording signals failed",
        )
    })
}

/// Stores `signals` and applies the new ones to their groups; the response to the request.
async fn record_and_apply(
    app: Arc<App>,
    now: f64,
    signals: Vec<Signal>,
    fresh: Vec<bool>,
) -> Response {
    let (signals, outcomes) = match app.writer.record(now, signals, fresh).await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("{e}");
            app.metrics.reject("internal");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot store signals now; retry",
            );
        }
    };
    app.metrics.received.inc_by(signals.len() as u64);
    let mut response = IngestResponse {
        applied: 0,
        stored: 0,
        duplicates: 0,
        results: Vec::with_capacity(signals.len()),
    };
    // Outcomes per group, counted into the metrics once per request rather than per signal
    // (a request almost always carries one group).
    let mut tally: Vec<(String, [u64; 3])> = Vec::with_capacity(1);
    for (signal, outcome) in signals.into_iter().zip(outcomes) {
        let i = match outcome {
            Outcome::Applied => {
                response.applied += 1;
                0
            }
            Outcome::Stored => {
                response.stored += 1;
                1
            }
            Outcome::Duplicate => {
                response.duplicates += 1;
                2
            }
        };
        match tally.iter_mut().find(|(g, _)| *g == signal.group) {
            Some((_, n)) => n[i] += 1,
            None => {
                let mut n = [0; 3];
                n[i] = 1;
                tally.push((signal.group.clone(), n));
            }
        }
        response.results.push(SignalResult {
            host: signal.host.clone(),
            epoch: signal.epoch.clone(),
            seq: signal.seq,
            outcome,
        });
        if let Some(group) = app.groups.get(&signal.group) {
            locked(&group.state).ingest(signal, outcome, now);
        }
    }
    for (group, [applied, stored, duplicate]) in tally {
        let label = GroupLabel { group };
        for (family, n) in [
            (&app.metrics.applied, applied),
            (&app.metrics.stored, stored),
            (&app.metrics.duplicate, duplicate),
        ] {
            if n > 0 {
                family.get_or_create(&label).inc_by(n);
            }
        }
    }
    (StatusCode::OK, axum::Json(response)).into_response()
}

async fn get_groups(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(headers.get(header::AUTHORIZATION)) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer TOKEN)",
        );
    };
    let names = app.tokens.groups_for(token);
    if names.is_empty() {
        return error(StatusCode::UNAUTHORIZED, "token not valid for any group");
    }
    let now = unix_now();
    let groups = names
        .iter()
        .filter_map(|n| app.groups.get(n).map(|g| g.view(n, now)))
        .collect();
    axum::Json(GroupsView { groups }).into_response()
}

async fn get_group(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let Some(token) = bearer(headers.get(header::AUTHORIZATION)) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer TOKEN)",
        );
    };
    // The same answer whether or not the group exists: a token cannot probe group names.
    if !app.tokens.allows(&name, token) {
        return error(
            StatusCode::UNAUTHORIZED,
            format!("token not valid for group {name:?}"),
        );
    }
    let Some(group) = app.groups.get(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no group {name:?}"));
    };
    axum::Json(group.view(&name, unix_now())).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}
