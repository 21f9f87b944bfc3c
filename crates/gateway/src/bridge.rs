//! The era bridge: a legacy (2025-11-25 and earlier) client talking to a server that speaks only
//! 2026-07-28. When such a server refuses the client's `initialize`, the gateway answers it from
//! the server's `server/discover` and hands out a session id that is a token it signed itself
//! (caller, server, the client's capabilities and info, expiry), so any replica can serve the
//! session and nothing is kept per session. Each request of the session is turned into a modern
//! one (`_meta` and standard headers); lifecycle messages are answered here.
//!
//! A tool's `input_required` round becomes server-to-client requests (`elicitation/create`,
//! `sampling/createMessage`, `roots/list`) on the call's SSE stream, as a legacy server would send
//! them; the client POSTs its answers back into the session, and the gateway retries the call
//! with them (`inputResponses`, the server's `requestState` byte for byte) until the result. The
//! answers reach the replica that holds the call's stream, so a bridged session needs the same
//! session affinity as any legacy MCP session.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use futures::StreamExt;
use registry_api::Outcome;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::{
    Gateway,
    catalog_cache::Server,
    error::{self, INVALID_REQUEST, UPSTREAM},
    inspect,
    proxy::{self, CallGuard, Caller, Inspect, Inspection},
    sse,
};

/// Every bridged session id starts with this.
pub(crate) const SESSION_PREFIX: &str = "switchboard-bridge.";
/// The audience of session tokens: only the bridge accepts them.
const AUDIENCE: &str = "switchboard-bridge";
/// Legacy versions a bridged session may agree on; the newest is offered to others.
const LEGACY_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
const NEWEST_LEGACY: &str = "2025-11-25";
/// The modern version the bridge speaks to servers.
pub(crate) const MODERN: &str = "2026-07-28";
/// How long a bridged session lives; a legacy client re-initializes after a 404.
const SESSION_TTL_SECONDS: u64 = 24 * 3600;
/// Upper bound on the client capabilities and info a session carries (they travel in its id).
const MAX_SESSION_STATE_BYTES: usize = 4096;
/// Input rounds one call may take before the bridge gives up on the server.
const MAX_ROUNDS: usize = 10;
/// How long the bridge waits for a client to answer one request (a person may be answering).
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);
/// Comment lines keep a call's stream alive while a person answers.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Largest response the bridge reads from the server.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Methods whose results may be `input_required` (MRTR).
const ROUND_TRIP_METHODS: &[&str] = &["tools/call", "prompts/get", "resources/read"];

/// What a bridged session id carries, signed by the gateway's key.
#[derive(Serialize, Deserialize)]
pub(crate) struct Session {
    /// The caller who opened it.
    sub: String,
    /// The server it is with.
    server: String,
    aud: String,
    exp: u64,
    /// The legacy version agreed with the client.
    version: String,
    /// What the client said it can do, sent to the server with every request.
    capabilities: Value,
    #[serde(default)]
    client_info: Value,
}

/// Reads a bridged session id; `Err` says why it is not one this caller may use here.
pub(crate) fn session(gw: &Gateway, id: &str, user: &str, server: &str) -> Result<Session, String> {
    let token = id.strip_prefix(SESSION_PREFIX).unwrap_or(id);
    let session: Session = gw
        .assertion_key
        .verify_own(token, AUDIENCE)
        .map_err(|e| format!("bridged session: {e}"))?;
    if session.sub != user || session.server != server {
        return Err("the session belongs to another caller or server".into());
    }
    Ok(session)
}

/// Requests sent to clients, waiting for their answers (by the id the bridge gave them).
#[derive(Default)]
pub(crate) struct Answers {
    waiting: Mutex<HashMap<String, (String, oneshot::Sender<Value>)>>,
}

impl Answers {
    fn expect(&self, user: &str) -> (String, oneshot::Receiver<Value>) {
        let id = format!("switchboard-{}", uuid::Uuid::new_v4().simple());
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.clone(), (user.to_owned(), tx));
        (id, rx)
    }

    /// Hands an answer to the call waiting for it; `false` when none waits for it from `user`.
    fn deliver(&self, id: &str, user: &str, answer: Value) -> bool {
        let mut waiting = self.lock();
        match waiting.get(id) {
            Some((owner, _)) if owner == user => {}
            _ => return false,
        }
        let Some((_, tx)) = waiting.remove(id) else {
            return false;
        };
        tx.send(answer).is_ok()
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, oneshot::Sender<Value>)>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `initialize` from a client without a session: forwarded; if the server refuses the legacy
/// handshake but answers `server/discover`, the gateway opens a bridged session instead.
pub(crate) async fn initialize(
    gw: &Arc<Gateway>,
    server: &Server,
    who: &Caller,
    headers: &HeaderMap,
    bytes: Bytes,
    message: &Value,
) -> Response {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let request = match proxy::upstream_request(gw, server, &Method::POST, headers, who) {
        Ok(r) => r.body(bytes),
        Err(refusal) => return *refusal,
    };
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(server = %server.name, error = %e, "server unreachable");
            let message = format!("server {} is unreachable", server.name);
            return error::respond(StatusCode::BAD_GATEWAY, &id, UPSTREAM, &message);
        }
    };
    let status = response.status();
    let mut out_headers = HeaderMap::new();
    for name in [
        "content-type",
        "cache-control",
        "mcp-session-id",
        "mcp-protocol-version",
    ] {
        if let Some(value) = response.headers().get(name) {
            out_headers.insert(HeaderName::from_static(name), value.clone());
        }
    }
    let (raw, answer) = match read_answer(response, &id, None).await {
        Ok((raw, answer)) => (raw, Some(answer)),
        Err(Unanswered { raw, .. }) => (raw, None),
    };
    if asks_for_legacy(headers, message) && refuses_legacy(status, answer.as_ref()) {
        match open(gw, server, who, headers, message).await {
            Ok(response) => return response,
            Err(e) => {
                tracing::info!(server = %server.name, reason = %e, "the server refused the legacy handshake and cannot be bridged");
            }
        }
    } else if let Some(session) = out_headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
    {
        // The server's session leaves the gateway sealed to its caller and server.
        match crate::sessions::seal(&gw.assertion_key, &who.user, &server.name, session)
            .ok()
            .and_then(|id| HeaderValue::from_str(&id).ok())
        {
            Some(sealed) => {
                out_headers.insert("mcp-session-id", sealed);
            }
            None => {
                out_headers.remove("mcp-session-id");
            }
        }
    }
    let mut out = Response::new(Body::from(raw));
    *out.status_mut() = status;
    *out.headers_mut() = out_headers;
    out
}

/// Whether `initialize` comes from a legacy client: a legacy version asked for, and no modern
/// header (a modern client's `initialize` is a probe the server's refusal answers correctly).
fn asks_for_legacy(headers: &HeaderMap, message: &Value) -> bool {
    let version = message
        .pointer("/params/protocolVersion")
        .and_then(Value::as_str);
    let header = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok());
    version.is_some_and(|v| LEGACY_VERSIONS.contains(&v))
        && header.is_none_or(|h| LEGACY_VERSIONS.contains(&h))
}

/// Whether the server's answer to `initialize` says it has no legacy handshake: an unsupported
/// version (every legacy version would have been negotiated down), an unknown method, or an HTTP
/// refusal without a JSON-RPC answer.
fn refuses_legacy(status: StatusCode, answer: Option<&Value>) -> bool {
    match answer
        .and_then(|a| a.pointer("/error/code"))
        .and_then(Value::as_i64)
    {
        Some(code) => code == -32022 || code == -32601,
        None => {
            answer.is_none()
                && matches!(
                    status,
                    StatusCode::BAD_REQUEST
                        | StatusCode::NOT_FOUND
                        | StatusCode::METHOD_NOT_ALLOWED
                )
        }
    }
}

/// Asks the server's `server/discover` and answers the client's `initialize` from it, with a
/// bridged session id.
async fn open(
    gw: &Arc<Gateway>,
    server: &Server,
    who: &Caller,
    headers: &HeaderMap,
    message: &Value,
) -> Result<Response, String> {
    let params = message.get("params").cloned().unwrap_or(Value::Null);
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or(NEWEST_LEGACY);
    let version = if LEGACY_VERSIONS.contains(&requested) {
        requested
    } else {
        NEWEST_LEGACY
    };
    let capabilities = params
        .get("capabilities")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let client_info = params.get("clientInfo").cloned().unwrap_or(Value::Null);
    if capabilities.to_string().len() + client_info.to_string().len() > MAX_SESSION_STATE_BYTES {
        return Err(format!(
            "the client's capabilities and info exceed {MAX_SESSION_STATE_BYTES} bytes"
        ));
    }
    let session = Session {
        sub: who.user.clone(),
        server: server.name.clone(),
        aud: AUDIENCE.into(),
        exp: identity::now_seconds() + SESSION_TTL_SECONDS,
        version: version.to_owned(),
        capabilities,
        client_info,
    };
    let discover = to_modern(
        &session,
        json!({"jsonrpc": "2.0", "id": "switchboard-discover", "method": "server/discover", "params": {}}),
    );
    let request = proxy::upstream_request(
        gw,
        server,
        &Method::POST,
        &modern_headers(headers, &discover, server),
        who,
    )
    .map_err(|_| "could not sign the caller's identity".to_owned())?;
    let response = request
        .body(discover.to_string())
        .send()
        .await
        .map_err(|e| format!("server/discover: {e}"))?;
    let (_, answer) = read_answer(response, &discover["id"], None)
        .await
        .map_err(|u| u.reason)?;
    let result = answer.get("result").ok_or_else(|| {
        format!(
            "server/discover failed: {}",
            answer.get("error").unwrap_or(&Value::Null)
        )
    })?;
    let speaks_modern = result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|v| v.iter().any(|v| v == MODERN));
    if !speaks_modern {
        return Err(format!(
            "the server does not list {MODERN} among its versions"
        ));
    }
    let token = gw
        .assertion_key
        .sign(&session)
        .map_err(|e| format!("sign the session: {e}"))?;
    let server_info = result
        .pointer("/_meta/io.modelcontextprotocol~1serverInfo")
        .cloned()
        .unwrap_or_else(|| json!({"name": server.name, "version": "unknown"}));
    let mut initialized = json!({
        "protocolVersion": version,
        "capabilities": legacy_capabilities(result.get("capabilities")),
        "serverInfo": server_info,
    });
    if let Some(instructions) = result.get("instructions") {
        initialized["instructions"] = instructions.clone();
    }
    tracing::info!(server = %server.name, user = %who.user, "bridging a legacy client to a 2026-07-28 server");
    let body = json!({"jsonrpc": "2.0", "id": message.get("id"), "result": initialized});
    let mut response = axum::Json(body).into_response();
    let session_id = HeaderValue::from_str(&format!("{SESSION_PREFIX}{token}"))
        .map_err(|e| format!("session id: {e}"))?;
    response.headers_mut().insert("mcp-session-id", session_id);
    Ok(response)
}

/// The server's capabilities as a legacy client may rely on them: nothing that needs the
/// session's GET stream (change notifications, subscriptions) the bridge does not offer.
fn legacy_capabilities(modern: Option<&Value>) -> Value {
    let mut capabilities = modern.cloned().unwrap_or_else(|| json!({}));
    if let Some(map) = capabilities.as_object_mut() {
        map.remove("extensions");
        map.remove("subscriptions");
        for value in map.values_mut() {
            if let Some(inner) = value.as_object_mut() {
                inner.remove("listChanged");
                inner.remove("subscribe");
            }
        }
    }
    capabilities
}

/// What the bridge answers itself in a bridged session: lifecycle requests, notifications, and
/// the client's answers to requests the bridge sent it. `None`: the message goes to the server.
pub(crate) fn local(gw: &Gateway, session: &Session, message: &Value) -> Option<Response> {
    let id = message.get("id");
    let method = message.get("method").and_then(Value::as_str);
    let result = |result: Value| {
        axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
    };
    match (method, id) {
        // The client's answer to a request the bridge sent on a call's stream.
        (None, Some(id)) => {
            let key = id.as_str().unwrap_or_default();
            if !gw
                .bridge_answers
                .deliver(key, &session.sub, message.clone())
            {
                tracing::info!(user = %session.sub, "a client answered a request nobody waits for");
            }
            Some(StatusCode::ACCEPTED.into_response())
        }
        // Notifications (`initialized`, `cancelled`, `roots/list_changed`) end here: a modern
        // server has no session to tell.
        (Some(_), None) => Some(StatusCode::ACCEPTED.into_response()),
        (Some("ping"), Some(_)) => Some(result(json!({}))),
        // Modern servers log per request; the level is accepted and no log is pushed.
        (Some("logging/setLevel"), Some(_)) => Some(result(json!({}))),
        (Some("initialize"), Some(id)) => Some(error::respond(
            StatusCode::BAD_REQUEST,
            id,
            INVALID_REQUEST,
            "the session is already initialized",
        )),
        (Some(m @ ("resources/subscribe" | "resources/unsubscribe")), Some(id)) => {
            Some(error::respond(
                StatusCode::OK,
                id,
                -32601,
                &format!(
                    "{m} is not available: the server speaks only {MODERN} and the gateway bridges no subscriptions"
                ),
            ))
        }
        _ => None,
    }
}

/// `message` as a 2026-07-28 request: the session's version, capabilities and client info in
/// `_meta`, next to whatever the client put there (its progress token).
pub(crate) fn to_modern(session: &Session, mut message: Value) -> Value {
    if !message.get("params").is_some_and(Value::is_object) {
        message["params"] = json!({});
    }
    let params = &mut message["params"];
    if !params.get("_meta").is_some_and(Value::is_object) {
        params["_meta"] = json!({});
    }
    let meta = &mut params["_meta"];
    meta["io.modelcontextprotocol/protocolVersion"] = json!(MODERN);
    meta["io.modelcontextprotocol/clientCapabilities"] = session.capabilities.clone();
    if !session.client_info.is_null() {
        meta["io.modelcontextprotocol/clientInfo"] = session.client_info.clone();
    }
    message
}

/// The standard headers of a 2026-07-28 request for `message`, with the client's content
/// negotiation kept and its session id dropped: `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`,
/// and an `Mcp-Param-*` for each argument the tool's schema marks with `x-mcp-header`.
pub(crate) fn modern_headers(client: &HeaderMap, message: &Value, server: &Server) -> HeaderMap {
    let mut headers = json_rpc_headers();
    if let Some(agent) = client.get(header::USER_AGENT) {
        headers.insert(header::USER_AGENT, agent.clone());
    }
    headers.insert("mcp-protocol-version", HeaderValue::from_static(MODERN));
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(method) {
        headers.insert("mcp-method", value);
    }
    let name = match method {
        "tools/call" | "prompts/get" => message.pointer("/params/name"),
        "resources/read" => message.pointer("/params/uri"),
        _ => None,
    };
    if let Some(value) = name.and_then(Value::as_str).and_then(header_value) {
        headers.insert("mcp-name", value);
    }
    if method == "tools/call" {
        let tool = name.and_then(Value::as_str).unwrap_or_default();
        let properties = server
            .tool(tool)
            .and_then(|t| t.definition.input_schema.get("properties"))
            .and_then(Value::as_object);
        for (property, schema) in properties.into_iter().flatten() {
            let Some(mirror) = schema.get("x-mcp-header").and_then(Value::as_str) else {
                continue;
            };
            let Some(argument) = message.pointer(&format!(
                "/params/arguments/{}",
                property.replace('~', "~0").replace('/', "~1")
            )) else {
                continue;
            };
            let text = match argument {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(name), Some(value)) = (
                HeaderName::from_bytes(
                    format!("mcp-param-{mirror}")
                        .to_ascii_lowercase()
                        .as_bytes(),
                ),
                header_value(&text),
            ) {
                headers.insert(name, value);
            }
        }
    }
    headers
}

/// A header value for `text`: as is when it is plain visible ASCII, else the specification's
/// `=?base64?…?=` form.
fn header_value(text: &str) -> Option<HeaderValue> {
    let plain = text.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.starts_with("=?base64?");
    if plain {
        HeaderValue::from_str(text).ok()
    } else {
        HeaderValue::from_str(&format!("=?base64?{}?=", STANDARD.encode(text))).ok()
    }
}

/// Whether a request of a bridged session may come back `input_required` and so needs the
/// round trips of [`call`].
pub(crate) fn round_trips(method: Option<&str>) -> bool {
    method.is_some_and(|m| ROUND_TRIP_METHODS.contains(&m))
}

/// Runs one request of a bridged session that may need input, answering on an SSE stream: the
/// server's input requests go to the client as JSON-RPC requests, its answers come back through
/// [`local`], and the call is retried with them until the server has a result, which is audited
/// like any other and sent under the client's request id.
pub(crate) fn call(
    gw: Arc<Gateway>,
    server: Arc<Server>,
    who: Caller,
    headers: HeaderMap,
    message: Value,
    inspect: Inspect,
) -> Response {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    tokio::spawn(async move {
        let keep_alive = {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(KEEP_ALIVE);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    if tx
                        .send(Bytes::from_static(b": keep-alive\n\n"))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            })
        };
        let call = match inspect {
            Inspect::AuditCall(call) => Some(*call),
            _ => None,
        };
        let mut guard = CallGuard::new(gw.clone(), call);
        let mut answer = match rounds(&gw, &server, &who, &headers, message, &tx).await {
            Ok(answer) => {
                let mut answer = answer;
                let inspection = Inspection {
                    gw: gw.clone(),
                    engine: gw.catalog.engine(),
                    server: server.clone(),
                    who: who.clone(),
                    filter_tools: false,
                    id: id.clone(),
                };
                proxy::apply(&inspection, &mut guard, &mut answer).await;
                answer
            }
            Err(reason) => {
                guard
                    .finish(Outcome::Error, true, Some(reason.clone()))
                    .await;
                error::jsonrpc_error(&id, UPSTREAM, &reason, None)
            }
        };
        answer["id"] = id;
        keep_alive.abort();
        let _ = tx.send(event(&answer)).await;
    });
    sse_response(rx)
}

/// An SSE response whose events are what arrives on `rx`, until its senders are gone.
pub(crate) fn sse_response(mut rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|b| b.map(Ok::<_, std::io::Error>))
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// `Content-Type` and `Accept` of a JSON-RPC request to a server.
pub(crate) fn json_rpc_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers
}

/// Sends `request` to the server, and again with the client's answers for as long as the server
/// asks for input; returns the server's final answer.
async fn rounds(
    gw: &Gateway,
    server: &Server,
    who: &Caller,
    headers: &HeaderMap,
    mut request: Value,
    client: &mpsc::Sender<Bytes>,
) -> Result<Value, String> {
    for round in 1..=MAX_ROUNDS {
        let upstream = proxy::upstream_request(gw, server, &Method::POST, headers, who)
            .map_err(|_| "the gateway could not sign the caller's identity".to_owned())?;
        let response = upstream
            .body(request.to_string())
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(server = %server.name, error = %e, "server unreachable");
                format!("server {} is unreachable", server.name)
            })?;
        let (_, answer) = read_answer(response, &request["id"], Some(client))
            .await
            .map_err(|u| u.reason)?;
        let Some(result) = answer
            .get("result")
            .filter(|r| r.get("resultType").and_then(Value::as_str) == Some("input_required"))
        else {
            return Ok(answer);
        };
        let asked = result
            .get("inputRequests")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| format!("server {} asked for input without saying what", server.name))?;
        let mut waiting = Vec::new();
        for (key, ask) in asked {
            let Some(method) = ask.get("method").and_then(Value::as_str) else {
                return Err(format!(
                    "server {} asked for input {key} without a method",
                    server.name
                ));
            };
            let (ask_id, answer) = gw.bridge_answers.expect(&who.user);
            let sent = json!({"jsonrpc": "2.0", "id": ask_id, "method": method, "params": ask.get("params")});
            if client.send(event(&sent)).await.is_err() {
                gw.bridge_answers.forget(&ask_id);
                return Err("the client went away".into());
            }
            waiting.push((key.clone(), method.to_owned(), ask_id, answer));
        }
        let mut responses = Map::new();
        for (key, method, ask_id, answer) in waiting {
            let answered = tokio::select! {
                answered = tokio::time::timeout(ANSWER_TIMEOUT, answer) => answered.map(|a| a.map_err(|_| ())),
                () = client.closed() => Ok(Err(())),
            };
            gw.bridge_answers.forget(&ask_id);
            let answered = match answered {
                Ok(Ok(answered)) => answered,
                Ok(Err(())) => return Err("the client went away".into()),
                Err(_) => {
                    return Err(format!(
                        "the client did not answer the server's {method} within {} s",
                        ANSWER_TIMEOUT.as_secs()
                    ));
                }
            };
            match answered.get("result") {
                Some(result) => {
                    responses.insert(key, result.clone());
                }
                None => {
                    let why = answered
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given");
                    return Err(format!(
                        "the client could not answer the server's {method}: {why}"
                    ));
                }
            }
        }
        let state = result.get("requestState").cloned();
        request["id"] = json!(format!(
            "switchboard-round-{round}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let params = &mut request["params"];
        params["inputResponses"] = Value::Object(responses);
        match state {
            Some(state) => params["requestState"] = state,
            None => {
                if let Some(p) = params.as_object_mut() {
                    p.remove("requestState");
                }
            }
        }
    }
    Err(format!(
        "server {} asked for input more than {MAX_ROUNDS} times",
        server.name
    ))
}

/// One SSE event carrying `message`.
pub(crate) fn event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// Why no answer was read, with what was read.
pub(crate) struct Unanswered {
    raw: Vec<u8>,
    pub(crate) reason: String,
}

/// Reads the server's answer to the request `id` from a JSON or SSE response. Other events of
/// an SSE response (progress, logs) go to `client` when given. Returns the raw bytes read up to
/// and including the answer, and the answer.
pub(crate) async fn read_answer(
    response: reqwest::Response,
    id: &Value,
    client: Option<&mpsc::Sender<Bytes>>,
) -> Result<(Vec<u8>, Value), Unanswered> {
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let status = response.status();
    let mut raw = Vec::new();
    let mut stream = response.bytes_stream();
    let mut parser = sse::Parser::default();
    let fail = |raw: Vec<u8>, reason: String| Err(Unanswered { raw, reason });
    loop {
        let chunk = match stream.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return fail(raw, format!("read the server's response: {e}")),
            None => break,
        };
        if raw.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return fail(
                raw,
                format!("the server's response is larger than {MAX_RESPONSE_BYTES} bytes"),
            );
        }
        if !is_sse {
            raw.extend_from_slice(&chunk);
            continue;
        }
        for event in parser.push(&chunk) {
            raw.extend_from_slice(&event.to_bytes());
            let message = event
                .data()
                .and_then(|d| serde_json::from_str::<Value>(&d).ok());
            match message {
                Some(message) if inspect::is_response_to(&message, id) => {
                    return Ok((raw, message));
                }
                _ => {
                    if let (Some(client), Some(_)) = (client, event.data())
                        && client.send(Bytes::from(event.to_bytes())).await.is_err()
                    {
                        return fail(raw, "the client went away".into());
                    }
                }
            }
        }
    }
    if is_sse {
        return fail(raw, "the server closed the stream without an answer".into());
    }
    match serde_json::from_slice::<Value>(&raw) {
        Ok(message) if message.get("result").is_some() || message.get("error").is_some() => {
            Ok((raw, message))
        }
        _ => fail(
            raw,
            format!("the server answered HTTP {status} without a JSON-RPC answer"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refused_handshake_opens_a_bridge() {
        let error =
            |code: i64| json!({"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": "x"}});
        assert!(refuses_legacy(
            StatusCode::BAD_REQUEST,
            Some(&error(-32022))
        ));
        assert!(refuses_legacy(StatusCode::OK, Some(&error(-32601))));
        assert!(refuses_legacy(StatusCode::NOT_FOUND, None));
        assert!(!refuses_legacy(StatusCode::OK, Some(&error(-32602))));
        assert!(!refuses_legacy(StatusCode::UNAUTHORIZED, None));
        let ok = json!({"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-11-25"}});
        assert!(!refuses_legacy(StatusCode::OK, Some(&ok)));
    }

    #[test]
    fn only_legacy_handshakes_are_bridged() {
        let init = |v: &str| json!({"method": "initialize", "params": {"protocolVersion": v}});
        let mut modern = HeaderMap::new();
        modern.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2026-07-28"),
        );
        assert!(asks_for_legacy(&HeaderMap::new(), &init("2025-11-25")));
        assert!(asks_for_legacy(&HeaderMap::new(), &init("2024-11-05")));
        assert!(!asks_for_legacy(&HeaderMap::new(), &init("2026-07-28")));
        assert!(!asks_for_legacy(&modern, &init("2025-11-25")));
    }

    #[test]
    fn legacy_clients_are_promised_nothing_that_needs_a_stream() {
        let modern = json!({
            "tools": {"listChanged": true},
            "resources": {"subscribe": true, "listChanged": true},
            "extensions": {"io.modelcontextprotocol/tasks": {}},
        });
        assert_eq!(
            legacy_capabilities(Some(&modern)),
            json!({"tools": {}, "resources": {}})
        );
    }

    #[test]
    fn non_ascii_header_values_use_the_base64_form() {
        assert_eq!(header_value("orders").unwrap(), "orders");
        assert_eq!(header_value("Zürich").unwrap(), "=?base64?WsO8cmljaA==?=");
        assert_eq!(header_value(" padded").unwrap(), "=?base64?IHBhZGRlZA==?=");
    }
}
