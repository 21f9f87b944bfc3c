//! `/v1/insights` and `/v1/feedback`: the north-star report of a month (time saved, monthly
//! active users, error and approval-rejection rates, latency percentiles, per tool, server,
//! team and day), and people's thumbs up or down on a tool's answers, which the report shows
//! beside the owner's minutes-saved estimate.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Query, State, rejection::JsonRejection, rejection::QueryRejection},
    http::StatusCode,
};
use registry_api::{Feedback, Insights, NewFeedback};
use serde::Deserialize;

use crate::{
    RegistryState,
    http::{api::servers::now_ms, auth::Caller, error::ApiError},
    insights::Month,
};

/// Characters of a feedback comment kept at most.
const MAX_COMMENT: usize = 2000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct MonthQuery {
    /// `YYYY-MM` (UTC); default: the current month.
    month: Option<String>,
}

/// The report of `month` (default: this one).
pub(crate) async fn month_report(
    state: &RegistryState,
    month: Option<&str>,
) -> Result<Insights, ApiError> {
    let month = match month.filter(|m| !m.is_empty()) {
        Some(m) => Month::parse(m).map_err(ApiError::invalid)?,
        None => Month::of(now_ms()),
    };
    let (from, to) = month.range_ms();
    let (calls, proposals, feedback) = tokio::try_join!(
        state.store.call_facts(from, to),
        state.store.proposal_facts(from, to, now_ms()),
        state.store.list_feedback(from, to),
    )?;
    let servers = state.snapshot().servers.clone();
    Ok(crate::insights::report(
        month, &calls, &proposals, &feedback, &servers,
    ))
}

#[utoipa::path(get, operation_id = "getInsights", path = "/v1/insights", tag = "insights", description = "The month's north-star report: time saved (successful calls × the owner's minutes-saved estimate at the time of each call), monthly active users, error and approval-rejection rates and latency percentiles, per tool (with people's feedback beside the estimate), server, team and day.", params(MonthQuery), responses((status = 200, description = "OK", body = registry_api::Insights), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 422, description = "Invalid input", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    query: Result<Query<MonthQuery>, QueryRejection>,
) -> Result<Json<Insights>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    Ok(Json(month_report(&state, q.month.as_deref()).await?))
}

/// Stores `feedback` from `user`, after checking that the tool exists.
pub(crate) async fn give_feedback(
    state: &RegistryState,
    user: &str,
    feedback: NewFeedback,
) -> Result<Feedback, ApiError> {
    let known = state.snapshot().servers.iter().any(|s| {
        s.name == feedback.server && s.tools.iter().any(|t| t.definition.name == feedback.tool)
    });
    if !known {
        return Err(ApiError::not_found(format!(
            "server {} has no tool {}",
            feedback.server, feedback.tool
        )));
    }
    let comment = feedback
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT)
    {
        return Err(ApiError::invalid(format!(
            "comment is at most {MAX_COMMENT} characters"
        )));
    }
    let stored = Feedback {
        id: uuid::Uuid::now_v7().to_string(),
        time_ms: now_ms(),
        user: user.to_owned(),
        server: feedback.server,
        tool: feedback.tool,
        rating: feedback.rating,
        comment,
        audit_id: feedback.audit_id,
        surface: feedback.surface,
    };
    state.store.add_feedback(&stored).await?;
    Ok(stored)
}

#[utoipa::path(post, operation_id = "giveFeedback", path = "/v1/feedback", tag = "insights", description = "Rate a tool's answer, thumbs up or down, as the caller (surfaces send this when a person rates an answer).", request_body = registry_api::NewFeedback, responses((status = 201, description = "Stored", body = registry_api::Feedback), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "No such server or tool", body = registry_api::ErrorBody), (status = 422, description = "Invalid input", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn post_feedback(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    body: Result<Json<NewFeedback>, JsonRejection>,
) -> Result<(StatusCode, Json<Feedback>), ApiError> {
    let Json(feedback) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    let stored = give_feedback(&state, &caller.0.user, feedback).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}
