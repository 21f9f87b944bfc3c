//! The MCP route: authenticate, gate, inspect the JSON-RPC envelope, forward with the gateway's
//! identity assertion, and inspect only the one response that matters (`tools/list` to filter,
//! `tools/call` to audit). Everything else streams through untouched.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt;
use identity::{
    ASSERTION_HEADER, Claims, FORWARDED_GROUPS_HEADER, FORWARDED_SURFACE_HEADER,
    FORWARDED_USER_HEADER,
};
use policy::{Action, Engine, Principal, Request as PolicyRequest, Verdict};
use registry_api::{AuditRecord, Outcome};
use serde_json::Value;
use tracing::Instrument;

use crate::{
    Gateway, approvals, bridge,
    catalog_cache::Server,
    error::{
        self, DENIED, HEADER_MISMATCH, INVALID_REQUEST, PARSE_ERROR, UNAUTHENTICATED, UPSTREAM,
    },
    inspect, legacy_server,
    mtls::PeerIdentity,
    pins::Withheld,
    sessions, sse,
};

/// Largest request body the gateway will parse.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest JSON response the gateway will buffer to inspect.
const MAX_INSPECTED_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Lifetime of an identity assertion: one request, with room for clock skew.
const ASSERTION_TTL_SECONDS: u64 = 60;
/// Request headers passed on to the server; all others (notably `Authorization`, cookies and any
/// client-sent `X-Forwarded-*`) are dropped.
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];
/// Response headers passed back to the client.
const FORWARDED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "mcp-session-id",
    "mcp-protocol-version",
    "x-accel-buffering",
];
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallerKind {
    User,
    Service,
}

/// The surface of workloads calling as themselves.
const SERVICE_SURFACE: &str = "service";
/// The surface of tokens that name none.
const DEFAULT_SURFACE: &str = "api";
/// Header in which a chat bot names the channel it speaks in.
const CHANNEL_HEADER: &str = "x-switchboard-channel";
/// Methods a caller may use on a server it may not use: the lifecycle, and `tools/list` (which is
/// then filtered to nothing).
const LIFECYCLE_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "logging/setLevel",
];

/// A request to `server` on behalf of `who`: the forwardable headers of `headers`, the caller's
/// name and groups, and the gateway's signed assertion of them (never the caller's token).
pub(crate) fn upstream_request(
    gw: &Gateway,
    server: &Server,
    method: &Method,
    headers: &HeaderMap,
    who: &Caller,
) -> Result<reqwest::RequestBuilder, Box<Response>> {
    let mut upstream = match server.endpoint_url() {
        Some(url) => gw.upstream.request(method.clone(), url.clone()),
        None => gw.upstream.request(method.clone(), &server.endpoint),
    };
    for (name, value) in headers {
        let n = name.as_str();
        if FORWARDED_REQUEST_HEADERS.contains(&n) || n.starts_with("mcp-param-") {
            upstream = upstream.header(name, value);
        }
    }
    let assertion = assertion(gw, &server.name, who).map_err(|e| {
        tracing::error!(error = %e, "failed to sign an identity assertion");
        Box::new(error::respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            &Value::Null,
            UPSTREAM,
            "the gateway could not sign the caller's identity",
        ))
    })?;
    let (Ok(user), Ok(groups)) = (
        HeaderValue::from_str(&who.user),
        HeaderValue::from_str(&who.groups.join(",")),
    ) else {
        return Err(Box::new(error::respond(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            INVALID_REQUEST,
            "the caller's name or groups cannot be sent in HTTP headers",
        )));
    };
    // Header names made once, not parsed again for every request.
    const USER: HeaderName = HeaderName::from_static(FORWARDED_USER_HEADER);
    const GROUPS: HeaderName = HeaderName::from_static(FORWARDED_GROUPS_HEADER);
    const ASSERTION: HeaderName = HeaderName::from_static(ASSERTION_HEADER);
    const SURFACE: HeaderName = HeaderName::from_static(FORWARDED_SURFACE_HEADER);
    upstream = upstream
        .header(USER, user)
        .header(GROUPS, groups)
        .header(ASSERTION, assertion);
    if let Ok(surface) = HeaderValue::from_str(&who.surface) {
        upstream = upstream.header(SURFACE, surface);
    }
    Ok(upstream)
}

/// The gateway's signed assertion of `who` for `server`: one signed within the last half of
/// its lifetime is sent again (it names no call, only the caller, the server, the surface and
/// the channel), so the server always has at least half of it left.
fn assertion(gw: &Gateway, server: &str, who: &Caller) -> Result<HeaderValue, String> {
    gw.assertions.get_or_try(who.remember_key(server), || {
        let mut claims = Claims::new(
            &gw.issuer,
            &who.user,
            server,
            who.groups.clone(),
            ASSERTION_TTL_SECONDS,
        );
        claims.surface = Some(who.surface.clone());
        claims.channel = who.channel.clone();
        let signed = gw.assertion_key.sign(&claims).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(&signed).map_err(|e| e.to_string())?;
        Ok((value, Duration::from_secs(ASSERTION_TTL_SECONDS / 2)))
    })
}

/// What the gateway must do with the server's response.
pub(crate) enum Inspect {
    Nothing,
    FilterTools,
    AuditCall(Box<CallContext>),
    /// The call needs approval: propose it instead of running it.
    Propose(Box<approvals::Pending>),
    /// A `switchboard_proposal` call, answered by the gateway itself.
    FollowUp,
    /// A 2026-07-28 call coming back with its proposal's state.
    Resume,
}

pub(crate) struct CallContext {
    record: AuditRecord,
    started: Instant,
    /// Kept in case the tool asks for a confirmation the client cannot give (then the call
    /// becomes a proposal).
    arguments: Value,
    /// The call needs this approval and was sent as a preview: the tool's answer is proposed.
    propose: Option<policy::ApprovalNeed>,
}

pub(crate) async fn handle(
    State(gw): State<Arc<Gateway>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    if !host_allowed(&gw.allowed_hosts, &parts.headers) {
        tracing::warn!(host = ?parts.headers.get(header::HOST), "refused a request for a foreign host");
        return error::respond(
            StatusCode::FORBIDDEN,
            &Value::Null,
            INVALID_REQUEST,
            "the request's Host is not allowed",
        );
    }
    if let Some(origin) = parts.headers.get(header::ORIGIN)
        && !origin_allowed(&gw, origin, &parts.headers)
    {
        tracing::warn!(origin = ?origin, "refused a request from a foreign origin");
        return error::respond(
            StatusCode::FORBIDDEN,
            &Value::Null,
            INVALID_REQUEST,
            "the request's Origin is not allowed",
        );
    }
    let who = match identify(&gw, &parts, &name).await {
        Ok(who) => who,
        Err(refusal) => return refusal,
    };
    let Some(server) = gw.catalog.server(&name).await else {
        return error::respond(
            StatusCode::NOT_FOUND,
            &Value::Null,
            INVALID_REQUEST,
            &format!("no server named {name} is registered"),
        );
    };
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // A passed-through session goes to the server under the server's own id, once its sealed
    // id proves it is this caller's session with this server.
    if let Some(session) = &session
        && !session.starts_with(bridge::SESSION_PREFIX)
    {
        let upstream = sessions::open_remembered(gw.as_ref(), session, &who.user, &name)
            .ok()
            .and_then(|id| HeaderValue::from_str(&id).ok());
        let Some(upstream) = upstream else {
            tracing::warn!(user = %who.user, server = %name, "refused a session id that is not this caller's");
            return error::respond(
                StatusCode::NOT_FOUND,
                &Value::Null,
                INVALID_REQUEST,
                "session not found",
            );
        };
        parts.headers.insert("mcp-session-id", upstream);
    }

    let bridged = match session.as_deref() {
        Some(id) if id.starts_with(bridge::SESSION_PREFIX) => {
            match bridge::session(&gw, id, &who.user, &name) {
                Ok(session) => Some(session),
                Err(reason) => {
                    tracing::info!(user = %who.user, server = %name, %reason, "refused a bridged session");
                    return error::respond(
                        StatusCode::NOT_FOUND,
                        &Value::Null,
                        INVALID_REQUEST,
                        "session not found",
                    );
                }
            }
        }
        _ => None,
    };

    match parts.method {
        // A bridged session has no stream to offer and nothing to end.
        Method::GET if bridged.is_some() => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        Method::DELETE if bridged.is_some() => StatusCode::NO_CONTENT.into_response(),
        Method::GET | Method::DELETE => {
            forward(
                &gw,
                &server,
                &parts.method,
                &parts.headers,
                None,
                &who,
                Inspect::Nothing,
                None,
            )
            .await
        }
        Method::POST => {
            let bytes = match axum::body::to_bytes(body, MAX_REQUEST_BYTES).await {
                Ok(b) => b,
                Err(_) => {
                    // The rest of the body is never read, so the connection cannot carry another
                    // request: say so, or a client would send its next one down a closing socket.
                    let mut response = error::respond(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &Value::Null,
                        INVALID_REQUEST,
                        &format!("the request body is larger than {MAX_REQUEST_BYTES} bytes"),
                    );
                    response.headers_mut().insert(
                        axum::http::header::CONNECTION,
                        axum::http::HeaderValue::from_static("close"),
                    );
                    return response;
                }
            };
            let Envelope {
                message,
                method,
                id,
            } = match read_envelope(&parts.headers, &bytes) {
                Ok(envelope) => envelope,
                Err(refused) => return *refused,
            };
            // A bridged session's requests go to the server in its own era.
            let (mut message, mut bytes, headers) = match &bridged {
                Some(session) => {
                    if let Some(answered) = bridge::local(&gw, session, &message) {
                        return answered;
                    }
                    let modern = bridge::to_modern(session, message);
                    let headers = bridge::modern_headers(&parts.headers, &modern, &server);
                    let bytes = Bytes::from(modern.to_string());
                    (modern, bytes, std::borrow::Cow::Owned(headers))
                }
                None => (message, bytes, std::borrow::Cow::Borrowed(&parts.headers)),
            };
            let decide_on = |server: &Server| {
                decide(
                    &gw.catalog.engine(),
                    &gw,
                    server,
                    &who,
                    method.as_deref(),
                    &message,
                    &id,
                )
            };
            let mut server = server;
            let mut decision = decide_on(&server);
            // A refusal, or a listing, of something not yet approved may be stale (a review was
            // just decided): look at the registry again, once per cooldown, and decide again if
            // the server's record moved, whether this check or the periodic refresh (which may
            // have run since this request read it) brought the news.
            if (decision.is_err() || method.as_deref() == Some("tools/list"))
                && server.awaits_approval()
            {
                gw.catalog.recheck().await;
                if let Some(latest) = gw.catalog.server(&name).await
                    && !Arc::ptr_eq(&latest, &server)
                {
                    server = latest;
                    decision = decide_on(&server);
                }
            }
            let inspect = match decision {
                // A tool that previews its calls is sent this one as a preview first; its answer
                // becomes the proposal (see `apply`). Era bridges propose without one.
                Ok(Inspect::Propose(pending))
                    if bridged.is_none()
                        && previews(&server, pending.record.tool.as_deref())
                        && !(session.is_none()
                            && parts
                                .headers
                                .get("mcp-protocol-version")
                                .is_some_and(|v| v.as_bytes() == bridge::MODERN.as_bytes())
                            && gw.eras.legacy_only(&gw, &server, &who).await) =>
                {
                    approvals::ask_preview(&mut message);
                    bytes = Bytes::from(message.to_string());
                    let approvals::Pending {
                        record,
                        need,
                        arguments,
                        ..
                    } = *pending;
                    Inspect::AuditCall(Box::new(CallContext {
                        record,
                        started: Instant::now(),
                        arguments,
                        propose: Some(need),
                    }))
                }
                Ok(Inspect::Propose(pending)) => {
                    let asked = approvals::Asked {
                        client: parts
                            .headers
                            .get(header::USER_AGENT)
                            .and_then(|v| v.to_str().ok())
                            .map(|v| v.chars().take(200).collect()),
                        progress_token: message.pointer("/params/_meta/progressToken").cloned(),
                        accepts_sse: parts
                            .headers
                            .get(header::ACCEPT)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| v.contains("text/event-stream")),
                        round_trip: parts
                            .headers
                            .get("mcp-protocol-version")
                            .is_some_and(|v| v.as_bytes() == b"2026-07-28")
                            && message
                                .pointer(
                                    "/params/_meta/io.modelcontextprotocol~1clientCapabilities/elicitation",
                                )
                                .is_some_and(|e| !e.is_null()),
                    };
                    let id = id.unwrap_or(Value::Null);
                    return approvals::propose(&gw, &server, *pending, asked, &id).await;
                }
                Ok(Inspect::Resume) => {
                    let id = id.unwrap_or(Value::Null);
                    let params = message.get("params").cloned().unwrap_or(Value::Null);
                    return approvals::resume(&gw, &server, &who.user, &params, &id).await;
                }
                Ok(Inspect::FollowUp) => {
                    let id = id.unwrap_or(Value::Null);
                    let arguments = message.pointer("/params/arguments");
                    return approvals::follow_up(&gw, &server, &who.user, arguments, &id).await;
                }
                Ok(inspect) => inspect,
                Err(denied) => {
                    let (record, denial) = *denied;
                    // Audited before the caller hears of it, like every other call.
                    if let Some(record) = record {
                        gw.audit.record(record).await;
                    }
                    return denial;
                }
            };
            let mut inspect = inspect;
            let span = match &mut inspect {
                Inspect::AuditCall(call) if service_kit::trace::configured() => {
                    let span = trace_call(&mut message, &parts.headers, &server, &who, call);
                    bytes = Bytes::from(message.to_string());
                    Some(span)
                }
                _ => None,
            };
            if bridged.is_some() && bridge::round_trips(method.as_deref()) {
                return bridge::call(
                    gw.clone(),
                    server,
                    who,
                    headers.into_owned(),
                    message,
                    inspect,
                );
            }
            // A 2026-07-28 client and a server that speaks only the legacy era.
            if bridged.is_none()
                && session.is_none()
                && method.is_some()
                && parts
                    .headers
                    .get("mcp-protocol-version")
                    .is_some_and(|v| v.as_bytes() == bridge::MODERN.as_bytes())
                && gw.eras.legacy_only(&gw, &server, &who).await
            {
                return legacy_server::handle(
                    gw.clone(),
                    server,
                    who,
                    &parts.headers,
                    message,
                    inspect,
                )
                .await;
            }
            if method.as_deref() == Some("initialize") && session.is_none() {
                return bridge::initialize(&gw, &server, &who, &headers, bytes, &message).await;
            }
            let forwarded = forward(
                &gw,
                &server,
                &parts.method,
                &headers,
                Some(bytes),
                &who,
                inspect,
                id,
            );
            match span {
                Some(span) => forwarded.instrument(span).await,
                None => forwarded.await,
            }
        }
        _ => error::respond(
            StatusCode::METHOD_NOT_ALLOWED,
            &Value::Null,
            INVALID_REQUEST,
            "use POST, GET or DELETE",
        ),
    }
}

/// A span for a tool call through the gateway: it continues the client's trace (`_meta`
/// `traceparent`, else the HTTP header), is passed on to the server in the request's `_meta`, and
/// its trace id goes into the call's audit record.
fn trace_call(
    message: &mut Value,
    headers: &http::HeaderMap,
    server: &Server,
    who: &Caller,
    call: &mut CallContext,
) -> tracing::Span {
    let tool = call.record.tool.clone().unwrap_or_default();
    let span = tracing::info_span!(
        "mcp.tools/call",
        otel.name = %format!("tools/call {}/{tool}", server.name),
        otel.kind = "server",
        mcp.server = %server.name,
        mcp.tool = %tool,
        enduser.id = %who.user,
        mcp.surface = %who.surface,
    );
    service_kit::trace::continue_from(&span, |key| {
        message
            .pointer(&format!("/params/_meta/{key}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                headers
                    .get(key)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
    });
    let context = service_kit::trace::context_of(&span);
    if !context.is_empty()
        && let Some(params) = message.get_mut("params").and_then(Value::as_object_mut)
    {
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            for (key, value) in context {
                meta.insert(key, Value::String(value));
            }
        }
    }
    call.record.trace_id = service_kit::trace::trace_id(&span);
    span
}

/// Whether `tool` of `server` answers previews of its calls.
fn previews(server: &Server, tool: Option<&str>) -> bool {
    tool.and_then(|name| server.tool(name))
        .is_some_and(|t| t.preview)
}

/// Applies the policies to one message; returns what to inspect, or the denial (with its audit
/// record, for tool calls).
fn decide(
    engine: &Engine,
    gw: &Gateway,
    server: &Server,
    who: &Caller,
    method: Option<&str>,
    message: &Value,
    id: &Option<Value>,
) -> Result<Inspect, Box<(Option<AuditRecord>, Response)>> {
    let (Some(method), Some(id)) = (method, id) else {
        return Ok(Inspect::Nothing); // a notification or a response to a server request
    };
    let principal = who.principal();
    let connect_verdict = || {
        engine.decide(&question(
            &principal,
            &server.name,
            who,
            Action::Connect,
            None,
            None,
        ))
    };
    match method {
        "tools/list" => Ok(Inspect::FilterTools),
        "tools/call" => {
            let params = message.get("params");
            let tool = params
                .and_then(|p| p.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let arguments = params.and_then(|p| p.get("arguments"));
            // The gateway's own tool: whoever may connect may follow up on their proposals.
            if tool == approvals::PROPOSAL_TOOL && connect_verdict().allowed {
                return Ok(Inspect::FollowUp);
            }
            let mut record = AuditRecord {
                id: uuid_v7(),
                time_ms: who.time_ms(),
                user: who.user.clone(),
                groups: who.groups.clone(),
                surface: Some(who.surface.clone()),
                channel: who.channel.clone(),
                server: server.name.clone(),
                method: method.to_owned(),
                tool: Some(tool.clone()),
                argument_digest: Some(inspect::argument_digest(arguments)),
                outcome: Outcome::Ok,
                is_error: false,
                detail: None,
                latency_ms: 0,
                arguments: crate::audit::kept_arguments(server, &tool, arguments),
                proposal: None,
                team: Some(server.owner_team.clone()),
                minutes_saved: crate::audit::minutes_saved(server, &tool),
                trace_id: None,
            };
            // Calls always carry arguments for the policies to see, `{}` when the client sent none.
            let empty = Value::Object(Default::default());
            let asked = question(
                &principal,
                &server.name,
                who,
                Action::Call,
                Some(&tool),
                Some(arguments.unwrap_or(&empty)),
            );
            let verdict = engine.callable(&asked);
            log_policy_errors(&verdict);
            if !verdict.allowed {
                let message = verdict.denial_message();
                record.outcome = Outcome::Denied;
                record.is_error = true;
                record.detail = Some(message.clone());
                let response = deny_response(
                    &record,
                    id,
                    &message,
                    verdict.policies.first().map(String::as_str),
                );
                return Err(Box::new((Some(record), response)));
            }
            // Allowed by policy, but only the definition that was registered may be called.
            if let Some(withheld) = gw.pins.call_refusal(server, &tool) {
                let message = withheld.to_string();
                record.outcome = Outcome::Denied;
                record.is_error = true;
                record.detail = Some(message.clone());
                let response = deny_response(&record, id, &message, Some("tool-pinning"));
                return Err(Box::new((Some(record), response)));
            }
            // Allowed, if the caller has calls left this minute.
            let limits = &gw.rate_limits;
            if let Err(retry) = limits.take(&who.user) {
                let message = format!(
                    "rate limited: {} may make {} tool calls a minute; retry in {retry} s",
                    who.user,
                    limits.per_minute().unwrap_or_default()
                );
                record.outcome = Outcome::Denied;
                record.is_error = true;
                record.detail = Some(message.clone());
                tracing::info!(user = %who.user, server = %server.name, %tool, "rate limited a tool call");
                let data = serde_json::json!({ "policy": "rate-limit", "retry_after_secs": retry });
                let mut response = (
                    StatusCode::OK,
                    axum::Json(error::jsonrpc_error(
                        id,
                        error::RATE_LIMITED,
                        &message,
                        Some(data),
                    )),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry));
                return Err(Box::new((Some(record), response)));
            }
            // A call coming back for its proposal (2026-07-28 input_required rounds).
            if params
                .and_then(|p| p.get("requestState"))
                .and_then(Value::as_str)
                .is_some_and(|state| state.starts_with(approvals::STATE_PREFIX))
            {
                return Ok(Inspect::Resume);
            }
            // Allowed, but a person may have to approve it first. A service has nobody to
            // confirm for it, so its confirmations go to the owner team.
            if let Some(mut need) = engine.approval(&asked) {
                if matches!(who.kind, CallerKind::Service) && need.approver == "self" {
                    need.approver = "owners".into();
                }
                return Ok(Inspect::Propose(Box::new(approvals::Pending {
                    record,
                    need,
                    arguments: arguments.cloned().unwrap_or(empty),
                    preview: None,
                })));
            }
            Ok(Inspect::AuditCall(Box::new(CallContext {
                record,
                started: Instant::now(),
                arguments: arguments.cloned().unwrap_or(empty),
                propose: None,
            })))
        }
        m if LIFECYCLE_METHODS.contains(&m) => Ok(Inspect::Nothing),
        _ => {
            let verdict = connect_verdict();
            log_policy_errors(&verdict);
            if verdict.allowed {
                Ok(Inspect::Nothing)
            } else {
                // Every denial is audited, not only tool calls.
                let message = verdict.denial_message();
                let record = AuditRecord {
                    id: uuid_v7(),
                    time_ms: who.time_ms(),
                    user: who.user.clone(),
                    groups: who.groups.clone(),
                    surface: Some(who.surface.clone()),
                    channel: who.channel.clone(),
                    server: server.name.clone(),
                    method: method.to_owned(),
                    tool: None,
                    argument_digest: None,
                    outcome: Outcome::Denied,
                    is_error: true,
                    detail: Some(message.clone()),
                    latency_ms: 0,
                    arguments: None,
                    proposal: None,
                    team: Some(server.owner_team.clone()),
                    minutes_saved: None,
                    trace_id: None,
                };
                Err(Box::new((
                    Some(record),
                    error::respond(StatusCode::OK, id, DENIED, &message),
                )))
            }
        }
    }
}

/// Who is calling. On the mTLS listener a workload is a service (no person in the loop) unless
/// it is a trusted proxy vouching for an end user with `X-Forwarded-User`/`-Groups`; everyone else
/// presents a bearer token. Identity headers from anyone but a trusted proxy are refused.
async fn identify(
    gw: &Gateway,
    parts: &http::request::Parts,
    name: &str,
) -> Result<Caller, Response> {
    let header = |n: &str| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let channel = header(CHANNEL_HEADER);
    let demo_time = header(DEMO_TIME_HEADER)
        .filter(|_| gw.demo_clock)
        .and_then(|t| t.parse::<i64>().ok());
    let peer = parts.extensions.get::<PeerIdentity>();
    let vouched = header(FORWARDED_USER_HEADER);
    let claims_identity = parts.headers.contains_key(FORWARDED_USER_HEADER)
        || parts.headers.contains_key(FORWARDED_GROUPS_HEADER);
    if claims_identity {
        let trusted = peer.is_some_and(|p| gw.workloads.trusted_proxies.contains(&p.0));
        let Some(user) = vouched.filter(|_| trusted) else {
            tracing::warn!(peer = ?peer.map(|p| &p.0), server = %name, "refused identity headers from an untrusted sender");
            return Err(error::respond(
                StatusCode::FORBIDDEN,
                &Value::Null,
                UNAUTHENTICATED,
                "X-Forwarded-User/X-Forwarded-Groups are accepted only from a trusted proxy (an mTLS peer on the allow-list)",
            ));
        };
        return Ok(Caller {
            kind: CallerKind::User,
            user,
            groups: header(FORWARDED_GROUPS_HEADER)
                .map(|g| catalog::parse_groups(&g))
                .unwrap_or_default(),
            surface: header(FORWARDED_SURFACE_HEADER).unwrap_or_else(|| DEFAULT_SURFACE.to_owned()),
            channel,
            demo_time,
        });
    }
    if let Some(peer) = peer
        && bearer_token(&parts.headers).is_none()
    {
        return Ok(Caller {
            kind: CallerKind::Service,
            user: peer.0.clone(),
            groups: gw
                .workloads
                .service_groups
                .get(&peer.0)
                .cloned()
                .unwrap_or_default(),
            surface: SERVICE_SURFACE.to_owned(),
            channel,
            demo_time,
        });
    }
    // Where a refusal points the client; formatted only for a refusal.
    let metadata_url = || gw.resource_metadata_url(name);
    let claims = match bearer_token(&parts.headers) {
        None => {
            let url = metadata_url();
            return Err(error::Challenge::at(&url).unauthorized(None));
        }
        Some(token) => match gw
            .verifier
            .verify_for(token, Some(&gw.resource(name)))
            .await
        {
            Ok(claims) => claims,
            Err(e) => {
                tracing::info!(reason = %e, server = %name, "rejected a caller");
                let url = metadata_url();
                return Err(error::Challenge::at(&url).unauthorized(Some(&e.to_string())));
            }
        },
    };
    if !gw
        .required_scopes
        .iter()
        .all(|needed| claims.scopes().any(|s| s == needed))
    {
        tracing::info!(user = %claims.sub, server = %name, "refused a token without the required scopes");
        let url = metadata_url();
        return Err(error::Challenge::at(&url).insufficient_scope(&gw.required_scopes));
    }
    // The surface comes from the token (the client that obtained it), never from a header the
    // caller could set; a bot names the channel it speaks in.
    Ok(Caller {
        kind: CallerKind::User,
        user: claims.sub,
        groups: claims.groups,
        surface: claims.surface.unwrap_or_else(|| DEFAULT_SURFACE.to_owned()),
        channel,
        demo_time,
    })
}

/// The policy question for `who` about `server`.
fn question<'a>(
    principal: &'a Principal,
    server: &'a str,
    who: &'a Caller,
    action: Action,
    tool: Option<&'a str>,
    args: Option<&'a Value>,
) -> PolicyRequest<'a> {
    PolicyRequest {
        principal,
        action,
        server,
        tool,
        surface: &who.surface,
        channel: who.channel.as_deref(),
        args,
    }
}

fn log_policy_errors(verdict: &Verdict) {
    for error in &verdict.errors {
        tracing::warn!(%error, "a policy failed to evaluate and was ignored");
    }
}

/// The header `switchboard up --demo-traffic` dates its generated calls with.
pub const DEMO_TIME_HEADER: &str = "x-switchboard-demo-time";

/// Who is calling, as the policies see them.
#[derive(Clone)]
pub(crate) struct Caller {
    kind: CallerKind,
    /// The user name, or a service's SPIFFE ID.
    pub(crate) user: String,
    groups: Vec<String>,
    surface: String,
    channel: Option<String>,
    /// When the call is recorded as made (`GatewayConfig::demo_clock` only).
    demo_time: Option<i64>,
}

impl Caller {
    /// The key of what is remembered for this caller about `server` (an assertion, a view of
    /// a listing): everything a decision or an assertion reads about them.
    fn remember_key(&self, server: &str) -> identity::RememberKey {
        let mut parts: Vec<&[u8]> = vec![
            match self.kind {
                CallerKind::User => b"user",
                CallerKind::Service => b"service",
            },
            self.user.as_bytes(),
            server.as_bytes(),
            self.surface.as_bytes(),
            if self.channel.is_some() { b"+" } else { b"-" },
            self.channel.as_deref().unwrap_or_default().as_bytes(),
        ];
        parts.extend(self.groups.iter().map(|g| g.as_bytes()));
        identity::Remembered::<()>::key(&parts)
    }

    /// When the call is recorded as made: now, unless a demo clock says otherwise.
    fn time_ms(&self) -> i64 {
        self.demo_time.unwrap_or_else(now_ms)
    }

    fn principal(&self) -> Principal {
        let (id, groups) = (self.user.clone(), self.groups.clone());
        match self.kind {
            CallerKind::User => Principal::User { id, groups },
            CallerKind::Service => Principal::Service { id, groups },
        }
    }
}

/// A denied call's answer: an explicit JSON-RPC error naming the policy (never "not found").
fn deny_response(
    record: &AuditRecord,
    id: &Value,
    message: &str,
    policy: Option<&str>,
) -> Response {
    let policy = policy.unwrap_or("default-deny");
    let data =
        serde_json::json!({ "policy": policy, "server": record.server, "tool": record.tool });
    tracing::info!(user = %record.user, server = %record.server, tool = ?record.tool, %message, "denied a tool call");
    (
        StatusCode::OK,
        axum::Json(error::jsonrpc_error(id, DENIED, message, Some(data))),
    )
        .into_response()
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    gw: &Arc<Gateway>,
    server: &Arc<Server>,
    method: &Method,
    headers: &HeaderMap,
    body: Option<Bytes>,
    who: &Caller,
    inspect: Inspect,
    // The id of the JSON-RPC request forwarded (none for notifications and GET streams).
    id: Option<Value>,
) -> Response {
    let mut upstream = match upstream_request(gw, server, method, headers, who) {
        Ok(upstream) => upstream,
        Err(refusal) => return *refusal,
    };
    if let Some(body) = body {
        upstream = upstream.body(body);
    }
    // A request (not a notification, not a GET stream) must be answered within the deadline.
    if id.is_some() {
        upstream = upstream.timeout(gw.upstream_timeout);
    }

    let (filter_tools, call) = match inspect {
        Inspect::Nothing => (false, None),
        Inspect::FilterTools => (true, None),
        Inspect::AuditCall(call) => (false, Some(*call)),
        // Answered before forwarding; never reach here.
        Inspect::Propose(_) | Inspect::FollowUp | Inspect::Resume => (false, None),
    };
    // From here on the call's audit record is owned by the guard: written exactly once, whether
    // the call completes, fails, or the client goes away first.
    let mut guard = CallGuard {
        gw: gw.clone(),
        call,
    };
    let response = match upstream.send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(server = %server.name, error = %e, "server unreachable");
            let message = if e.is_timeout() {
                format!(
                    "server {} did not answer within {} s",
                    server.name,
                    gw.upstream_timeout.as_secs()
                )
            } else {
                format!("server {} is unreachable", server.name)
            };
            guard
                .finish(Outcome::Error, true, Some(message.clone()))
                .await;
            let id = id.as_ref().unwrap_or(&Value::Null);
            return error::respond(StatusCode::BAD_GATEWAY, id, UPSTREAM, &message);
        }
    };

    let status = answered_status(method, response.status());
    let mut out_headers = HeaderMap::new();
    for name in FORWARDED_RESPONSE_HEADERS {
        if let Some(value) = response.headers().get(*name) {
            out_headers.insert(HeaderName::from_static(name), value.clone());
        }
    }
    // Every server session id leaves the gateway sealed to its caller and server.
    if let Some(session) = response
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
    {
        match sessions::seal(&gw.assertion_key, &who.user, &server.name, session)
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
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));

    let body = match id {
        Some(id) if filter_tools || guard.is_armed() => {
            let inspect = Inspection {
                gw: gw.clone(),
                engine: gw.catalog.engine(),
                server: server.clone(),
                who: who.clone(),
                filter_tools,
                id,
            };
            if is_sse {
                inspect_sse(inspect, guard, response)
            } else {
                match inspect_json(&inspect, &mut guard, status, response).await {
                    Ok(body) => body,
                    Err(response) => return response,
                }
            }
        }
        // A 204 carries no body, whatever the server sent with its 202.
        _ if status == StatusCode::NO_CONTENT => Body::empty(),
        _ => Body::from_stream(response.bytes_stream()),
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = out_headers;
    out
}

/// The status the gateway answers with for the server's `status`: a session ended by DELETE
/// is `204 No Content` where the server said `202 Accepted` (rmcp's servers do), since the
/// session is over and nothing is left pending, and the official Python SDK warns of a failed
/// termination on anything but 200 and 204.
fn answered_status(method: &Method, status: StatusCode) -> StatusCode {
    if method == Method::DELETE && status == StatusCode::ACCEPTED {
        StatusCode::NO_CONTENT
    } else {
        status
    }
}

/// What the gateway looks for in one response.
pub(crate) struct Inspection {
    pub(crate) gw: Arc<Gateway>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) server: Arc<Server>,
    pub(crate) who: Caller,
    /// Filter a `tools/list` result to the caller's callable tools with pinned definitions.
    pub(crate) filter_tools: bool,
    /// The id of the request whose response is inspected.
    pub(crate) id: Value,
}

/// Buffers a JSON response, rewrites or audits it, and returns the new body.
async fn inspect_json(
    inspect: &Inspection,
    guard: &mut CallGuard,
    status: StatusCode,
    response: reqwest::Response,
) -> Result<Body, Response> {
    let bytes = match read_limited(response, MAX_INSPECTED_RESPONSE_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            guard.finish(Outcome::Error, true, Some(e.clone())).await;
            return Err(error::respond(
                StatusCode::BAD_GATEWAY,
                &inspect.id,
                UPSTREAM,
                &e,
            ));
        }
    };
    if guard.finish_skimmed(inspect, &bytes).await {
        return Ok(Body::from(bytes));
    }
    let Ok(mut message) = serde_json::from_slice::<Value>(&bytes) else {
        let detail = format!(
            "server {} answered HTTP {status} without a JSON-RPC body",
            inspect.server.name
        );
        guard
            .finish(Outcome::Error, true, Some(detail.clone()))
            .await;
        // A refusal at the HTTP level (an ended session's 404, say) is the server's answer and
        // reaches the client as it is; a success that is not JSON-RPC is a fault.
        if !status.is_success() {
            return Ok(Body::from(bytes));
        }
        return Err(error::respond(
            StatusCode::BAD_GATEWAY,
            &inspect.id,
            UPSTREAM,
            &detail,
        ));
    };
    if !apply(inspect, guard, &mut message).await {
        // Passed on as the server wrote it: nothing to encode again.
        return Ok(Body::from(bytes));
    }
    // Serialized straight to bytes (`to_string` goes through the formatter, a good deal slower
    // for a large listing).
    match serde_json::to_vec(&message) {
        Ok(bytes) => Ok(Body::from(bytes)),
        Err(e) => Err(error::respond(
            StatusCode::BAD_GATEWAY,
            &inspect.id,
            UPSTREAM,
            &format!("the gateway could not re-encode the server's answer: {e}"),
        )),
    }
}

/// Rewrites an SSE response stream event by event; only the response to the inspected request is
/// touched, every other event passes through byte for byte.
fn inspect_sse(inspect: Inspection, guard: CallGuard, response: reqwest::Response) -> Body {
    struct State {
        upstream: futures::stream::BoxStream<'static, reqwest::Result<Bytes>>,
        parser: sse::Parser,
        inspect: Inspection,
        guard: CallGuard,
        answered: bool,
        done: bool,
    }
    let state = State {
        upstream: response.bytes_stream().boxed(),
        parser: sse::Parser::default(),
        inspect,
        guard,
        answered: false,
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        let (events, ended) = match st.upstream.next().await {
            Some(Ok(chunk)) => (st.parser.push(&chunk), false),
            Some(Err(e)) => {
                tracing::warn!(server = %st.inspect.server.name, error = %e, "server stream failed");
                (st.parser.finish().into_iter().collect(), true)
            }
            None => (st.parser.finish().into_iter().collect(), true),
        };
        let mut out = Vec::new();
        for event in events {
            let data = if st.answered { None } else { event.data() };
            if let Some(data) = &data
                && st.guard.finish_skimmed(&st.inspect, data.as_bytes()).await
            {
                st.answered = true;
                out.extend_from_slice(&event.to_bytes());
                continue;
            }
            let message = data.and_then(|data| serde_json::from_str::<Value>(&data).ok());
            let event = match message {
                Some(mut message) if inspect::is_response_to(&message, &st.inspect.id) => {
                    st.answered = true;
                    if apply(&st.inspect, &mut st.guard, &mut message).await {
                        event.with_data(&message.to_string())
                    } else {
                        event
                    }
                }
                _ => event,
            };
            out.extend_from_slice(&event.to_bytes());
        }
        if ended {
            st.done = true;
            let detail = format!(
                "server {} closed the stream without a result",
                st.inspect.server.name
            );
            st.guard.finish(Outcome::Error, true, Some(detail)).await;
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(out)), st))
    });
    Body::from_stream(stream)
}

/// Filters a `tools/list` result, or audits a `tools/call` result; true when `message` was
/// rewritten (a filtered listing, a proposal instead of the answer), false when it reaches the
/// caller as the server sent it.
pub(crate) async fn apply(
    inspect: &Inspection,
    guard: &mut CallGuard,
    message: &mut Value,
) -> bool {
    let rewritten = inspect.filter_tools;
    if inspect.filter_tools {
        let principal = inspect.who.principal();
        let pins = &inspect.gw.pins;
        let mut observed = Vec::new();
        let mut needs_approval = false;
        let who = &inspect.who;
        use crate::listings::PinCheck;
        let caller = who.remember_key(&inspect.server.name);
        inspect::filter_tools_list(message, |tools| {
            let filtered = inspect.gw.listings.filter(
                crate::listings::Snapshot {
                    server: &inspect.server,
                    engine: &inspect.engine,
                },
                caller,
                tools,
                pins.drift_known(),
                |tool| match pins.check_listed(&inspect.server, tool) {
                    Ok(()) => match tool.get("name").and_then(Value::as_str) {
                        Some(name) => PinCheck::Served(name.to_owned()),
                        None => PinCheck::Withheld,
                    },
                    Err(withheld) => {
                        if !matches!(withheld, Withheld::Malformed)
                            && let Some(definition) = pins.to_report(&inspect.server.name, tool)
                        {
                            observed.push(definition);
                        }
                        if matches!(withheld, Withheld::Changed { .. }) {
                            PinCheck::Changed
                        } else {
                            PinCheck::Withheld
                        }
                    }
                },
                |name| {
                    let request = PolicyRequest {
                        principal: &principal,
                        action: Action::List,
                        server: &inspect.server.name,
                        tool: Some(name),
                        surface: &who.surface,
                        channel: who.channel.as_deref(),
                        args: None,
                    };
                    inspect.engine.visible(&request).allowed
                },
            );
            needs_approval = filtered.needs_approval;
            filtered.tools
        });
        if !observed.is_empty() {
            report_observed(inspect.gw.registry.clone(), &inspect.server.name, observed);
        }
        // The follow-up tool, for callers who see a tool whose calls can need approval.
        if needs_approval
            && let Some(tools) = message
                .pointer_mut("/result/tools")
                .and_then(Value::as_array_mut)
        {
            tools.push(approvals::proposal_tool());
        }
    }
    if guard.is_armed() {
        // A preview's answer: propose the call with it, so the approvers see what would change.
        if guard.call.as_ref().is_some_and(|c| c.propose.is_some()) {
            match approvals::preview_of(message) {
                approvals::PreviewAnswer::Preview(preview) => {
                    if let Some(call) = guard.call.take() {
                        let CallContext {
                            record,
                            arguments,
                            propose,
                            ..
                        } = call;
                        let pending = approvals::Pending {
                            record,
                            need: propose.unwrap_or_else(|| policy::ApprovalNeed {
                                approver: "owners".into(),
                                policies: Vec::new(),
                            }),
                            arguments,
                            preview: Some(preview),
                        };
                        *message = approvals::propose_previewed(
                            &inspect.gw,
                            &inspect.server,
                            pending,
                            &inspect.id,
                        )
                        .await;
                    }
                    return true;
                }
                approvals::PreviewAnswer::NotAPreview => {
                    // The tool answered as if it had run: say so, and propose nothing.
                    tracing::error!(server = %inspect.server.name, "a tool that previews its calls answered a preview without one");
                    let detail = "the tool did not answer the preview it was asked for, so nothing was proposed; tell the server's owners".to_owned();
                    *message =
                        error::jsonrpc_error(&inspect.id, crate::error::UPSTREAM, &detail, None);
                    guard.finish(Outcome::Error, true, Some(detail)).await;
                    return true;
                }
                // An error, a refusal or an input round: it reaches the caller as it is.
                approvals::PreviewAnswer::PassThrough => {}
            }
        }
        // A tool asked the user to confirm and the client cannot: propose the call instead.
        if let Some(question) = approvals::confirmation_asked(message)
            && let Some(call) = guard.call.take()
        {
            *message = approvals::confirm_by_proposal(
                &inspect.gw,
                &inspect.server,
                call.record,
                call.arguments,
                question,
                &inspect.id,
            )
            .await;
            return true;
        }
        let (outcome, is_error, detail) = inspect::call_outcome(message);
        guard.finish(outcome, is_error, detail).await;
    }
    rewritten
}

/// Tells the registry, in the background, which definitions the server serves that differ from
/// its record: the registry records them and opens their review, and the gateway keeps them
/// withheld from production until they are approved.
pub(crate) fn report_observed(
    registry: registry_client::RegistryClient,
    server: &str,
    tools: Vec<registry_api::ToolDefinition>,
) {
    let server = server.to_owned();
    tokio::spawn(async move {
        let names: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
        match registry.report_observed_tools(&server, tools).await {
            Ok(_) => {
                tracing::info!(%server, tools = ?names, "reported changed tool definitions to the registry for review")
            }
            Err(e) => {
                tracing::warn!(%server, tools = ?names, error = %e, "could not report changed tool definitions to the registry")
            }
        }
    });
}

/// Owns the audit record of one `tools/call` until it is written. Dropped unwritten (the client
/// went away before the outcome was known), it records the call as an error.
pub(crate) struct CallGuard {
    gw: Arc<Gateway>,
    call: Option<CallContext>,
}

impl CallGuard {
    pub(crate) fn new(gw: Arc<Gateway>, call: Option<CallContext>) -> CallGuard {
        CallGuard { gw, call }
    }

    fn is_armed(&self) -> bool {
        self.call.is_some()
    }

    /// Audits `answer` from a skim of it (`inspect::Skim`: its outcome, nothing of the rest
    /// built) and returns true; the caller passes it on as the server wrote it. Returns false,
    /// having done nothing, where `apply` must read it whole: a listing to filter, a preview, a
    /// tool asking for a confirmation, or a message that does not skim as the answer.
    async fn finish_skimmed(&mut self, inspect: &Inspection, answer: &[u8]) -> bool {
        let audited_only =
            !inspect.filter_tools && self.call.as_ref().is_some_and(|c| c.propose.is_none());
        if !audited_only {
            return false;
        }
        let skim = match serde_json::from_slice::<inspect::Skim>(answer) {
            Ok(skim) if skim.answers(&inspect.id) => skim,
            _ => return false,
        };
        if skim.error_code() == Some(approvals::CONFIRMATION_REQUIRED) {
            return false;
        }
        let (outcome, is_error, detail) = skim.outcome();
        self.finish(outcome, is_error, detail).await;
        true
    }

    /// Writes the record with its outcome; later calls do nothing.
    pub(crate) async fn finish(
        &mut self,
        outcome: Outcome,
        is_error: bool,
        detail: Option<String>,
    ) {
        if let Some(call) = self.call.take() {
            self.gw
                .audit
                .record(call.into_record(outcome, is_error, detail))
                .await;
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let record = call.into_record(
                Outcome::Error,
                true,
                Some("the client disconnected before the result".into()),
            );
            let gw = self.gw.clone();
            tokio::spawn(async move { gw.audit.record(record).await });
        }
    }
}

impl CallContext {
    fn into_record(self, outcome: Outcome, is_error: bool, detail: Option<String>) -> AuditRecord {
        let mut record = self.record;
        record.outcome = outcome;
        record.is_error = is_error;
        record.detail = detail;
        record.latency_ms = self.started.elapsed().as_millis() as u64;
        record
    }
}

async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Bytes, String> {
    let mut stream = response.bytes_stream();
    let mut buffer = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if e.is_timeout() {
                "the server did not finish its answer within the gateway's deadline".to_owned()
            } else {
                format!("the server's answer broke off: {}", e.without_url())
            }
        })?;
        if buffer.len() + chunk.len() > limit {
            return Err(format!(
                "the server's response is larger than {limit} bytes"
            ));
        }
        buffer.extend_from_slice(&chunk);
        if Instant::now() > deadline {
            return Err("the server's response took too long".into());
        }
    }
    Ok(Bytes::from(buffer))
}

/// One client message, read: the JSON-RPC object, its method and its id.
pub(crate) struct Envelope {
    pub(crate) message: Value,
    pub(crate) method: Option<String>,
    pub(crate) id: Option<Value>,
}

/// Reads a POSTed body as one JSON-RPC message whose standard MCP headers agree with it, or
/// the error response that says what is wrong with it.
pub(crate) fn read_envelope(headers: &HeaderMap, bytes: &[u8]) -> Result<Envelope, Box<Response>> {
    let message: Value = serde_json::from_slice(bytes).map_err(|e| {
        Box::new(error::respond(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            PARSE_ERROR,
            &format!("the body is not valid JSON: {e}"),
        ))
    })?;
    if !message.is_object() {
        return Err(Box::new(error::respond(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            INVALID_REQUEST,
            "the body must be one JSON-RPC message (batches are not supported)",
        )));
    }
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let id = message.get("id").cloned();
    // Header/body agreement is checked before policy: policy reads the body, and the server
    // may route or log by the headers, so the two must never disagree.
    if let Err(mismatch) = inspect::check_standard_headers(headers, &message) {
        let id = id.as_ref().unwrap_or(&Value::Null);
        return Err(Box::new(error::respond(
            StatusCode::BAD_REQUEST,
            id,
            HEADER_MISMATCH,
            &mismatch,
        )));
    }
    Ok(Envelope {
        message,
        method,
        id,
    })
}

pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// DNS-rebinding protection: the `Host` header must name this gateway.
pub(crate) fn host_allowed(allowed_hosts: &[String], headers: &HeaderMap) -> bool {
    if allowed_hosts.is_empty() {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host.as_str(), |(name, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                name
            } else {
                host.as_str()
            }
        }),
    };
    allowed_hosts.iter().any(|allowed| allowed == name)
}

/// Browsers send `Origin`; only configured origins, or the gateway's own host, may call.
fn origin_allowed(gw: &Gateway, origin: &HeaderValue, headers: &HeaderMap) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if gw.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((host, origin_host), (Some(h), Some(o)) if h == o)
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_remembered_for_a_caller_differs_by_every_fact_about_them() {
        let caller =
            |kind, user: &str, groups: &[&str], surface: &str, channel: Option<&str>| Caller {
                kind,
                user: user.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                surface: surface.into(),
                channel: channel.map(str::to_owned),
                demo_time: None,
            };
        let base = caller(CallerKind::User, "alice", &["eng"], "ide", None).remember_key("sql");
        assert_eq!(
            base,
            caller(CallerKind::User, "alice", &["eng"], "ide", None).remember_key("sql")
        );
        for other in [
            caller(CallerKind::Service, "alice", &["eng"], "ide", None).remember_key("sql"),
            caller(CallerKind::User, "bob", &["eng"], "ide", None).remember_key("sql"),
            caller(CallerKind::User, "alice", &[], "ide", None).remember_key("sql"),
            caller(CallerKind::User, "alice", &["eng", "x"], "ide", None).remember_key("sql"),
            caller(CallerKind::User, "alice", &["eng"], "chat", None).remember_key("sql"),
            caller(CallerKind::User, "alice", &["eng"], "ide", Some("")).remember_key("sql"),
            caller(CallerKind::User, "alice", &["eng"], "ide", None).remember_key("spark"),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn a_session_ended_by_delete_is_answered_no_content() {
        assert_eq!(
            answered_status(&Method::DELETE, StatusCode::ACCEPTED),
            StatusCode::NO_CONTENT
        );
        for (method, status) in [
            (Method::DELETE, StatusCode::OK),
            (Method::DELETE, StatusCode::NO_CONTENT),
            (Method::DELETE, StatusCode::METHOD_NOT_ALLOWED),
            (Method::DELETE, StatusCode::NOT_FOUND),
            (Method::POST, StatusCode::ACCEPTED),
            (Method::GET, StatusCode::ACCEPTED),
        ] {
            assert_eq!(
                answered_status(&method, status),
                status,
                "{method} {status}"
            );
        }
    }

    #[test]
    fn hosts_are_checked_without_their_port() {
        let allowed = crate::loopback_hosts();
        let check = |host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, host.parse().unwrap());
            host_allowed(&allowed, &headers)
        };
        assert!(check("localhost:7701"));
        assert!(check("127.0.0.1"));
        assert!(check("[::1]:7701"));
        assert!(check("LOCALHOST"));
        assert!(!check("evil.example.com"));
        assert!(!check("evil.example.com:7701"));
        assert!(!check("localhost.evil.com"));
        assert!(!host_allowed(&allowed, &HeaderMap::new()));
        assert!(host_allowed(&[], &HeaderMap::new()));
    }
}
