//! The benchmark's upstream: a minimal MCP server over streamable HTTP that speaks both protocol
//! eras (2025-11-25 sessions, 2026-07-28 `server/discover` and per-request `_meta`) and answers
//! from memory, so that what a scenario measures is the path in front of it, not a tool's work.
//! It serves `echo` plus `--tools` filler tools, and the definitions it lists are the ones the
//! benchmark registers.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

pub(crate) const LEGACY: &str = "2025-11-25";
pub(crate) const MODERN: &str = "2026-07-28";

#[derive(clap::Args)]
pub(crate) struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Filler tools listed beside `echo`.
    #[arg(long, default_value_t = 0)]
    tools: usize,
    /// The server's name in its answers.
    #[arg(long, default_value = "bench")]
    name: String,
    /// Write `{"url": ...}` here once listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
}

/// The tool definitions the fixture lists: `echo`, then `tool00001`… up to `fillers`.
pub(crate) fn tools(fillers: usize) -> Vec<Value> {
    let mut tools = vec![json!({
        "name": "echo",
        "description": "Returns its text argument.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}},
        "annotations": {"readOnlyHint": true}
    })];
    tools.extend((1..=fillers).map(|i| {
        json!({
            "name": format!("tool{i:05}"),
            "description": format!("Filler tool {i}: looks up one record of the team's data by its key."),
            "inputSchema": {"type": "object", "properties": {"key": {"type": "string"}}},
            "annotations": {"readOnlyHint": true}
        })
    }));
    tools
}

struct Fixture {
    name: String,
    /// `tools/list`'s result, serialized once.
    list: Arc<str>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let fixture = Arc::new(Fixture {
        list: Arc::from(json!({"tools": tools(args.tools)}).to_string()),
        name: args.name,
    });
    // `/<anything>/mcp` serves the same tools, so one process stands in for many servers.
    let app = Router::new()
        .route("/mcp", post(mcp))
        .route("/{server}/mcp", post(mcp))
        .with_state(fixture);
    crate::commands::write_ready(args.ready_file.as_deref(), json!({ "url": url }))?;
    service_kit::serve(listener, app, service_kit::shutdown_on_signal()).await
}

fn answer(id: &Value, result: &str) -> Response {
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#);
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn mcp(State(fixture): State<Arc<Fixture>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "the body is not JSON").into_response();
    };
    let id = &request["id"];
    let modern = headers
        .get("mcp-protocol-version")
        .is_some_and(|v| v.as_bytes() == MODERN.as_bytes());
    // Modern results say they are complete and who answered; legacy ones are plain.
    let finish = |result: Value| -> String {
        let mut result = result;
        if modern {
            result["resultType"] = json!("complete");
            result["_meta"] = json!({"io.modelcontextprotocol/serverInfo": {"name": fixture.name, "version": "1"}});
        }
        result.to_string()
    };
    match request["method"].as_str().unwrap_or_default() {
        "initialize" => {
            let mut response = answer(
                id,
                &json!({"protocolVersion": LEGACY, "capabilities": {"tools": {}},
                        "serverInfo": {"name": fixture.name, "version": "1"}})
                .to_string(),
            );
            let session = format!("{:032x}", fastrand::u128(..));
            if let Ok(value) = HeaderValue::from_str(&session) {
                response.headers_mut().insert("mcp-session-id", value);
            }
            response
        }
        "server/discover" => answer(
            id,
            &finish(
                json!({"supportedVersions": [MODERN, LEGACY], "capabilities": {"tools": {}},
                           "ttlMs": 60_000, "cacheScope": "public"}),
            ),
        ),
        "tools/list" if modern => {
            // The cached listing with the modern caching hints spliced in.
            let list = &fixture.list[..fixture.list.len() - 1];
            answer(
                id,
                &format!(r#"{list},"ttlMs":60000,"cacheScope":"public","resultType":"complete"}}"#),
            )
        }
        "tools/list" => answer(id, &fixture.list),
        "tools/call" => {
            let text = request["params"]["arguments"]["text"]
                .as_str()
                .unwrap_or_default();
            answer(
                id,
                &finish(json!({"content": [{"type": "text", "text": text}], "isError": false})),
            )
        }
        "ping" => answer(id, "{}"),
        m if m.starts_with("notifications/") => StatusCode::ACCEPTED.into_response(),
        m => (
            [(header::CONTENT_TYPE, "application/json")],
            json!({"jsonrpc": "2.0", "id": id,
                   "error": {"code": -32601, "message": format!("method not found: {m}")}})
            .to_string(),
        )
            .into_response(),
    }
}
