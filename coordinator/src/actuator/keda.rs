//! `keda`: serves KEDA's external scaler gRPC service so a Kubernetes ScaledObject follows
//! headroom's desired capacity.
//!
//! The ScaledObject names the group in its trigger metadata (`group: web`). GetMetricSpec
//! reports the metric with target 1 and GetMetrics the desired instance count, so the HPA that
//! KEDA drives computes `ceil(desired / 1)` replicas. IsActive is true while desired > 0.
//! KEDA pulls; "actuating" only publishes the value on the [`Board`]. The gRPC port has no
//! authentication of its own: bind it to the cluster network only.
//!
//! When the coordinator cannot decide for a group, because every host it heard from has gone
//! silent while the group should have instances, GetMetrics answers an error
//! (`UNAVAILABLE`), so KEDA's own `fallback` applies, or with `fallback_replicas = N` it
//! answers N. A group that has not decided yet (never deployed) always gets the error, and one
//! legitimately at zero (desired 0, no hosts) gets 0.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::{Actuate, ActuatorError, Capacity, KedaActuatorConfig};

/// Code generated from `proto/externalscaler.proto` by the build script.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("externalscaler");
}

use proto::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};

/// How often StreamIsActive repeats its answer.
const STREAM_EVERY: Duration = Duration::from_secs(5);

/// What one group publishes to KEDA.
#[derive(Debug, Clone)]
struct Entry {
    metric_name: String,
    desired: Option<u32>,
    /// Every host went silent while `desired` is above zero: no decision stands.
    lost: bool,
    /// What to answer meanwhile, if anything (else an error).
    fallback_replicas: Option<u32>,
}

impl Entry {
    /// The value KEDA is given, or why there is none.
    fn value(&self, name: &str) -> Result<u32, Status> {
        let desired = self
            .desired
            .ok_or_else(|| Status::unavailable(format!("group {name:?} has not decided yet")))?;
        match (self.lost, self.fallback_replicas) {
            (false, _) => Ok(desired),
            (true, Some(n)) => Ok(n),
            (true, None) => Err(Status::unavailable(format!(
                "group {name:?} lost every host it had: no decision (KEDA's fallback applies; \
                 or set fallback_replicas)"
            ))),
        }
    }
}

/// The desired capacities published to KEDA, by group.
#[derive(Debug, Clone, Default)]
pub struct Board {
    groups: Arc<RwLock<BTreeMap<String, Entry>>>,
}

impl Board {
    fn get(&self, group: &str) -> Option<Entry> {
        self.groups.read().ok()?.get(group).cloned()
    }

    fn set(&self, group: &str, entry: Entry) {
        if let Ok(mut g) = self.groups.write() {
            g.insert(group.to_string(), entry);
        }
    }

    /// The group a ScaledObject asks about: metadata `group`, else the only KEDA group.
    fn resolve(&self, r: &ScaledObjectRef) -> Result<(String, Entry), Status> {
        let groups = self
            .groups
            .read()
            .map_err(|_| Status::internal("board poisoned"))?;
        let name = match r.scaler_metadata.get("group") {
            Some(name) => name.clone(),
            None if groups.len() == 1 => groups.keys().next().cloned().unwrap_or_default(),
            None => return Err(Status::invalid_argument("trigger metadata needs `group`")),
        };
        let entry = groups
            .get(&name)
            .cloned()
            .ok_or_else(|| Status::not_found(format!("no keda group {name:?}")))?;
        Ok((name, entry))
    }
}

/// The actuator side: publishes desired capacity on the board.
pub struct Keda {
    group: String,
    board: Board,
}

impl Keda {
    /// Registers `group` on the board (no value until the first decision).
    pub fn new(group: &str, config: &KedaActuatorConfig, board: Board) -> Keda {
        board.set(
            group,
            Entry {
                metric_name: config.metric_name.clone(),
                desired: None,
                lost: false,
                fallback_replicas: config.fallback_replicas,
            },
        );
        Keda {
            group: group.to_string(),
            board,
        }
    }
}

impl Keda {
    /// Publishes `actual` if nothing is published yet.
    pub fn seed(&self, actual: u32) {
        if let Some(e) = self.board.get(&self.group)
            && e.desired.is_none()
        {
            self.board.set(
                &self.group,
                Entry {
                    desired: Some(actual),
                    ..e
                },
            );
            tracing::info!(group = %self.group, actual, "keda: published the group's capacity");
        }
    }

    /// Tells the board how many hosts the group heard from at its last evaluation.
    pub fn live_hosts(&self, live: usize) {
        let Some(e) = self.board.get(&self.group) else {
            return;
        };
        let lost = live == 0 && e.desired.is_some_and(|d| d > 0);
        if lost != e.lost {
            if lost {
                match e.fallback_replicas {
                    Some(n) => {
                        tracing::warn!(group = %self.group, fallback_replicas = n, "keda: every host went silent; answering fallback_replicas")
                    }
                    None => {
                        tracing::warn!(group = %self.group, "keda: every host went silent; answering an error so KEDA's fallback applies")
                    }
                }
            } else {
                tracing::info!(group = %self.group, "keda: hosts are back; answering the decision");
            }
            self.board.set(&self.group, Entry { lost, ..e });
        }
    }
}

impl Actuate for Keda {
    async fn current(&self) -> Result<Option<Capacity>, ActuatorError> {
        let desired = self.board.get(&self.group).and_then(|e| e.desired);
        Ok(desired.map(Capacity::unbounded))
    }

    async fn set_capacity(
        &self,
        desired: u32,
        current: u32,
        reason: &str,
    ) -> Result<u32, ActuatorError> {
        let Some(e) = self.board.get(&self.group) else {
            return Err(ActuatorError::Unsupported(format!(
                "keda: group {} is not on the board",
                self.group
            )));
        };
        self.board.set(
            &self.group,
            Entry {
                desired: Some(desired),
                ..e
            },
        );
        tracing::info!(group = %self.group, current, desired, reason, "keda: published desired capacity");
        Ok(desired)
    }

    async fn replace(
        &self,
        host: &str,
        _instance_id: Option<&str>,
        _reason: &str,
    ) -> Result<String, ActuatorError> {
        Err(ActuatorError::Unsupported(format!(
            "keda cannot replace {host}: Kubernetes restarts unhealthy pods"
        )))
    }
}

/// The gRPC service over a [`Board`].
#[derive(Clone)]
pub struct Service {
    board: Board,
}

impl Service {
    /// A tonic service answering from `board`.
    pub fn server(board: Board) -> ExternalScalerServer<Service> {
        ExternalScalerServer::new(Service { board })
    }

    fn active(&self, r: &ScaledObjectRef) -> Result<bool, Status> {
        let (name, entry) = self.board.resolve(r)?;
        Ok(entry.value(&name)? > 0)
    }
}

#[tonic::async_trait]
impl ExternalScaler for Service {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        Ok(Response::new(IsActiveResponse {
            result: self.active(request.get_ref())?,
        }))
    }

    type StreamIsActiveStream = tonic::codegen::BoxStream<IsActiveResponse>;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let r = request.into_inner();
        self.active(&r)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let answer = me.active(&r).map(|result| IsActiveResponse { result });
                if tx.send(answer).await.is_err() {
                    break;
                }
                tokio::time::sleep(STREAM_EVERY).await;
            }
        });
        Ok(Response::new(Box::pin(
            tonic::codegen::tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        let (_, entry) = self.board.resolve(request.get_ref())?;
        let spec = MetricSpec {
            metric_name: entry.metric_name,
            target_size: 1,
            target_size_float: 1.0,
        };
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: vec![spec],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let req = request.into_inner();
        let r = req.scaled_object_ref.unwrap_or_default();
        let (name, entry) = self.board.resolve(&r)?;
        let desired = entry.value(&name)?;
        let value = MetricValue {
            metric_name: entry.metric_name,
            metric_value: i64::from(desired),
            metric_value_float: f64::from(desired),
        };
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![value],
        }))
    }
}

/// Serves the KEDA gRPC service on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    board: Board,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(Service::server(board))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}
