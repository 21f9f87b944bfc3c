//! The registry's Prometheus metrics, served at `/metrics`: requests to its API by method and
//! status class, and, read from the store at each scrape, the proposals in each state (pending,
//! approved, rejected, …), the registered and production-approved servers, and each server's
//! last live probe (up, ready, latency, tools).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::RegistryState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// `2xx`, `4xx`, `5xx`, …
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

/// What the registry counts as it serves.
#[derive(Clone, Default)]
pub(crate) struct Metrics {
    requests: Family<HttpLabels, Counter>,
}

/// Counts every request by method and status class.
pub(crate) async fn count_requests(
    State(state): State<Arc<RegistryState>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = format!("{}xx", response.status().as_u16() / 100);
    state
        .metrics
        .requests
        .get_or_create(&HttpLabels { method, status })
        .inc();
    response
}

/// The metrics in the Prometheus text format.
pub(crate) async fn encode(state: &RegistryState) -> String {
    let mut registry = Registry::with_prefix("switchboard_registry");
    registry.register(
        "http_requests",
        "Requests to the registry by method and status class",
        state.metrics.requests.clone(),
    );
    let proposals = Family::<StateLabels, Gauge>::default();
    for s in [
        "pending", "approved", "rejected", "expired", "running", "done", "failed",
    ] {
        proposals
            .get_or_create(&StateLabels { state: s.into() })
            .set(0);
    }
    match state
        .store
        .proposal_counts(crate::http::api::servers::now_ms())
        .await
    {
        Ok(counts) => {
            for (s, n) in counts {
                proposals
                    .get_or_create(&StateLabels {
                        state: s.as_str().into(),
                    })
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
        }
        Err(e) => tracing::warn!(error = %e, "metrics: could not count proposals"),
    }
    registry.register(
        "proposals",
        "Approval proposals by state (pending ones wait for a person; rejected and approved ones were decided)",
        proposals,
    );
    let snapshot = state.snapshot();
    let servers = Gauge::<i64>::default();
    servers.set(snapshot.servers.len() as i64);
    registry.register("servers", "Registered servers", servers);
    let approved = Gauge::<i64>::default();
    approved.set(snapshot.servers.iter().filter(|s| s.approved).count() as i64);
    registry.register(
        "servers_approved",
        "Servers approved for production",
        approved,
    );
    let up = Family::<ServerLabels, Gauge>::default();
    let ready = Family::<ServerLabels, Gauge>::default();
    let tools = Family::<ServerLabels, Gauge>::default();
    let latency = Family::<ServerLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for status in state.store.list_statuses().await.unwrap_or_default() {
        let server = ServerLabels {
            server: status.server.clone(),
        };
        up.get_or_create(&server).set(i64::from(status.ok));
        ready
            .get_or_create(&server)
            .set(i64::from(status.ok && status.not_ready.is_none()));
        tools.get_or_create(&server).set(i64::from(status.tools));
        latency
            .get_or_create(&server)
            .set(status.latency_ms as f64 / 1000.0);
    }
    registry.register(
        "server_up",
        "Whether the last live probe of a server completed (1) or not (0)",
        up,
    );
    registry.register(
        "server_ready",
        "Whether a server answered its last probe and says it can serve (1) or not (0)",
        ready,
    );
    registry.register(
        "server_tools",
        "Tools a server listed at its last probe",
        tools,
    );
    registry.register(
        "server_probe_latency_seconds",
        "How long the last live probe of a server took",
        latency,
    );
    service_kit::metrics::encode(&registry)
}
