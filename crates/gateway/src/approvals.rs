//! Calls that need a person's approval: instead of running such a call, the gateway records a
//! proposal in the registry and answers the agent with a pending result naming it; so does a call
//! whose tool asked the user to confirm when the client cannot ask (the requester approves it).
//! The agent follows up through `switchboard_proposal`, a tool the gateway answers itself (and
//! lists to callers who see a tool that can need approval): once the proposal is approved, the first follow-up claims it
//! (exactly one gateway can), runs it as the original caller, and records the result, which every
//! later follow-up returns; a rejection comes back as an error with the approver's reason.

use std::{sync::Arc, time::Instant};

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use policy::ApprovalNeed;
use registry_api::{Approver, AuditRecord, NewProposal, Outcome, Proposal, ProposalState};
use serde_json::{Value, json};

use crate::{
    Gateway,
    catalog_cache::Server,
    error::{self, INVALID_REQUEST},
    upstream::{self, ActingAs},
};

/// The gateway's tool for following up on proposals.
pub(crate) const PROPOSAL_TOOL: &str = "switchboard_proposal";

/// JSON-RPC code of a refused call (the gateway's policy denials use it too).
const DENIED: i64 = -32003;
/// JSON-RPC code of a confirmation the client cannot give (the server SDK's
/// `CONFIRMATION_REQUIRED`).
pub(crate) const CONFIRMATION_REQUIRED: i64 = -32005;
/// JSON-RPC code of invalid parameters.
const INVALID_PARAMS: i64 = -32602;

/// The request `_meta` key servers dedupe calls by (the server SDK's `IDEMPOTENCY_KEY`).
const IDEMPOTENCY_KEY: &str = "dev.switchboard/idempotency-key";

/// The `_meta` key under which results describe a proposal.
const META: &str = "dev.switchboard/proposal";

/// The definition of [`PROPOSAL_TOOL`].
pub(crate) fn proposal_tool() -> Value {
    json!({
        "name": PROPOSAL_TOOL,
        "title": "Follow up on a call awaiting approval",
        "description": "Some calls need a person's approval before they run; such a call returns a proposal id instead of a result. Call this tool with that id to learn whether it was approved and, once it was, to run it and get its result (it runs once; later calls return the same result). A rejection returns an error with the approver's reason.",
        "inputSchema": {
            "type": "object",
            "properties": {"id": {"type": "string", "description": "The proposal id the call returned", "maxLength": 128}},
            "required": ["id"],
            "additionalProperties": false
        },
        "annotations": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}
    })
}

/// A call that needs approval, as `decide` found it.
pub(crate) struct Pending {
    pub(crate) record: AuditRecord,
    pub(crate) need: ApprovalNeed,
    pub(crate) arguments: Value,
    /// The tool's answer to a preview of the call, shown to the approvers.
    pub(crate) preview: Option<Value>,
}

/// How the agent asked: its progress token, if any, and whether it reads event streams.
pub(crate) struct Asked {
    pub(crate) client: Option<String>,
    pub(crate) progress_token: Option<Value>,
    pub(crate) accepts_sse: bool,
    /// A 2026-07-28 client that can elicit: a call still waiting is answered with an
    /// `input_required` round (asking the user to check again) instead of a pending result.
    pub(crate) round_trip: bool,
}

/// The `requestState` prefix of a 2026-07-28 call that waits for its proposal.
pub(crate) const STATE_PREFIX: &str = "switchboard-proposal:";

/// How often a waiting call looks at its proposal (a decision wakes it within this).
const POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// How often a waiting call tells the agent it is still waiting.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Records the proposal, then waits up to the configured time for a person to decide (telling an
/// agent that sent a progress token, over an event stream, that it is waiting): approved, it
/// runs once and the agent gets the result; rejected, an error with the reason; still undecided,
/// a pending result naming the proposal, to follow up with [`PROPOSAL_TOOL`].
pub(crate) async fn propose(
    gw: &Arc<Gateway>,
    server: &Arc<Server>,
    pending: Pending,
    asked: Asked,
    id: &Value,
) -> Response {
    let stored = match open(gw, server, pending, asked.client, id).await {
        Ok(stored) => stored,
        Err(error) => return json(error),
    };
    let round_trip = asked.round_trip;
    if gw.approval_wait.is_zero() {
        return json(as_tool_result(
            server,
            &stored,
            answer_for(&stored, id, round_trip),
        ));
    }
    let deadline = Instant::now() + gw.approval_wait;
    match (asked.progress_token, asked.accepts_sse) {
        (Some(token), true) => {
            // Stream progress while waiting, then the outcome, as server-sent events.
            let (events, stream) = tokio::sync::mpsc::channel::<Value>(4);
            let (gw, server, id) = (gw.clone(), server.clone(), id.clone());
            tokio::spawn(async move {
                let tick = |waited: u64| {
                    let events = events.clone();
                    let message = json!({
                        "jsonrpc": "2.0",
                        "method": "notifications/progress",
                        "params": {
                            "progressToken": token,
                            "progress": waited,
                            "message": format!(
                                "waiting for approval by {} (proposal {})",
                                stored.proposal.approver, stored.proposal.id
                            ),
                            // Clients that show approvals inline (the web chat) read the
                            // proposal here.
                            "_meta": { META: describe(&stored) },
                        }
                    });
                    async move {
                        let _ = events.send(message).await;
                    }
                };
                let outcome = as_tool_result(
                    &server,
                    &stored,
                    wait(&gw, &server, &stored, deadline, &id, round_trip, tick).await,
                );
                let _ = events.send(outcome).await;
            });
            let body = futures::stream::unfold(stream, |mut stream| async move {
                let message = stream.recv().await?;
                let event = format!("event: message\ndata: {message}\n\n");
                Some((
                    Ok::<_, std::convert::Infallible>(bytes::Bytes::from(event)),
                    stream,
                ))
            });
            (
                StatusCode::OK,
                [
                    (axum::http::header::CONTENT_TYPE, "text/event-stream"),
                    (axum::http::header::CACHE_CONTROL, "no-cache"),
                ],
                axum::body::Body::from_stream(body),
            )
                .into_response()
        }
        _ => json(as_tool_result(
            server,
            &stored,
            wait(gw, server, &stored, deadline, id, round_trip, |_| async {}).await,
        )),
    }
}

/// Records the proposal for `pending` (and its audit record); the JSON-RPC error for the agent
/// when the registry cannot take it.
async fn open(
    gw: &Arc<Gateway>,
    server: &Server,
    pending: Pending,
    client: Option<String>,
    id: &Value,
) -> Result<Proposal, Value> {
    let Pending {
        mut record,
        need,
        arguments,
        preview,
    } = pending;
    let started = Instant::now();
    let approver = match Approver::parse(&need.approver) {
        Ok(a) => a,
        // The engine only yields approvers the compiler validated; be safe anyway.
        Err(_) => Approver::OwnerTeam,
    };
    let proposal = NewProposal {
        id: format!("prop-{}", record.id),
        server: server.name.clone(),
        tool: record.tool.clone().unwrap_or_default(),
        arguments,
        user: record.user.clone(),
        groups: record.groups.clone(),
        surface: record.surface.clone().unwrap_or_default(),
        channel: record.channel.clone(),
        client,
        reason: need.policies.join(", "),
        approver,
        expires_at_ms: crate::proxy::now_ms()
            + i64::try_from(gw.approval_ttl.as_millis()).unwrap_or(i64::MAX / 2),
        preview,
    };
    record.latency_ms = started.elapsed().as_millis() as u64;
    match gw.registry.create_proposal(&proposal).await {
        Ok(stored) => {
            record.outcome = Outcome::PendingApproval;
            record.is_error = false;
            record.proposal = Some(stored.proposal.id.clone());
            record.detail = Some(format!(
                "proposal {}: awaiting approval by {}",
                stored.proposal.id, stored.proposal.approver
            ));
            gw.audit.record(record).await;
            tracing::info!(proposal = %stored.proposal.id, server = %server.name,
                tool = %stored.proposal.tool, user = %stored.proposal.user, "call awaits approval");
            Ok(stored)
        }
        Err(e) => {
            tracing::error!(error = %e, "could not record a proposal");
            record.outcome = Outcome::Error;
            record.is_error = true;
            record.detail = Some("the proposal could not be recorded; nothing ran".into());
            gw.audit.record(record).await;
            Err(error::jsonrpc_error(
                id,
                crate::error::UPSTREAM,
                "this call needs approval, but the gateway could not record the proposal; nothing ran",
                None,
            ))
        }
    }
}

/// The question of a tool that asked for a confirmation its client cannot give (the server SDK's
/// `CONFIRMATION_REQUIRED` error), if that is what `message` is.
pub(crate) fn confirmation_asked(message: &Value) -> Option<String> {
    let error = message.get("error")?;
    (error.get("code")?.as_i64()? == CONFIRMATION_REQUIRED).then(|| {
        error
            .pointer("/data/confirmation")
            .and_then(Value::as_str)
            .or_else(|| error.get("message").and_then(Value::as_str))
            .unwrap_or("confirm this action")
            .chars()
            .take(500)
            .collect()
    })
}

/// A tool asked to confirm and the client cannot: the call becomes a proposal the requester
/// approves (in the inbox or with the CLI); run once approved, it arrives confirmed. Returns the
/// message for the agent in place of the error.
pub(crate) async fn confirm_by_proposal(
    gw: &Arc<Gateway>,
    server: &Server,
    record: AuditRecord,
    arguments: Value,
    question: String,
    id: &Value,
) -> Value {
    let pending = Pending {
        record,
        need: ApprovalNeed {
            approver: "self".into(),
            policies: vec![format!("the tool asks you to confirm: {question}")],
        },
        arguments,
        preview: None,
    };
    match open(gw, server, pending, None, id).await {
        Ok(stored) => as_tool_result(server, &stored, result(id, pending_result(&stored))),
        Err(error) => error,
    }
}

/// The request `_meta` key that asks a tool for a preview (the server SDK's `PREVIEW_KEY`); the
/// tool's answer carries its preview under the same key of the result's `_meta`.
const PREVIEW_KEY: &str = "dev.switchboard/preview";

/// Longest preview kept with a proposal, in bytes of JSON.
const MAX_PREVIEW_BYTES: usize = 64 * 1024;

/// Marks a `tools/call` request as a preview.
pub(crate) fn ask_preview(message: &mut Value) {
    if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
        let meta = params.entry("_meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(PREVIEW_KEY.into(), Value::Bool(true));
        }
    }
}

/// What a tool answered to a preview.
pub(crate) enum PreviewAnswer {
    /// Its preview (`{"summary", "details"}`): propose the call with it.
    Preview(Value),
    /// A JSON-RPC error, a tool error or an `input_required` round: the caller gets it as is.
    PassThrough,
    /// A plain result without a preview: the tool ignored the request.
    NotAPreview,
}

/// Reads a tool's answer to a preview.
pub(crate) fn preview_of(message: &Value) -> PreviewAnswer {
    let Some(result) = message.get("result") else {
        return PreviewAnswer::PassThrough;
    };
    let input_round = result.get("resultType").and_then(Value::as_str) == Some("input_required");
    let failed = result.get("isError").and_then(Value::as_bool) == Some(true);
    if input_round || failed {
        return PreviewAnswer::PassThrough;
    }
    match result.pointer(&format!("/_meta/{}", PREVIEW_KEY.replace('/', "~1"))) {
        Some(preview) if preview.to_string().len() <= MAX_PREVIEW_BYTES => {
            PreviewAnswer::Preview(preview.clone())
        }
        Some(preview) => PreviewAnswer::Preview(json!({
            "summary": preview.get("summary").and_then(Value::as_str).map(|s| s.chars().take(2000).collect::<String>()),
            "truncated": format!("the preview was larger than {MAX_PREVIEW_BYTES} bytes; only its summary is kept"),
        })),
        None => PreviewAnswer::NotAPreview,
    }
}

/// A previewed call becomes a proposal carrying its preview; returns the message for the agent
/// (a pending result naming the proposal, or the error that kept it from being recorded).
pub(crate) async fn propose_previewed(
    gw: &Arc<Gateway>,
    server: &Server,
    pending: Pending,
    id: &Value,
) -> Value {
    match open(gw, server, pending, None, id).await {
        Ok(stored) => as_tool_result(server, &stored, result(id, pending_result(&stored))),
        Err(error) => error,
    }
}

/// Waits for a decision on `proposal` until `deadline`, calling `tick` with the seconds waited
/// every [`PROGRESS_EVERY`]; returns the message for the agent.
async fn wait<F, Fut>(
    gw: &Arc<Gateway>,
    server: &Server,
    proposal: &Proposal,
    deadline: Instant,
    id: &Value,
    round_trip: bool,
    tick: F,
) -> Value
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let mut last_tick = started;
    let mut current = proposal.clone();
    loop {
        match current.state {
            ProposalState::Pending => {}
            ProposalState::Approved | ProposalState::Running => {
                return match run(gw, server, &current.proposal.id).await {
                    Ok(p) => answer(&p, id),
                    Err(failure) => failure(id),
                };
            }
            _ => return answer(&current, id),
        }
        if Instant::now() >= deadline {
            return answer_for(&current, id, round_trip);
        }
        if last_tick.elapsed() >= PROGRESS_EVERY {
            last_tick = Instant::now();
            tick(started.elapsed().as_secs()).await;
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
        if let Ok(latest) = gw.registry.get_proposal(&current.proposal.id).await {
            current = latest;
        }
    }
}

/// A `switchboard_proposal` call: where the caller's proposal stands, running it once approved.
pub(crate) async fn follow_up(
    gw: &Arc<Gateway>,
    server: &Server,
    caller: &str,
    arguments: Option<&Value>,
    id: &Value,
) -> Response {
    let Some(proposal_id) = arguments
        .and_then(|a| a.get("id"))
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && p.len() <= 128)
    else {
        return error::respond(
            StatusCode::OK,
            id,
            INVALID_PARAMS,
            "switchboard_proposal takes {\"id\": \"<proposal id>\"}",
        );
    };
    let not_found = || {
        error::respond(
            StatusCode::OK,
            id,
            INVALID_PARAMS,
            &format!("no proposal {proposal_id} of yours on this server"),
        )
    };
    let proposal = match gw.registry.get_proposal(proposal_id).await {
        Ok(p) if p.proposal.user == caller && p.proposal.server == server.name => p,
        Ok(_) => return not_found(),
        Err(e) if e.is_not_found() => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read a proposal");
            return json(unavailable(id));
        }
    };
    // Approved, or claimed by a gateway that may have died: try to claim it (the registry says
    // whether a running claim has outlived its lease).
    let proposal = match proposal.state {
        ProposalState::Approved | ProposalState::Running => {
            match run(gw, server, proposal_id).await {
                Ok(p) => p,
                Err(failure) => return json(failure(id)),
            }
        }
        _ => proposal,
    };
    json(answer(&proposal, id))
}

/// Like [`answer`], but a proposal still waiting is an `input_required` round for a client that
/// takes those (it asks its user to check again, then calls again with the state).
fn answer_for(proposal: &Proposal, id: &Value, round_trip: bool) -> Value {
    if !round_trip || proposal.state != ProposalState::Pending {
        return answer(proposal, id);
    }
    let p = &proposal.proposal;
    result(
        id,
        json!({
            "resultType": "input_required",
            "inputRequests": {
                "switchboard_approval": {
                    "method": "elicitation/create",
                    "params": {
                        "message": format!(
                            "The call to {} is waiting for approval by {} (proposal {}). Accept to check again.",
                            p.tool, p.approver, p.id
                        ),
                        "requestedSchema": {
                            "type": "object",
                            "properties": {"check": {"type": "boolean", "title": "Check again"}}
                        }
                    }
                }
            },
            "requestState": format!("{STATE_PREFIX}{}", p.id),
            "_meta": { META: describe(proposal) }
        }),
    )
}

/// A 2026-07-28 call coming back with the state of its proposal: the same caller, server, tool
/// and arguments; it waits again for a decision and gets the result once approved.
pub(crate) async fn resume(
    gw: &Arc<Gateway>,
    server: &Server,
    caller: &str,
    params: &Value,
    id: &Value,
) -> Response {
    let proposal_id = params
        .get("requestState")
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix(STATE_PREFIX))
        .unwrap_or_default();
    let tool = params
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let digest = catalog::json_digest(
        params
            .get("arguments")
            .unwrap_or(&Value::Object(Default::default())),
    );
    let proposal = match gw.registry.get_proposal(proposal_id).await {
        Ok(p)
            if p.proposal.user == caller
                && p.proposal.server == server.name
                && p.proposal.tool == tool
                && p.argument_digest == digest =>
        {
            p
        }
        Ok(_) | Err(registry_client::ClientError::Api { status: 404, .. }) => {
            return error::respond(
                StatusCode::OK,
                id,
                INVALID_PARAMS,
                "the requestState names no proposal of this call",
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read a proposal");
            return json(unavailable(id));
        }
    };
    let deadline = Instant::now() + gw.approval_wait;
    json(as_tool_result(
        server,
        &proposal,
        wait(gw, server, &proposal, deadline, id, true, |_| async {}).await,
    ))
}

/// A pending answer in place of the result of a tool that declares an output schema is marked
/// `isError`: clients check such a tool's results against its schema, and "not run yet" cannot
/// conform (the official SDKs would reject the answer instead of showing it to the agent).
fn as_tool_result(server: &Server, proposal: &Proposal, mut message: Value) -> Value {
    let has_schema = server
        .tool(&proposal.proposal.tool)
        .is_some_and(|t| t.definition.output_schema.is_some());
    if let Some(result) = message.get_mut("result").and_then(Value::as_object_mut)
        && has_schema
        && !result.contains_key("structuredContent")
        && result.get("resultType").and_then(Value::as_str) != Some("input_required")
    {
        result.insert("isError".into(), Value::Bool(true));
    }
    message
}

/// What the agent hears about `proposal` in its current state (a JSON-RPC response).
fn answer(proposal: &Proposal, id: &Value) -> Value {
    let p = &proposal.proposal;
    match proposal.state {
        ProposalState::Pending | ProposalState::Approved | ProposalState::Running => {
            result(id, pending_result(proposal))
        }
        ProposalState::Done => {
            let mut outcome = proposal
                .result
                .clone()
                .unwrap_or_else(|| json!({"content": []}));
            if let Some(object) = outcome.as_object_mut() {
                let meta = object.entry("_meta").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert(META.into(), describe(proposal));
                }
            }
            result(id, outcome)
        }
        ProposalState::Rejected => refusal(
            id,
            &format!(
                "{} rejected the call to {} ({}): {}",
                proposal.decided_by.as_deref().unwrap_or("an approver"),
                p.tool,
                p.id,
                proposal.comment.as_deref().unwrap_or("no reason given")
            ),
            proposal,
        ),
        ProposalState::Expired => refusal(
            id,
            &format!(
                "nobody approved the call to {} ({}) before it expired; call the tool again to propose it anew",
                p.tool, p.id
            ),
            proposal,
        ),
        ProposalState::Failed => refusal(
            id,
            &format!(
                "the approved call to {} ({}) could not run: {}",
                p.tool,
                p.id,
                proposal
                    .result
                    .as_ref()
                    .and_then(|r| r.get("error"))
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
            ),
            proposal,
        ),
    }
}

type Failure = Box<dyn FnOnce(&Value) -> Value + Send>;

/// Claims the approved proposal and runs it as the original caller. Exactly one claimant runs
/// it; anyone else reads where it stands.
async fn run(gw: &Arc<Gateway>, server: &Server, proposal_id: &str) -> Result<Proposal, Failure> {
    let claimed = match gw.registry.claim_proposal(proposal_id).await {
        Ok(p) => p,
        Err(registry_client::ClientError::Api { status: 409, .. }) => {
            // Someone else claimed it first (or it changed): report where it stands now.
            return gw
                .registry
                .get_proposal(proposal_id)
                .await
                .map_err(|_| Box::new(unavailable) as Failure);
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not claim a proposal");
            return Err(Box::new(unavailable));
        }
    };
    let p = &claimed.proposal;
    let started = Instant::now();
    let outcome = async {
        let client = upstream::connect(
            gw,
            server,
            &ActingAs {
                user: &p.user,
                groups: &p.groups,
                surface: &p.surface,
                channel: p.channel.as_deref(),
                confirmation: Some(&p.id),
            },
        )
        .await?;
        let mut params = rmcp::model::CallToolRequestParams::new(p.tool.clone());
        if let Some(args) = p.arguments.as_object() {
            params = params.with_arguments(args.clone());
        }
        // Servers run a keyed call once: if a gateway died mid-run, the next one's run returns
        // the first outcome instead of acting again.
        let mut meta = serde_json::Map::new();
        meta.insert(IDEMPOTENCY_KEY.into(), Value::String(p.id.clone()));
        params.meta = Some(rmcp::model::RequestMetaObject(rmcp::model::MetaObject(
            meta,
        )));
        let called = client.call_tool(params).await;
        let _ = client.cancel().await;
        let called = called.map_err(|e| format!("the server refused the call: {e}"))?;
        serde_json::to_value(&called).map_err(|e| e.to_string())
    }
    .await;
    let (ok, value) = match &outcome {
        Ok(value) => (true, value.clone()),
        Err(e) => (false, json!({ "error": e })),
    };
    let is_error = !ok
        || value
            .get("isError")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    gw.audit
        .record(AuditRecord {
            id: crate::proxy::uuid_v7(),
            time_ms: crate::proxy::now_ms(),
            user: p.user.clone(),
            groups: p.groups.clone(),
            surface: Some(p.surface.clone()),
            channel: p.channel.clone(),
            server: p.server.clone(),
            method: "tools/call".into(),
            tool: Some(p.tool.clone()),
            argument_digest: Some(claimed.argument_digest.clone()),
            outcome: match (ok, is_error) {
                (false, _) => Outcome::Error,
                (true, true) => Outcome::ToolError,
                (true, false) => Outcome::Ok,
            },
            is_error,
            detail: Some(format!(
                "approved proposal {} (by {})",
                p.id,
                claimed.decided_by.as_deref().unwrap_or("?")
            )),
            latency_ms: started.elapsed().as_millis() as u64,
            arguments: crate::audit::kept_arguments(server, &p.tool, Some(&p.arguments)),
            proposal: Some(p.id.clone()),
            team: Some(server.owner_team.clone()),
            minutes_saved: crate::audit::minutes_saved(server, &p.tool),
            trace_id: None,
        })
        .await;
    match gw.registry.finish_proposal(&p.id, ok, &value).await {
        Ok(finished) => Ok(finished),
        Err(e) => {
            // The call ran; its result could not be recorded. Say so rather than run it again.
            tracing::error!(proposal = %p.id, error = %e, "an approved call ran but its result could not be recorded");
            let mut finished = claimed.clone();
            finished.state = if ok {
                ProposalState::Done
            } else {
                ProposalState::Failed
            };
            finished.result = Some(value);
            Ok(finished)
        }
    }
}

fn describe(proposal: &Proposal) -> Value {
    let p = &proposal.proposal;
    json!({
        "id": p.id,
        "state": proposal.state.as_str(),
        "approver": p.approver.to_string(),
        "tool": p.tool,
        "expires_at_ms": p.expires_at_ms,
        "decided_by": proposal.decided_by,
    })
}

/// The result that tells the agent its call waits for a person.
fn pending_result(proposal: &Proposal) -> Value {
    let p = &proposal.proposal;
    let text = match proposal.state {
        ProposalState::Running | ProposalState::Approved => format!(
            "The call to {} ({}) was approved and is running. Call {PROPOSAL_TOOL} with {{\"id\": \"{}\"}} again for its result.",
            p.tool, p.id, p.id
        ),
        _ => format!(
            "The call to {} needs approval by {} before it runs, so it has not run. Proposal {} is waiting for a person; call {PROPOSAL_TOOL} with {{\"id\": \"{}\"}} to follow it up (it runs once approved).",
            p.tool, p.approver, p.id, p.id
        ),
    };
    // The approvers see what the call would change; so does the agent.
    let text = match p
        .preview
        .as_ref()
        .and_then(|v| v.get("summary"))
        .and_then(Value::as_str)
    {
        Some(summary) => format!("{text} What it would change: {summary}."),
        None => text,
    };
    json!({
        // 2026-07-28 results say they are complete; earlier clients ignore the field.
        "resultType": "complete",
        "content": [{"type": "text", "text": text}],
        "isError": false,
        "_meta": { META: describe(proposal) }
    })
}

fn json(message: Value) -> Response {
    (StatusCode::OK, axum::Json(message)).into_response()
}

fn result(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn refusal(id: &Value, message: &str, proposal: &Proposal) -> Value {
    let data = json!({ "policy": "approval", "proposal": describe(proposal) });
    error::jsonrpc_error(id, DENIED, message, Some(data))
}

fn unavailable(id: &Value) -> Value {
    error::jsonrpc_error(
        id,
        INVALID_REQUEST,
        "the registry is unavailable; try again",
        None,
    )
}
