//! `/v1/audit`: the gateway appends the records of a batch of calls in one request (stored in one
//! transaction); auditors search them and export them as JSON lines or CSV. Everyone may read
//! their own records.

use std::sync::Arc;

use axum::{
    Json,
    body::Body,
    extract::{Query, State, rejection::JsonRejection, rejection::QueryRejection},
    http::{StatusCode, header},
    response::Response,
};
use registry_api::{AuditPage, AuditRecord, Outcome};
use registry_store::AuditFilter;
use serde::Deserialize;

use crate::{
    RegistryState,
    http::{auth::Caller, error::ApiError},
};

/// Records one append takes at most.
const MAX_BATCH: usize = 1000;
/// Records read from the store per page of an export.
const EXPORT_PAGE: u32 = 1000;

#[utoipa::path(post, operation_id = "appendAudit", path = "/v1/audit", tag = "audit", description = "Append audit records (the gateway), at most 1000 at once, stored in one transaction; a record id already stored is skipped.", request_body = Vec<registry_api::AuditRecord>, responses((status = 204, description = "Stored"), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn append(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    body: Result<Json<Vec<AuditRecord>>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    caller.require_any(&state.writer_groups, "write audit records")?;
    let Json(records) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    if records.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "at most {MAX_BATCH} audit records per request, got {}",
            records.len()
        )));
    }
    state.store.append_audit(&records).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What to search for. Times are milliseconds since the epoch.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    server: Option<String>,
    user: Option<String>,
    tool: Option<String>,
    /// `ok`, `tool_error`, `denied`, `error`, `input_required` or `pending_approval`.
    outcome: Option<String>,
    /// Records at or after this time.
    from: Option<i64>,
    /// Records before this time.
    to: Option<i64>,
    /// Text that must appear (any case) in the user, tool, detail or arguments.
    q: Option<String>,
    /// At most this many, newest first (default 100, at most 10000).
    limit: Option<u32>,
}

impl AuditQuery {
    fn filter(self, limit: u32) -> Result<AuditFilter, ApiError> {
        let outcome = self
            .outcome
            .filter(|o| !o.is_empty())
            .map(|o| {
                Outcome::parse(&o).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "outcome is ok, tool_error, denied, error, input_required or pending_approval, not {o:?}"
                    ))
                })
            })
            .transpose()?;
        let blank = |v: Option<String>| v.filter(|v| !v.is_empty());
        Ok(AuditFilter {
            server: blank(self.server),
            user: blank(self.user),
            tool: blank(self.tool),
            outcome,
            from_ms: self.from,
            to_ms: self.to,
            text: blank(self.q),
            after: None,
            limit,
        })
    }
}

/// Everyone may read their own records; auditors may read everyone's.
fn may_read(state: &RegistryState, caller: &Caller, user: Option<&str>) -> Result<(), ApiError> {
    if user == Some(caller.0.user.as_str()) {
        return Ok(());
    }
    caller.require_any(&state.auditor_groups, "read other callers' audit records")
}

#[utoipa::path(get, operation_id = "listAudit", path = "/v1/audit", tag = "audit", description = "Audit records, newest first, searched by server, user, tool, outcome, time and text: the caller's own, or anyone's for auditors.", params(AuditQuery), responses((status = 200, description = "OK", body = registry_api::AuditPage), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 422, description = "Invalid input", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    may_read(&state, &caller, q.user.as_deref())?;
    let limit = q.limit.unwrap_or(100);
    let filter = q.filter(limit)?;
    Ok(Json(AuditPage {
        records: state.store.list_audit(&filter).await?,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// `jsonl` (default) or `csv`.
    format: Option<String>,
    server: Option<String>,
    user: Option<String>,
    tool: Option<String>,
    outcome: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    q: Option<String>,
}

/// The CSV columns of an export, in order.
pub(crate) const CSV_COLUMNS: [&str; 19] = [
    "id",
    "time_ms",
    "user",
    "groups",
    "surface",
    "server",
    "team",
    "method",
    "tool",
    "outcome",
    "is_error",
    "latency_ms",
    "minutes_saved",
    "proposal",
    "detail",
    "argument_digest",
    "arguments",
    "trace_id",
    "time",
];

/// One record as a CSV row (RFC 4180 quoting).
pub(crate) fn csv_row(r: &AuditRecord) -> Vec<u8> {
    let time = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(r.time_ms)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    let fields = [
        r.id.clone(),
        r.time_ms.to_string(),
        r.user.clone(),
        r.groups.join(","),
        r.surface.clone().unwrap_or_default(),
        r.server.clone(),
        r.team.clone().unwrap_or_default(),
        r.method.clone(),
        r.tool.clone().unwrap_or_default(),
        r.outcome.as_str().to_owned(),
        r.is_error.to_string(),
        r.latency_ms.to_string(),
        r.minutes_saved.map(|m| m.to_string()).unwrap_or_default(),
        r.proposal.clone().unwrap_or_default(),
        r.detail.clone().unwrap_or_default(),
        r.argument_digest.clone().unwrap_or_default(),
        r.arguments
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        r.trace_id.clone().unwrap_or_default(),
        time,
    ];
    let mut writer = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = writer.write_record(fields);
    writer.into_inner().unwrap_or_default()
}

#[utoipa::path(get, operation_id = "exportAudit", path = "/v1/audit/export", tag = "audit", description = "Every matching audit record, oldest first, streamed as JSON lines (`format=jsonl`) or CSV with a header row (`format=csv`). Auditors only.", params(ExportQuery), responses((status = 200, description = "The records", content_type = "application/x-ndjson"), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 422, description = "Invalid input", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn export(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    caller.require_any(&state.auditor_groups, "export audit records")?;
    let csv = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => false,
        "csv" => true,
        other => {
            return Err(ApiError::invalid(format!(
                "format is jsonl or csv, not {other:?}"
            )));
        }
    };
    let filter = AuditQuery {
        server: q.server,
        user: q.user,
        tool: q.tool,
        outcome: q.outcome,
        from: q.from,
        to: q.to,
        q: q.q,
        limit: None,
    }
    .filter(EXPORT_PAGE)?;
    Ok(export_response(&state, filter, csv))
}

/// The streamed export of every record `filter` matches, oldest first (its `limit` ignored).
pub(crate) fn export_response(
    state: &RegistryState,
    mut filter: AuditFilter,
    csv: bool,
) -> Response {
    filter.limit = EXPORT_PAGE;
    let store = state.store.clone();
    let header_row = csv.then(|| {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let _ = writer.write_record(CSV_COLUMNS);
        writer.into_inner().unwrap_or_default()
    });
    // Pages by (time, id) so that records appended meanwhile neither repeat nor shift pages.
    let pages = futures::stream::unfold(
        (Some((i64::MIN, String::new())), header_row),
        move |(after, header)| {
            let store = store.clone();
            let mut filter = filter.clone();
            async move {
                if let Some(header) = header {
                    return Some((Ok::<_, std::io::Error>(header), (after, None)));
                }
                filter.after = Some(after?);
                match store.list_audit(&filter).await {
                    Ok(records) if records.is_empty() => None,
                    Ok(records) => {
                        let next = records.last().map(|r| (r.time_ms, r.id.clone()));
                        let mut chunk = Vec::new();
                        for r in &records {
                            if csv {
                                chunk.extend(csv_row(r));
                            } else {
                                chunk.extend(serde_json::to_vec(r).unwrap_or_default());
                                chunk.push(b'\n');
                            }
                        }
                        Some((Ok(chunk), (next, None)))
                    }
                    Err(e) => Some((Err(std::io::Error::other(e.to_string())), (None, None))),
                }
            }
        },
    );
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    let mut response = Response::new(Body::from_stream(pages));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
