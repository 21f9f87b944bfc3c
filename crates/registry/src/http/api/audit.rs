//! `/v1/audit`: the gateway appends one record per call; auditors read them back.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Query, State, rejection::JsonRejection},
    http::StatusCode,
};
use registry_api::{AuditPage, AuditRecord};
use registry_store::AuditFilter;
use serde::Deserialize;

use crate::{
    RegistryState,
    http::{auth::Caller, error::ApiError},
};

#[utoipa::path(post, operation_id = "appendAudit", path = "/v1/audit", tag = "audit", description = "Append audit records (the gateway); a record id already stored is skipped.", request_body = Vec<registry_api::AuditRecord>, responses((status = 204, description = "Stored"), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn append(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    body: Result<Json<Vec<AuditRecord>>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    caller.require_any(&state.writer_groups, "write audit records")?;
    let Json(records) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    for record in &records {
        state.store.append_audit(record).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    server: Option<String>,
    user: Option<String>,
    limit: Option<u32>,
}

#[utoipa::path(get, operation_id = "listAudit", path = "/v1/audit", tag = "audit", description = "Audit records, newest first: the caller's own, or anyone's for auditors.", params(AuditQuery), responses((status = 200, description = "OK", body = registry_api::AuditPage), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    // Everyone may read their own records; auditors may read everyone's.
    let own = q.user.as_deref() == Some(caller.0.user.as_str());
    if !own {
        caller.require_any(&state.auditor_groups, "read other callers' audit records")?;
    }
    let filter = AuditFilter {
        server: q.server,
        user: q.user,
        limit: q.limit.unwrap_or(100),
    };
    Ok(Json(AuditPage {
        records: state.store.list_audit(&filter).await?,
    }))
}
