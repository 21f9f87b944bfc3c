//! Traces across client → gateway → server: with an OTLP endpoint configured, a call's trace
//! context travels in MCP `_meta`; the gateway's span continues the client's trace, the server's
//! span (made by the SDK) continues the gateway's, both reach the OTLP/HTTP endpoint (here a
//! loopback receiver that decodes the export with the official protobuf definitions), and the
//! call's audit record names the trace.

use std::sync::{Arc, Mutex};

use axum::{Router, body::Bytes, extract::State, routing::post};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use rmcp::model::CallToolRequestParams;
use serde_json::json;

use crate::harness::{Platform, connect};

/// One exported span: name, trace id, span id, parent span id (hex), service name.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    service: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn receive(State(spans): State<Arc<Mutex<Vec<Span>>>>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let mut spans = spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Span {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    service: service.clone(),
                });
            }
        }
    }
    ""
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_is_traced_from_client_to_gateway_to_server_through_mcp_meta() {
    let spans = Arc::new(Mutex::new(Vec::<Span>::new()));
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let platform = Platform::start_with_env(
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "switchboard-under-test"),
        ],
    );
    let agent = connect(
        &format!("{}/servers/knowledge/mcp", platform.gateway_url),
        &platform.token,
        true,
    )
    .await;
    // The client's own span.
    let (trace, client_span) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let mut params = CallToolRequestParams::new("search_docs").with_arguments(
        json!({"query": "presto access"})
            .as_object()
            .unwrap()
            .clone(),
    );
    let mut meta = serde_json::Map::new();
    meta.insert(
        "traceparent".into(),
        format!("00-{trace}-{client_span}-01").into(),
    );
    params.meta = Some(rmcp::model::RequestMetaObject(rmcp::model::MetaObject(
        meta,
    )));
    let result = agent.call_tool(params).await.unwrap();
    assert_ne!(result.is_error, Some(true));
    agent.cancel().await.unwrap();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (gateway, server) = loop {
        let seen = spans.lock().unwrap().clone();
        let gateway = seen
            .iter()
            .find(|s| s.trace_id == trace && s.name == "tools/call knowledge/search_docs")
            .cloned();
        let server = seen
            .iter()
            .find(|s| s.trace_id == trace && s.name == "tools/call search_docs")
            .cloned();
        if let (Some(g), Some(s)) = (gateway, server) {
            break (g, s);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the spans did not arrive: {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        gateway.parent, client_span,
        "the gateway continues the client's trace"
    );
    assert_eq!(
        server.parent, gateway.span_id,
        "the server continues the gateway's span"
    );
    assert!(
        gateway.service.contains("switchboard-under-test"),
        "{gateway:?}"
    );
    // The audit names the trace.
    let records = platform.audit("knowledge");
    let call = records.iter().find(|r| r["tool"] == "search_docs").unwrap();
    assert_eq!(call["trace_id"], trace, "{call}");
}
