//! Upstream faults: a server that answers too slowly, with malformed JSON-RPC, with a huge
//! answer, or breaks off mid-answer. Each call gets a clear JSON-RPC error from the gateway within
//! its deadline, is audited as an error, and the gateway goes on serving. A request too large to
//! take is refused before anything reaches the server.

use std::time::{Duration, Instant};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

use crate::harness::Platform;

const MANIFEST: &str = r##"
[server]
name = "faulty"
description = "A server with every fault"
owner_team = "finance-eng"
support_channel = "#faulty"
[tools.ok]
minutes_saved = 1.0
[tools.slow]
minutes_saved = 1.0
[tools.malformed]
minutes_saved = 1.0
[tools.huge]
minutes_saved = 1.0
[tools.broken]
minutes_saved = 1.0
"##;

fn tools() -> Value {
    json!(["ok", "slow", "malformed", "huge", "broken"]
        .iter()
        .map(|name| json!({"name": name, "description": format!("The {name} tool"), "inputSchema": {"type": "object"}}))
        .collect::<Vec<_>>())
}

async fn mcp(_headers: HeaderMap, Json(request): Json<Value>) -> Response {
    let id = request["id"].clone();
    let result =
        |result: Value| Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response();
    match request["method"].as_str().unwrap_or_default() {
        "initialize" => result(json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                                      "serverInfo": {"name": "faulty", "version": "1"}})),
        "tools/list" => result(json!({"tools": tools()})),
        "tools/call" => match request["params"]["name"].as_str().unwrap_or_default() {
            "slow" => {
                tokio::time::sleep(Duration::from_secs(20)).await;
                result(json!({"content": [{"type": "text", "text": "late"}]}))
            }
            "malformed" => (
                [(header::CONTENT_TYPE, "application/json")],
                "{this is not json",
            )
                .into_response(),
            "huge" => {
                // Built once: a slow machine must not spend the 2 s deadline building it.
                static HUGE: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
                let body = HUGE.get_or_init(|| {
                    let text = "x".repeat(40 << 20);
                    Bytes::from(
                        json!({"jsonrpc": "2.0", "id": 7, "result": {"content": [{"type": "text", "text": text}]}})
                            .to_string(),
                    )
                });
                ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
            }
            "broken" => {
                // Half an answer, then the connection dies.
                let stream = futures::stream::iter(vec![
                    Ok::<_, std::io::Error>(Bytes::from_static(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"res")),
                    Err(std::io::Error::other("the server crashed")),
                ]);
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    Body::from_stream(stream),
                )
                    .into_response()
            }
            _ => result(json!({"content": [{"type": "text", "text": "fine"}]})),
        },
        m if m.starts_with("notifications/") => StatusCode::ACCEPTED.into_response(),
        _ => Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}}))
            .into_response(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_upstream_fault_is_a_clear_error_within_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app = Router::new().route("/mcp", post(mcp));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let platform = Platform::start_with(&["--upstream-timeout-secs", "2"]);
    platform.register(MANIFEST, &endpoint, &tools());
    platform.approve("faulty");
    let url = format!("{}/servers/faulty/mcp", platform.gateway_url);
    let token = platform.token("dev", &["employees"]);
    let http = reqwest::Client::new();
    let call = |tool: &'static str| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            let started = Instant::now();
            let response = http
                .post(&url)
                .bearer_auth(&token)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-11-25")
                .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                              "params": {"name": tool, "arguments": {}}}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body, started.elapsed())
        }
    };
    // The huge answer is built before the clock starts.
    let _ = reqwest::Client::new()
        .post(&endpoint)
        .json(
            &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "huge"}}),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    // The server is known to the gateway once its catalog has it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while call("ok").await.1["result"]["content"][0]["text"] != "fine" {
        assert!(
            Instant::now() < deadline,
            "the gateway never served the server"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let expect = |(status, body, took): (u16, Value, Duration), message: &dyn Fn(&str) -> bool| {
        assert_eq!(status, 502, "{body}");
        assert_eq!(body["id"], 7, "{body}");
        assert_eq!(body["error"]["code"], -32002, "{body}");
        let text = body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message(&text), "{text}");
        assert!(took < Duration::from_secs(8), "took {took:?}");
    };
    expect(call("slow").await, &|m| {
        m == "server faulty did not answer within 2 s"
    });
    expect(call("malformed").await, &|m| {
        m == "server faulty answered HTTP 200 OK without a JSON-RPC body"
    });
    expect(call("huge").await, &|m| {
        m == "the server's response is larger than 33554432 bytes"
    });
    expect(call("broken").await, &|m| {
        m.starts_with("the server's answer broke off") || m == "server faulty is unreachable"
    });
    // A request over the gateway's 4 MiB is refused with what the limit is.
    let oversized = http
        .post(&url)
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{{"name":"ok","arguments":{{"pad":"{}"}}}}}}"#,
            "x".repeat(5 << 20)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413);
    // The unread rest of the body leaves the connection unusable, and the client is told so.
    assert_eq!(oversized.headers()["connection"], "close");
    let body: Value = oversized.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "the request body is larger than 4194304 bytes"
    );

    // The gateway goes on serving, and every fault is in the audit as an error.
    assert_eq!(call("ok").await.1["result"]["content"][0]["text"], "fine");
    let audit = platform.audit("faulty");
    for tool in ["slow", "malformed", "huge", "broken"] {
        assert!(
            audit
                .iter()
                .any(|r| r["tool"] == tool && r["outcome"] == "error"),
            "{tool}: {audit:?}"
        );
    }
}
