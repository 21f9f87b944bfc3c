//! The gateway's Prometheus metrics, served at `/metrics`: every call through the gateway by
//! server, tool and outcome, its latency, the policy denials, and the audit records waiting in
//! the spool. They are counted from the audit record each call yields, so the metrics and the
//! audit cannot disagree.

use std::sync::{Arc, Mutex};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use registry_api::{AuditRecord, Outcome};
use service_kit::metrics::{CallLabels, ToolLabels, latency_histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DenialLabels {
    server: String,
    /// The tool, or the JSON-RPC method of a refused request that names none.
    tool: String,
}

/// The gateway's metrics; cheap to clone.
#[derive(Clone)]
pub(crate) struct Metrics {
    registry: Arc<Mutex<Registry>>,
    calls: Family<CallLabels, Counter>,
    duration: Family<ToolLabels, Histogram>,
    denials: Family<DenialLabels, Counter>,
    spooled: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("switchboard_gateway");
        let calls = Family::<CallLabels, Counter>::default();
        let duration = Family::<ToolLabels, Histogram>::new_with_constructor(latency_histogram);
        let denials = Family::<DenialLabels, Counter>::default();
        let spooled = Gauge::default();
        registry.register(
            "tool_calls",
            "Tool calls through the gateway by server, tool and outcome (ok, tool_error, denied, error, input_required, pending_approval)",
            calls.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Latency of tool calls that reached a server, as the gateway saw it",
            duration.clone(),
        );
        registry.register(
            "policy_denials",
            "Requests the gateway's policies refused",
            denials.clone(),
        );
        registry.register(
            "audit_spooled_records",
            "Audit records waiting in the local spool for the registry",
            spooled.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            calls,
            duration,
            denials,
            spooled,
        }
    }
}

impl Metrics {
    /// Counts the call `record` describes.
    pub(crate) fn observe(&self, record: &AuditRecord) {
        let tool = record.tool.clone().unwrap_or_else(|| record.method.clone());
        if record.outcome == Outcome::Denied {
            self.denials
                .get_or_create(&DenialLabels {
                    server: record.server.clone(),
                    tool: tool.clone(),
                })
                .inc();
        }
        if record.method != "tools/call" {
            return;
        }
        self.calls
            .get_or_create(&CallLabels {
                server: record.server.clone(),
                tool: tool.clone(),
                outcome: record.outcome.as_str().to_owned(),
            })
            .inc();
        if matches!(
            record.outcome,
            Outcome::Ok | Outcome::ToolError | Outcome::Error
        ) {
            self.duration
                .get_or_create(&ToolLabels {
                    server: record.server.clone(),
                    tool,
                })
                .observe(record.latency_ms as f64 / 1000.0);
        }
    }

    /// The metrics in the Prometheus text format, with the spool's size now.
    pub(crate) fn encode(&self, spooled: usize) -> String {
        self.spooled.set(i64::try_from(spooled).unwrap_or(i64::MAX));
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        service_kit::metrics::encode(&registry)
    }
}
