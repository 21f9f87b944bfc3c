//! The other half of the era bridge: a 2026-07-28 client calling a server that speaks only the
//! legacy era (2025-11-25 and earlier; most servers built on the TypeScript SDK 1.x). Whether a
//! server is legacy-only is learnt from its answer to `server/discover` (a modern server must
//! answer it), cached per endpoint for a few minutes.
//!
//! Each modern request then runs in a short legacy session the gateway opens as the caller
//! (`initialize` with the client's capabilities, the request, `DELETE`). A server-to-client
//! request on the call's stream (`elicitation/create`, ...) answers the client with an
//! `input_required` round whose `requestState` names the call the gateway keeps waiting; the
//! client's retry, checked against caller, tool and arguments, carries its answer to the server
//! on the same legacy session and the call goes on. The waiting call lives on the replica that
//! started it, like the legacy session it holds.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use registry_api::Outcome;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::{
    Gateway,
    bridge::{self, ANSWER_TIMEOUT, MODERN},
    catalog_cache::Server,
    error::{self, INVALID_REQUEST, UPSTREAM},
    inspect,
    proxy::{self, CallGuard, Caller, Inspect, Inspection},
    sse,
};

/// Every `requestState` of a call waiting on a legacy server starts with this.
pub(crate) const STATE_PREFIX: &str = "switchboard-legacy:";
/// How long a server's era is trusted before it is asked again.
const ERA_TTL: Duration = Duration::from_secs(300);
/// The legacy version the gateway asks for.
const LEGACY: &str = "2025-11-25";
/// Largest response read from the server.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Results whose modern form carries caching hints.
const CACHED_RESULTS: &[&str] = &[
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// Which endpoints speak only the legacy era, as last learnt.
#[derive(Default)]
pub(crate) struct Eras {
    known: Mutex<HashMap<String, (bool, Instant)>>,
}

impl Eras {
    /// Whether `server` speaks only the legacy era (asked with `server/discover` as `who`
    /// when not known lately). Unknown (unreachable) counts as not: the request goes as it came.
    pub(crate) async fn legacy_only(&self, gw: &Gateway, server: &Server, who: &Caller) -> bool {
        if let Some((legacy, at)) = self.lock().get(&server.endpoint).copied()
            && at.elapsed() < ERA_TTL
        {
            return legacy;
        }
        let Some(legacy) = ask_era(gw, server, who).await else {
            return false;
        };
        if legacy {
            tracing::info!(server = %server.name, "the server speaks only the legacy era; bridging 2026-07-28 clients to it");
        }
        let mut known = self.lock();
        if known.len() > 10_000 {
            known.retain(|_, (_, at)| at.elapsed() < ERA_TTL);
        }
        known.insert(server.endpoint.clone(), (legacy, Instant::now()));
        legacy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (bool, Instant)>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Asks the server's `server/discover`: modern servers must answer it (or refuse the request in
/// modern terms); anything else is a legacy server. `None` when the server cannot be reached.
async fn ask_era(gw: &Gateway, server: &Server, who: &Caller) -> Option<bool> {
    let discover = json!({"jsonrpc": "2.0", "id": "switchboard-era", "method": "server/discover", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "switchboard-gateway", "version": env!("CARGO_PKG_VERSION")},
    }}});
    let headers = bridge::modern_headers(&HeaderMap::new(), &discover, server);
    let request = proxy::upstream_request(gw, server, &Method::POST, &headers, who).ok()?;
    let response = request.body(discover.to_string()).send().await.ok()?;
    let status = response.status();
    let answer = bridge::read_answer(response, &discover["id"], None)
        .await
        .ok()
        .map(|(_, a)| a);
    Some(match answer {
        Some(answer) => match (
            answer.get("result"),
            answer.pointer("/error/code").and_then(Value::as_i64),
        ) {
            (Some(result), _) => !result
                .get("supportedVersions")
                .and_then(Value::as_array)
                .is_some_and(|v| v.iter().any(|v| v == MODERN)),
            (None, Some(code)) => !matches!(code, -32022 | -32021 | -32020 | -32602),
            (None, None) => return None,
        },
        None => matches!(
            status,
            StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ),
    })
}

/// What a call running on a legacy session reports.
enum Step {
    /// A notification for the client (progress, a log line).
    Notice(Bytes),
    /// The server asks the client (key → `{method, params}`).
    Ask(Map<String, Value>),
    /// The server's answer, or why there is none.
    Done(Result<Value, String>),
}

/// A call running on its own legacy session.
struct Running {
    steps: mpsc::Receiver<Step>,
    answers: mpsc::Sender<Map<String, Value>>,
}

/// A call waiting for the client's answers, and what its retry must match.
struct Continuation {
    user: String,
    server: String,
    method: String,
    name: Option<String>,
    digest: String,
    since: Instant,
    running: Running,
}

/// Calls waiting for their clients' next round.
#[derive(Default)]
pub(crate) struct Continuations {
    waiting: Mutex<HashMap<String, Continuation>>,
}

impl Continuations {
    fn park(&self, continuation: Continuation) -> String {
        let key = uuid::Uuid::new_v4().simple().to_string();
        let mut waiting = self.lock();
        waiting.retain(|_, c| c.since.elapsed() < ANSWER_TIMEOUT);
        waiting.insert(key.clone(), continuation);
        key
    }

    fn take(&self, key: &str) -> Option<Continuation> {
        self.lock().remove(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Continuation>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves one 2026-07-28 message for a legacy-only server.
pub(crate) async fn handle(
    gw: Arc<Gateway>,
    server: Arc<Server>,
    who: Caller,
    client_headers: &HeaderMap,
    message: Value,
    inspect: Inspect,
) -> Response {
    let Some(id) = message.get("id").cloned() else {
        // A notification: the server has no session to tell.
        return StatusCode::ACCEPTED.into_response();
    };
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let accepts_sse = client_headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    match method.as_str() {
        "server/discover" => return discover(&gw, &server, &who, &message).await,
        "subscriptions/listen" => {
            return error::respond(
                StatusCode::OK,
                &id,
                -32601,
                "subscriptions/listen is not available: the server speaks only the legacy era",
            );
        }
        _ => {}
    }
    let params = message.get("params");
    let name = params
        .and_then(|p| p.get("name").or_else(|| p.get("uri")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let digest = inspect::argument_digest(params.and_then(|p| p.get("arguments")));
    let state = params
        .and_then(|p| p.get("requestState"))
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix(STATE_PREFIX));
    let running = match state {
        Some(key) => {
            let Some(parked) = gw.legacy_calls.take(key) else {
                return error::respond(
                    StatusCode::OK,
                    &id,
                    -32602,
                    "the requestState names no waiting call (it ended or expired); call again without it",
                );
            };
            if parked.user != who.user
                || parked.server != server.name
                || parked.method != method
                || parked.name != name
                || parked.digest != digest
            {
                return error::respond(
                    StatusCode::OK,
                    &id,
                    -32602,
                    "the requestState belongs to another call",
                );
            }
            let responses = params
                .and_then(|p| p.get("inputResponses"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if parked.running.answers.send(responses).await.is_err() {
                return error::respond(StatusCode::OK, &id, UPSTREAM, "the waiting call ended");
            }
            parked.running
        }
        None => start(gw.clone(), server.clone(), who.clone(), message.clone()),
    };
    let (filter_tools, call) = match inspect {
        Inspect::FilterTools => (true, None),
        Inspect::AuditCall(call) => (false, Some(*call)),
        _ => (false, None),
    };
    let guard = CallGuard::new(gw.clone(), call);
    let round = Round {
        gw,
        server,
        who,
        id,
        method,
        name,
        digest,
        filter_tools,
    };
    if !accepts_sse {
        let answer = round.drive(running, guard, None).await;
        return axum::Json(answer).into_response();
    }
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    tokio::spawn(async move {
        let answer = round.drive(running, guard, Some(&tx)).await;
        let _ = tx.send(bridge::event(&answer)).await;
    });
    bridge::sse_response(rx)
}

/// One round of a call towards its client.
struct Round {
    gw: Arc<Gateway>,
    server: Arc<Server>,
    who: Caller,
    id: Value,
    method: String,
    name: Option<String>,
    digest: String,
    filter_tools: bool,
}

impl Round {
    /// Follows the running call until it asks the client something or ends; returns the
    /// client's answer (an `input_required` round, the result, or an error).
    async fn drive(
        &self,
        mut running: Running,
        mut guard: CallGuard,
        client: Option<&mpsc::Sender<Bytes>>,
    ) -> Value {
        loop {
            let step = running.steps.recv().await.unwrap_or(Step::Done(Err(
                "the call on the server ended without an answer".into(),
            )));
            match step {
                Step::Notice(bytes) => {
                    if let Some(client) = client {
                        let _ = client.send(bytes).await;
                    }
                }
                Step::Ask(requests) => {
                    guard
                        .finish(
                            Outcome::InputRequired,
                            false,
                            Some("the server asked the client for input".into()),
                        )
                        .await;
                    let key = self.gw.legacy_calls.park(Continuation {
                        user: self.who.user.clone(),
                        server: self.server.name.clone(),
                        method: self.method.clone(),
                        name: self.name.clone(),
                        digest: self.digest.clone(),
                        since: Instant::now(),
                        running,
                    });
                    return json!({"jsonrpc": "2.0", "id": self.id, "result": {
                        "resultType": "input_required",
                        "inputRequests": requests,
                        "requestState": format!("{STATE_PREFIX}{key}"),
                    }});
                }
                Step::Done(Ok(mut answer)) => {
                    if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
                        result.entry("resultType").or_insert(json!("complete"));
                        if CACHED_RESULTS.contains(&self.method.as_str()) {
                            result.entry("ttlMs").or_insert(json!(0));
                            result.entry("cacheScope").or_insert(json!("private"));
                        }
                    }
                    let inspection = Inspection {
                        gw: self.gw.clone(),
                        engine: self.gw.catalog.engine(),
                        server: self.server.clone(),
                        who: self.who.clone(),
                        filter_tools: self.filter_tools,
                        id: self.id.clone(),
                    };
                    proxy::apply(&inspection, &mut guard, &mut answer).await;
                    answer["id"] = self.id.clone();
                    return answer;
                }
                Step::Done(Err(reason)) => {
                    guard
                        .finish(Outcome::Error, true, Some(reason.clone()))
                        .await;
                    return error::jsonrpc_error(&self.id, UPSTREAM, &reason, None);
                }
            }
        }
    }
}

/// Starts `message` on a legacy session of its own.
fn start(gw: Arc<Gateway>, server: Arc<Server>, who: Caller, message: Value) -> Running {
    let (steps_tx, steps) = mpsc::channel(32);
    let (answers, answers_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let outcome = run(&gw, &server, &who, message, &steps_tx, answers_rx).await;
        let _ = steps_tx.send(Step::Done(outcome)).await;
    });
    Running { steps, answers }
}

/// A legacy session the gateway opened with a server.
struct Session {
    id: Option<String>,
    version: String,
    initialized: Value,
}

impl Session {
    /// Headers of a request in this session.
    fn headers(&self) -> HeaderMap {
        let mut headers = bridge::json_rpc_headers();
        if let Ok(version) = HeaderValue::from_str(&self.version) {
            headers.insert("mcp-protocol-version", version);
        }
        if let Some(id) = self
            .id
            .as_deref()
            .and_then(|id| HeaderValue::from_str(id).ok())
        {
            headers.insert("mcp-session-id", id);
        }
        headers
    }
}

/// Opens a legacy session as `who`, with the capabilities and info the client sent in `message`.
async fn open(
    gw: &Gateway,
    server: &Server,
    who: &Caller,
    message: &Value,
) -> Result<Session, String> {
    let meta = message.pointer("/params/_meta");
    let capabilities = meta
        .and_then(|m| m.get("io.modelcontextprotocol/clientCapabilities"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let client_info = meta
        .and_then(|m| m.get("io.modelcontextprotocol/clientInfo"))
        .cloned()
        .unwrap_or_else(
            || json!({"name": "switchboard-gateway", "version": env!("CARGO_PKG_VERSION")}),
        );
    let initialize = json!({"jsonrpc": "2.0", "id": "switchboard-initialize", "method": "initialize", "params": {
        "protocolVersion": LEGACY, "capabilities": capabilities, "clientInfo": client_info}});
    let response = send(gw, server, who, &bridge::json_rpc_headers(), &initialize).await?;
    let id = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (_, answer) = bridge::read_answer(response, &initialize["id"], None)
        .await
        .map_err(|u| u.reason)?;
    let Some(initialized) = answer.get("result").cloned() else {
        let why = answer
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        return Err(format!(
            "server {} refused to initialize: {why}",
            server.name
        ));
    };
    let version = initialized
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or(LEGACY)
        .to_owned();
    let session = Session {
        id,
        version,
        initialized,
    };
    let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    send(gw, server, who, &session.headers(), &done).await?;
    Ok(session)
}

/// Ends a session in the background.
fn close(gw: &Gateway, server: &Server, who: &Caller, session: &Session) {
    if session.id.is_none() {
        return;
    }
    if let Ok(request) =
        proxy::upstream_request(gw, server, &Method::DELETE, &session.headers(), who)
    {
        tokio::spawn(async move {
            let _ = request.send().await;
        });
    }
}

async fn send(
    gw: &Gateway,
    server: &Server,
    who: &Caller,
    headers: &HeaderMap,
    message: &Value,
) -> Result<reqwest::Response, String> {
    proxy::upstream_request(gw, server, &Method::POST, headers, who)
        .map_err(|_| "the gateway could not sign the caller's identity".to_owned())?
        .body(message.to_string())
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(server = %server.name, error = %e, "server unreachable");
            format!("server {} is unreachable", server.name)
        })
}

/// `server/discover` for a legacy server: its `initialize` answer in modern terms.
async fn discover(gw: &Gateway, server: &Server, who: &Caller, message: &Value) -> Response {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let session = match open(gw, server, who, message).await {
        Ok(session) => session,
        Err(reason) => return error::respond(StatusCode::OK, &id, UPSTREAM, &reason),
    };
    close(gw, server, who, &session);
    let init = &session.initialized;
    let mut result = json!({
        "resultType": "complete",
        "supportedVersions": [MODERN],
        "capabilities": init.get("capabilities").cloned().unwrap_or_else(|| json!({})),
        "_meta": {"io.modelcontextprotocol/serverInfo": init.get("serverInfo").cloned().unwrap_or_else(|| json!({"name": server.name, "version": "unknown"}))},
        "ttlMs": 0,
        "cacheScope": "private",
    });
    if let Some(instructions) = init.get("instructions") {
        result["instructions"] = instructions.clone();
    }
    axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}

/// Runs `message` on a legacy session of its own, relaying the server's requests to the client
/// through `steps` and its answers back.
async fn run(
    gw: &Gateway,
    server: &Server,
    who: &Caller,
    message: Value,
    steps: &mpsc::Sender<Step>,
    mut answers: mpsc::Receiver<Map<String, Value>>,
) -> Result<Value, String> {
    let session = open(gw, server, who, &message).await?;
    let outcome = exchange(gw, server, who, &session, message, steps, &mut answers).await;
    close(gw, server, who, &session);
    outcome
}

async fn exchange(
    gw: &Gateway,
    server: &Server,
    who: &Caller,
    session: &Session,
    mut message: Value,
    steps: &mpsc::Sender<Step>,
    answers: &mut mpsc::Receiver<Map<String, Value>>,
) -> Result<Value, String> {
    // The legacy form: no modern `_meta` keys, no round-trip fields.
    if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
        params.remove("inputResponses");
        params.remove("requestState");
        if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) {
            meta.retain(|k, _| !k.starts_with("io.modelcontextprotocol/"));
        }
    }
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let response = send(gw, server, who, &session.headers(), &message).await?;
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if !is_sse {
        let (_, answer) = bridge::read_answer(response, &id, None)
            .await
            .map_err(|u| u.reason)?;
        return Ok(answer);
    }
    let mut stream = response.bytes_stream();
    let mut parser = sse::Parser::default();
    let mut read = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("read the server's response: {e}"))?;
        read += chunk.len();
        if read > MAX_RESPONSE_BYTES {
            return Err(format!(
                "the server's response is larger than {MAX_RESPONSE_BYTES} bytes"
            ));
        }
        for event in parser.push(&chunk) {
            let Some(data) = event.data() else { continue };
            let Ok(received) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            if inspect::is_response_to(&received, &id) {
                return Ok(received);
            }
            let (Some(method), Some(asked_id)) = (
                received.get("method").and_then(Value::as_str),
                received.get("id"),
            ) else {
                let _ = steps
                    .send(Step::Notice(Bytes::from(event.to_bytes())))
                    .await;
                continue;
            };
            // The server asks the client: one input round.
            let key = match asked_id {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let mut asked = Map::new();
            asked.insert(
                key.clone(),
                json!({"method": method, "params": received.get("params")}),
            );
            if steps.send(Step::Ask(asked)).await.is_err() {
                return Err("the client went away".into());
            }
            let answered = tokio::time::timeout(ANSWER_TIMEOUT, answers.recv())
                .await
                .map_err(|_| {
                    format!(
                        "the client did not answer the server's {method} within {} s",
                        ANSWER_TIMEOUT.as_secs()
                    )
                })?
                .ok_or_else(|| "the client did not come back with an answer".to_owned())?;
            let reply = match answered.get(&key) {
                Some(result) => json!({"jsonrpc": "2.0", "id": asked_id, "result": result}),
                None => {
                    json!({"jsonrpc": "2.0", "id": asked_id, "error": {"code": INVALID_REQUEST, "message": "the client gave no answer"}})
                }
            };
            send(gw, server, who, &session.headers(), &reply).await?;
        }
    }
    Err("the server closed the stream without an answer".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_calls_expire() {
        let calls = Continuations::default();
        let (_steps_tx, steps) = mpsc::channel(1);
        let (answers, _answers_rx) = mpsc::channel(1);
        let key = calls.park(Continuation {
            user: "u".into(),
            server: "s".into(),
            method: "tools/call".into(),
            name: None,
            digest: String::new(),
            since: Instant::now() - ANSWER_TIMEOUT - Duration::from_secs(1),
            running: Running { steps, answers },
        });
        // Parking another reaps it.
        let (_t, steps) = mpsc::channel(1);
        let (answers, _r) = mpsc::channel(1);
        calls.park(Continuation {
            user: "u".into(),
            server: "s".into(),
            method: "tools/call".into(),
            name: None,
            digest: String::new(),
            since: Instant::now(),
            running: Running { steps, answers },
        });
        assert!(calls.take(&key).is_none());
    }
}
