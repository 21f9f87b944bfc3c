//! `/v1/proposals`: calls waiting for a person's approval. The gateway proposes, claims an
//! approved proposal to run it, and records the result; people list what they may decide and
//! approve or reject it, one at a time or in batches. A proposal's arguments are shown only to
//! the requester, those who may decide it, and auditors.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, Query, State, rejection::JsonRejection, rejection::QueryRejection},
    http::StatusCode,
};
use catalog::Principal;
use registry_api::{
    Approver, BatchOutcome, DecideProposals, NewProposal, Proposal, ProposalList, ProposalState,
    Refused, ServerView,
};
use registry_store::{ProposalFilter, StoreError};
use serde::{Deserialize, Serialize};

use crate::{
    RegistryState,
    http::{api::servers::now_ms, auth::Caller, error::ApiError},
};

/// The most proposals one batch decision takes.
const MAX_BATCH: usize = 500;
/// The largest arguments a proposal keeps.
const MAX_ARGUMENT_BYTES: usize = 64 * 1024;

/// Whether `who` may approve or reject `proposal`.
pub(crate) fn may_decide(
    who: &Principal,
    proposal: &Proposal,
    server: Option<&ServerView>,
) -> bool {
    match &proposal.proposal.approver {
        Approver::Requester => who.user == proposal.proposal.user,
        Approver::OwnerTeam => {
            server.is_some_and(|s| s.owner_users.contains(&who.user) || who.in_any(&s.owner_groups))
        }
        Approver::Group(group) => who.in_any(std::slice::from_ref(group)),
    }
}

/// Whether `who` may see `proposal` (and its arguments).
fn may_see(
    state: &RegistryState,
    who: &Principal,
    proposal: &Proposal,
    server: Option<&ServerView>,
) -> bool {
    who.user == proposal.proposal.user
        || who.in_any(&state.auditor_groups)
        || may_decide(who, proposal, server)
}

fn server_of<'a>(servers: &'a [ServerView], name: &str) -> Option<&'a ServerView> {
    servers.iter().find(|s| s.name == name)
}

#[utoipa::path(post, operation_id = "createProposal", path = "/v1/proposals", tag = "proposals",
    description = "Propose a call that needs approval instead of running it (the gateway). Proposing an id again returns the stored proposal.",
    request_body = NewProposal,
    responses((status = 200, description = "OK", body = Proposal),
        (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody),
        (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody),
        (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    body: Result<Json<NewProposal>, JsonRejection>,
) -> Result<Json<Proposal>, ApiError> {
    caller.require_any(&state.writer_groups, "propose calls")?;
    let Json(proposal) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    let now = now_ms();
    let mut problems = Vec::new();
    if proposal.id.is_empty()
        || proposal.id.len() > 128
        || !proposal
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        problems.push("id: 1-128 letters, digits, '-', '_' or '.'".to_owned());
    }
    if proposal.expires_at_ms <= now {
        problems.push("expires_at_ms: must be in the future".to_owned());
    }
    if serde_json::to_vec(&proposal.arguments).map_or(0, |b| b.len()) > MAX_ARGUMENT_BYTES {
        problems.push(format!("arguments: at most {MAX_ARGUMENT_BYTES} bytes"));
    }
    if !proposal.arguments.is_object() {
        problems.push("arguments: must be a JSON object".to_owned());
    }
    if state.store.get_server(&proposal.server).await.is_err() {
        problems.push(format!("server: {} is not registered", proposal.server));
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems.join("; ")));
    }
    let stored = state.store.create_proposal(&proposal, now).await?;
    tracing::info!(proposal = %stored.proposal.id, server = %stored.proposal.server,
        tool = %stored.proposal.tool, user = %stored.proposal.user, "proposal opened");
    Ok(Json(stored))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ProposalQuery {
    /// `pending`, `approved`, `rejected`, `expired`, `running`, `done` or `failed`.
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    server: Option<String>,
    /// Only the proposals this caller may decide.
    #[serde(default)]
    decidable: bool,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    200
}

#[utoipa::path(get, operation_id = "listProposals", path = "/v1/proposals", tag = "proposals",
    description = "Proposals the caller may see (their own, those they may decide, all for auditors), newest first.",
    params(ProposalQuery),
    responses((status = 200, description = "OK", body = ProposalList),
        (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody),
        (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    query: Result<Query<ProposalQuery>, QueryRejection>,
) -> Result<Json<ProposalList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let wanted = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(ProposalState::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "state: must be one of pending, approved, rejected, expired, running, done, failed; got {s:?}"
            ))
        })?),
    };
    let proposals =
        visible_proposals(&state, &caller.0, wanted, q.server, q.decidable, q.limit).await?;
    Ok(Json(ProposalList { proposals }))
}

/// The proposals `who` may see (or, with `decidable`, may decide), newest first.
pub(crate) async fn visible_proposals(
    state: &RegistryState,
    who: &Principal,
    wanted: Option<ProposalState>,
    server: Option<String>,
    decidable: bool,
    limit: u32,
) -> Result<Vec<Proposal>, ApiError> {
    let snapshot = state.snapshot();
    let all = state
        .store
        .list_proposals(
            &ProposalFilter {
                state: wanted,
                server,
                user: None,
                limit: 10_000,
            },
            now_ms(),
        )
        .await?;
    Ok(all
        .into_iter()
        .filter(|p| {
            let server = server_of(&snapshot.servers, &p.proposal.server);
            if decidable {
                may_decide(who, p, server)
            } else {
                may_see(state, who, p, server)
            }
        })
        .take(limit.clamp(1, 10_000) as usize)
        .collect())
}

#[utoipa::path(get, operation_id = "getProposal", path = "/v1/proposals/{id}", tag = "proposals",
    description = "One proposal, if the caller may see it.",
    params(("id" = String, Path, description = "The proposal id")),
    responses((status = 200, description = "OK", body = Proposal),
        (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody),
        (status = 404, description = "Not found", body = registry_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Proposal>, ApiError> {
    let proposal = state.store.get_proposal(&id, now_ms()).await?;
    let snapshot = state.snapshot();
    let server = server_of(&snapshot.servers, &proposal.proposal.server);
    // Services (the gateway) read every proposal; people only what they may see.
    if caller.0.in_any(&state.writer_groups) || may_see(&state, &caller.0, &proposal, server) {
        Ok(Json(proposal))
    } else {
        Err(ApiError::not_found(format!("proposal {id} not found")))
    }
}

#[utoipa::path(post, operation_id = "approveProposals", path = "/v1/proposals/approve", tag = "proposals",
    description = "Approve a batch of pending proposals with one comment. Each is decided on its own; those the caller may not decide, or that are no longer pending, are refused with the reason.",
    request_body = DecideProposals,
    responses((status = 200, description = "OK", body = BatchOutcome),
        (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody),
        (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn approve(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    body: Result<Json<DecideProposals>, JsonRejection>,
) -> Result<Json<BatchOutcome>, ApiError> {
    let Json(batch) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    decide_batch(&state, &caller.0, &batch.ids, true, &batch.comment)
        .await
        .map(Json)
}

#[utoipa::path(post, operation_id = "rejectProposals", path = "/v1/proposals/reject", tag = "proposals",
    description = "Reject a batch of pending proposals; the comment (required) reaches the agents.",
    request_body = DecideProposals,
    responses((status = 200, description = "OK", body = BatchOutcome),
        (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody),
        (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn reject(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    body: Result<Json<DecideProposals>, JsonRejection>,
) -> Result<Json<BatchOutcome>, ApiError> {
    let Json(batch) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    decide_batch(&state, &caller.0, &batch.ids, false, &batch.comment)
        .await
        .map(Json)
}

/// Decides each of `ids` as `who`: the API and the web UI both decide here.
pub(crate) async fn decide_batch(
    state: &RegistryState,
    who: &Principal,
    ids: &[String],
    approve: bool,
    comment: &str,
) -> Result<BatchOutcome, ApiError> {
    let comment = comment.trim();
    if ids.is_empty() {
        return Err(ApiError::invalid("ids: name at least one proposal"));
    }
    if ids.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "ids: at most {MAX_BATCH} proposals per decision"
        )));
    }
    if !approve && comment.is_empty() {
        return Err(ApiError::invalid(
            "comment: a rejection must say why; the agent is told",
        ));
    }
    if comment.chars().count() > 4000 {
        return Err(ApiError::invalid("comment: at most 4000 characters"));
    }
    let snapshot = state.snapshot();
    let mut outcome = BatchOutcome {
        decided: Vec::new(),
        refused: Vec::new(),
    };
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id.as_str()) {
            continue;
        }
        let refuse = |reason: String| Refused {
            id: id.clone(),
            reason,
        };
        let proposal = match state.store.get_proposal(id, now_ms()).await {
            Ok(p) => p,
            Err(StoreError::NotFound(_)) => {
                outcome.refused.push(refuse("no such proposal".into()));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let server = server_of(&snapshot.servers, &proposal.proposal.server);
        if !may_decide(who, &proposal, server) {
            // Someone who may not even see it learns only that it is not theirs to decide.
            outcome.refused.push(refuse(format!(
                "{} may not decide it: it needs approval by {}",
                who.user, proposal.proposal.approver
            )));
            continue;
        }
        match state
            .store
            .decide_proposal(id, approve, &who.user, comment, now_ms())
            .await
        {
            Ok(decided) => outcome.decided.push(decided),
            Err(StoreError::Conflict(reason)) => outcome.refused.push(refuse(reason)),
            Err(e) => return Err(e.into()),
        }
    }
    tracing::info!(by = %who.user, approve, decided = outcome.decided.len(),
        refused = outcome.refused.len(), "decided proposals");
    Ok(outcome)
}

/// `POST /v1/proposals/{id}/finish`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct Finish {
    pub(crate) ok: bool,
    /// The tool's result, or why it could not run.
    pub(crate) result: serde_json::Value,
}

#[utoipa::path(post, operation_id = "claimProposal", path = "/v1/proposals/{id}/claim", tag = "proposals",
    description = "Claim an approved proposal to run it (the gateway). Exactly one claimant gets it; the others get 409. A claim that outlived its lease without a result (its gateway died) is taken over; servers dedupe the call by proposal id.",
    params(("id" = String, Path, description = "The proposal id")),
    responses((status = 200, description = "OK", body = Proposal),
        (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody),
        (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody),
        (status = 409, description = "Not approved, or claimed already", body = registry_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn claim(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Proposal>, ApiError> {
    caller.require_any(&state.writer_groups, "run proposals")?;
    match state
        .store
        .claim_proposal(
            &id,
            &caller.0.user,
            now_ms(),
            i64::try_from(state.governance.claim_lease.as_millis()).unwrap_or(i64::MAX),
        )
        .await?
    {
        Some(p) => Ok(Json(p)),
        None => {
            let current = state.store.get_proposal(&id, now_ms()).await?;
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "proposal {id} is {}; only an approved, unclaimed proposal can be claimed",
                    current.state.as_str()
                ),
            ))
        }
    }
}

#[utoipa::path(post, operation_id = "finishProposal", path = "/v1/proposals/{id}/finish", tag = "proposals",
    description = "Record what running a claimed proposal gave (its claimant only).",
    params(("id" = String, Path, description = "The proposal id")), request_body = Finish,
    responses((status = 200, description = "OK", body = Proposal),
        (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody),
        (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody),
        (status = 409, description = "Not running under this claimant", body = registry_api::ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn finish(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<Finish>, JsonRejection>,
) -> Result<Json<Proposal>, ApiError> {
    caller.require_any(&state.writer_groups, "run proposals")?;
    let Json(finish) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    Ok(Json(
        state
            .store
            .finish_proposal(&id, &caller.0.user, finish.ok, &finish.result, now_ms())
            .await?,
    ))
}
