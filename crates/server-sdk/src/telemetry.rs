//! Telemetry out of the box: one structured log record per invocation (tool, caller, duration,
//! outcome, isError) and Prometheus counters and a latency histogram, served at `/metrics`.
//! Arguments and results are never logged: they may hold personal data or secrets.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use prometheus_client::{
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};
use service_kit::metrics::{CallLabels, ToolLabels, latency_histogram};

/// Per-server metrics registry.
#[derive(Clone)]
pub struct Telemetry {
    server: String,
    registry: Arc<Mutex<Registry>>,
    invocations: Family<CallLabels, Counter>,
    errors: Family<ToolLabels, Counter>,
    duration: Family<ToolLabels, Histogram>,
}

pub(crate) struct Invocation<'a> {
    pub(crate) tool: &'a str,
    pub(crate) caller: &'a crate::Caller,
    pub(crate) duration: Duration,
    pub(crate) outcome: &'static str,
    pub(crate) is_error: bool,
    pub(crate) error: Option<&'a str>,
}

impl Telemetry {
    pub(crate) fn new(server: &str) -> Telemetry {
        let mut registry = Registry::with_prefix("switchboard_tool");
        let invocations = Family::<CallLabels, Counter>::default();
        let errors = Family::<ToolLabels, Counter>::default();
        let duration = Family::<ToolLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "invocations",
            "Tool invocations by outcome",
            invocations.clone(),
        );
        registry.register(
            "errors",
            "Tool invocations that ended in an error",
            errors.clone(),
        );
        registry.register(
            "duration_seconds",
            "Tool invocation latency",
            duration.clone(),
        );
        Telemetry {
            server: server.to_owned(),
            registry: Arc::new(Mutex::new(registry)),
            invocations,
            errors,
            duration,
        }
    }

    pub(crate) fn record(&self, call: &Invocation<'_>) {
        let tool = ToolLabels {
            server: self.server.clone(),
            tool: call.tool.to_owned(),
        };
        self.invocations
            .get_or_create(&CallLabels {
                server: self.server.clone(),
                tool: call.tool.to_owned(),
                outcome: call.outcome.to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&tool)
            .observe(call.duration.as_secs_f64());
        if call.is_error {
            self.errors.get_or_create(&tool).inc();
        }
        let duration_ms = call.duration.as_secs_f64() * 1000.0;
        match call.error {
            Some(error) => tracing::warn!(
                target: "switchboard::invocation",
                server = %self.server, tool = call.tool, user = %call.caller.user,
                surface = call.caller.surface.as_deref().unwrap_or(""),
                duration_ms, outcome = call.outcome, is_error = call.is_error, error,
                "tool invocation failed"
            ),
            None => tracing::info!(
                target: "switchboard::invocation",
                server = %self.server, tool = call.tool, user = %call.caller.user,
                surface = call.caller.surface.as_deref().unwrap_or(""),
                duration_ms, outcome = call.outcome, is_error = call.is_error,
                "tool invocation"
            ),
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        service_kit::metrics::encode(&registry)
    }
}
