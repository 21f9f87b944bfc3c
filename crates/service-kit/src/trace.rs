//! Traces: OpenTelemetry, exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and off otherwise. Trace context travels between
//! MCP hops in the request's `_meta` (`traceparent`, `tracestate`, W3C Trace Context, as MCP
//! 2026-07-28 has it): the gateway continues a client's trace and passes its own span on to the
//! server, whose SDK continues it.

use std::{collections::HashMap, sync::OnceLock};

use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The keys of W3C Trace Context, in `_meta` and in HTTP headers alike.
pub const KEYS: [&str; 2] = ["traceparent", "tracestate"];

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether traces are exported (an OTLP endpoint is configured). The environment is read once
/// per process: a gateway asks on every call, and reading it takes a process-wide lock.
pub fn configured() -> bool {
    static CONFIGURED: OnceLock<bool> = OnceLock::new();
    *CONFIGURED.get_or_init(|| {
        [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|k| std::env::var(k).is_ok_and(|v| !v.trim().is_empty()))
    })
}

/// The tracing layer that exports spans, when an endpoint is configured. The service name is
/// `OTEL_SERVICE_NAME`, else `default_name`.
pub(crate) fn layer<S>(default_name: &str) -> Option<impl tracing_subscriber::Layer<S>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    if !configured() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("traces are off: the OTLP exporter could not be built: {e}");
            return None;
        }
    };
    let name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| default_name.to_owned());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(name)
                .build(),
        )
        .build();
    let tracer = provider.tracer("switchboard");
    opentelemetry::global::set_tracer_provider(provider.clone());
    let _ = PROVIDER.set(provider);
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Sends the spans not yet exported; call before the process exits.
pub fn flush() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.force_flush();
    }
}

struct Carrier<'a>(&'a HashMap<String, String>);

impl Extractor for Carrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct Sink<'a>(&'a mut HashMap<String, String>);

impl Injector for Sink<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

/// Makes `span` continue the trace whose context `get` finds (`traceparent`, `tracestate`), if
/// any.
pub fn continue_from(span: &tracing::Span, get: impl Fn(&str) -> Option<String>) {
    let fields: HashMap<String, String> = KEYS
        .iter()
        .filter_map(|k| get(k).map(|v| ((*k).to_owned(), v)))
        .collect();
    if fields.is_empty() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Carrier(&fields));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The context to pass on for `span` (`traceparent`, and `tracestate` when set); empty when
/// traces are off.
pub fn context_of(span: &tracing::Span) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    let context = span.context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut Sink(&mut fields));
    }
    fields
}

/// The trace id of `span` (32 hex digits), when it is traced.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_exporter_nothing_is_traced_or_passed_on() {
        let span = tracing::info_span!("tools/call");
        continue_from(&span, |k| {
            (k == "traceparent")
                .then(|| "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned())
        });
        assert!(context_of(&span).is_empty());
        assert_eq!(trace_id(&span), None);
    }
}
