//! `/v1/teams`, `/v1/reviews` and `/v1/changes`: who owns servers, the reviews a server passes
//! before production, and the history of every change to the catalog.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, Query, State, rejection::JsonRejection, rejection::QueryRejection},
};
use registry_api::{ChangeList, DecideReview, Review, ReviewList, ReviewState, Team, TeamList};
use registry_store::{ChangeFilter, ReviewFilter};
use serde::Deserialize;

use crate::{
    RegistryState,
    http::{
        api::servers::{now_ms, reload},
        auth::Caller,
        error::ApiError,
    },
};

#[utoipa::path(get, operation_id = "listTeams", path = "/v1/teams", tag = "teams", description = "Every team.", responses((status = 200, description = "OK", body = registry_api::TeamList), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list_teams(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
) -> Result<Json<TeamList>, ApiError> {
    Ok(Json(TeamList {
        teams: state.store.list_teams().await?,
    }))
}

#[utoipa::path(get, operation_id = "getTeam", path = "/v1/teams/{name}", tag = "teams", description = "One team.", params(("name" = String, Path, description = "The team name")), responses((status = 200, description = "OK", body = registry_api::Team), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get_team(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Team>, ApiError> {
    Ok(Json(state.store.get_team(&name).await?))
}

/// `PUT /v1/teams/{name}`: create or replace a team (admins only). The body's `name`, if given,
/// must match the path.
#[utoipa::path(put, operation_id = "putTeam", path = "/v1/teams/{name}", tag = "teams", description = "Create or replace a team (admins).", params(("name" = String, Path, description = "The team name")), request_body = registry_api::Team, responses((status = 200, description = "OK", body = registry_api::Team), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn put_team(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<Team>, ApiError> {
    caller.require_any(&state.governance.admin_groups, "manage teams")?;
    let Json(mut body) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    match body.get("name") {
        None => {
            body["name"] = serde_json::Value::String(name.clone());
        }
        Some(n) if n.as_str() == Some(name.as_str()) => {}
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "name: the body names team {n}, the path {name:?}"
            )));
        }
    }
    let team: Team =
        serde_json::from_value(body).map_err(|e| ApiError::invalid(format!("team: {e}")))?;
    let problems = team.problems();
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems.join("; ")));
    }
    let saved = state
        .store
        .put_team(&team, &caller.0.user, now_ms())
        .await?;
    reload(&state, "the team was saved").await?;
    tracing::info!(team = %saved.name, by = %caller.0.user, "saved team");
    Ok(Json(saved))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReviewQuery {
    #[serde(default)]
    server: Option<String>,
    /// `pending`, `approved`, `rejected` or `superseded`.
    #[serde(default)]
    state: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    200
}

/// `GET /v1/reviews?server=&state=&limit=`: the review queue (newest first).
#[utoipa::path(get, operation_id = "listReviews", path = "/v1/reviews", tag = "reviews", description = "The review queue, newest first.", params(ReviewQuery), responses((status = 200, description = "OK", body = registry_api::ReviewList), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list_reviews(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    query: Result<Query<ReviewQuery>, QueryRejection>,
) -> Result<Json<ReviewList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let review_state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(ReviewState::parse(s).ok_or_else(|| {
            ApiError::invalid(format!(
                "state: must be pending, approved, rejected or superseded, got {s:?}"
            ))
        })?),
    };
    let reviews = state
        .store
        .list_reviews(&ReviewFilter {
            server: q.server,
            state: review_state,
            limit: q.limit,
        })
        .await?;
    Ok(Json(ReviewList { reviews }))
}

#[utoipa::path(get, operation_id = "listServerReviews", path = "/v1/servers/{name}/reviews", tag = "reviews", description = "Every review of one server.", params(("name" = String, Path, description = "The server name")), responses((status = 200, description = "OK", body = registry_api::ReviewList), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn server_reviews(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ReviewList>, ApiError> {
    state.store.get_server(&name).await?;
    let reviews = state
        .store
        .list_reviews(&ReviewFilter {
            server: Some(name),
            state: None,
            limit: 1000,
        })
        .await?;
    Ok(Json(ReviewList { reviews }))
}

#[utoipa::path(get, operation_id = "getReview", path = "/v1/reviews/{id}", tag = "reviews", description = "One review, with the definitions and automated findings under review.", params(("id" = String, Path, description = "`<server>.<round>.<kind>`")), responses((status = 200, description = "OK", body = registry_api::Review), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get_review(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Review>, ApiError> {
    Ok(Json(state.store.get_review(&id).await?))
}

#[utoipa::path(post, operation_id = "approveReview", path = "/v1/reviews/{id}/approve", tag = "reviews", description = "Approve a pending review (its kind's reviewers; never the server's owners). The last approval of a round pins its tool definitions and approves the server.", params(("id" = String, Path, description = "`<server>.<round>.<kind>`")), request_body = registry_api::DecideReview, responses((status = 200, description = "OK", body = registry_api::Review), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody), (status = 409, description = "Conflicts with the current state", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn approve(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<DecideReview>, JsonRejection>,
) -> Result<Json<Review>, ApiError> {
    decide(&state, &caller, &id, true, body).await
}

#[utoipa::path(post, operation_id = "rejectReview", path = "/v1/reviews/{id}/reject", tag = "reviews", description = "Reject a pending review, saying what must change.", params(("id" = String, Path, description = "`<server>.<round>.<kind>`")), request_body = registry_api::DecideReview, responses((status = 200, description = "OK", body = registry_api::Review), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody), (status = 409, description = "Conflicts with the current state", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn reject(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<DecideReview>, JsonRejection>,
) -> Result<Json<Review>, ApiError> {
    decide(&state, &caller, &id, false, body).await
}

/// Decides a review for `caller` (the API's body: a comment, optional when approving).
pub(crate) async fn decide(
    state: &RegistryState,
    caller: &Caller,
    id: &str,
    approve: bool,
    body: Result<Json<DecideReview>, JsonRejection>,
) -> Result<Json<Review>, ApiError> {
    let comment = match body {
        Ok(Json(d)) => d.comment,
        // An empty body is an approval without comment.
        Err(JsonRejection::MissingJsonContentType(_)) => String::new(),
        Err(e) => return Err(ApiError::invalid(e.body_text())),
    };
    decide_as(state, &caller.0, id, approve, &comment)
        .await
        .map(Json)
}

/// Decides a review as `who`, who must be in the review kind's reviewer groups and must not own
/// the server (nobody reviews their own server). The API and the web UI both decide here.
pub(crate) async fn decide_as(
    state: &RegistryState,
    who: &catalog::Principal,
    id: &str,
    approve: bool,
    comment: &str,
) -> Result<Review, ApiError> {
    let comment = comment.trim().to_owned();
    if !approve && comment.is_empty() {
        return Err(ApiError::invalid(
            "comment: a rejection must say what the owners need to change",
        ));
    }
    if comment.chars().count() > 4000 {
        return Err(ApiError::invalid("comment: at most 4000 characters"));
    }
    let review = state.store.get_review(id).await?;
    let reviewers = state.governance.reviewers(review.kind);
    if !who.in_any(reviewers) {
        return Err(ApiError::forbidden(format!(
            "{} may not decide {} reviews: that needs membership in one of [{}]",
            who.user,
            review.kind.as_str(),
            reviewers.join(", ")
        )));
    }
    let server = state.store.get_server(&review.server).await?;
    if server.owner_users.contains(&who.user) {
        return Err(ApiError::forbidden(format!(
            "{} owns {} and may not review it",
            who.user, server.name
        )));
    }
    let decided = state
        .store
        .decide_review(id, approve, &who.user, &comment, now_ms())
        .await?;
    reload(state, "the decision was stored").await?;
    tracing::info!(review = %id, by = %who.user, state = decided.state.as_str(), "decided review");
    Ok(decided)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ChangeQuery {
    /// `server:<name>` (with its reviews), `team:<name>` or `review:<id>`.
    #[serde(default)]
    subject: Option<String>,
    #[serde(default = "default_limit")]
    limit: u32,
}

/// `GET /v1/changes?subject=&limit=`: who changed what in the catalog, newest first.
#[utoipa::path(get, operation_id = "listChanges", path = "/v1/changes", tag = "changes", description = "Who changed what in the catalog, newest first.", params(ChangeQuery), responses((status = 200, description = "OK", body = registry_api::ChangeList), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list_changes(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    query: Result<Query<ChangeQuery>, QueryRejection>,
) -> Result<Json<ChangeList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let changes = state
        .store
        .list_changes(&ChangeFilter {
            subject: q.subject.filter(|s| !s.is_empty()),
            limit: q.limit,
        })
        .await?;
    Ok(Json(ChangeList { changes }))
}
