//! A Trino-protocol front for any [`SqlEngine`]: `POST /v1/statement`, `nextUri` paging through
//! QUEUED, RUNNING and FINISHED pages, Trino's column type signatures and error objects, and
//! cancellation with `DELETE nextUri`. It serves the embedded engine to Trino clients (the official
//! `trino` Python client, BI tools) and lets the Trino client be tested end to end over HTTP with
//! no coordinator. Every statement passes the same read-only guard as the MCP tools, and runs as
//! the `X-Trino-User` it names.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, post},
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::{
    engine::{Column, Limits, Rows, Run, SqlEngine, SqlError, TableName},
    guard::{self, Refused},
};

/// How long a statement's results wait for its client.
const ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// The front's settings.
#[derive(Debug, Clone)]
pub struct FrontConfig {
    /// The URL clients reach the front at (`nextUri`s are built on it).
    pub public_url: String,
    /// Rows per result page.
    pub page_rows: usize,
    /// Limits of every statement.
    pub limits: Limits,
    /// Whether `CREATE TABLE ... AS SELECT` and `INSERT ... SELECT` run (on the engine's `write`);
    /// otherwise only statements that read do.
    pub allow_writes: bool,
}

/// What the front has seen, for tests and operators.
#[derive(Debug, Default)]
pub struct FrontStats {
    /// Statements cancelled by a client's `DELETE`.
    pub cancelled: AtomicU64,
}

struct Query {
    user: String,
    started: Instant,
    task: Option<JoinHandle<()>>,
    outcome: Option<Result<Rows, SqlError>>,
    /// Rows already sent.
    sent: usize,
    /// The token the next page must carry.
    token: u64,
}

struct Front {
    engine: Arc<dyn SqlEngine>,
    config: FrontConfig,
    queries: Mutex<HashMap<String, Query>>,
    stats: Arc<FrontStats>,
}

/// The front's router, and its statistics.
pub fn router(engine: Arc<dyn SqlEngine>, config: FrontConfig) -> (Router, Arc<FrontStats>) {
    let stats = Arc::new(FrontStats::default());
    let front = Arc::new(Front {
        engine,
        config: FrontConfig {
            public_url: config.public_url.trim_end_matches('/').to_owned(),
            page_rows: config.page_rows.max(1),
            ..config
        },
        queries: Mutex::new(HashMap::new()),
        stats: stats.clone(),
    });
    let router = Router::new()
        .route("/v1/statement", post(submit))
        .route("/v1/statement/{*rest}", any(follow))
        .with_state(front);
    (router, stats)
}

impl Front {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Query>> {
        self.queries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_uri(&self, id: &str, state: &str, token: u64) -> String {
        format!(
            "{}/v1/statement/{state}/{id}/y{token}/{token}",
            self.config.public_url
        )
    }
}

fn stats(state: &str, elapsed_ms: u128, rows: usize) -> Value {
    json!({
        "state": state, "queued": state == "QUEUED", "scheduled": state != "QUEUED",
        "nodes": 1, "totalSplits": 1, "queuedSplits": 0, "runningSplits": 0,
        "completedSplits": if state == "FINISHED" { 1 } else { 0 },
        "cpuTimeMillis": elapsed_ms, "wallTimeMillis": elapsed_ms, "queuedTimeMillis": 0,
        "elapsedTimeMillis": elapsed_ms, "processedRows": rows, "processedBytes": 0,
        "physicalInputBytes": 0, "peakMemoryBytes": 0, "spilledBytes": 0,
    })
}

/// Trino's error object for a failure.
fn error_object(name: &str, kind: &str, message: &str) -> Value {
    let code = match name {
        "SYNTAX_ERROR" => 1,
        "NOT_SUPPORTED" => 13,
        "PERMISSION_DENIED" => 4,
        "EXCEEDED_TIME_LIMIT" => 131_079,
        "USER_CANCELED" => 3,
        _ => 65_536,
    };
    json!({
        "message": message, "errorCode": code, "errorName": name, "errorType": kind,
        "failureInfo": {"type": "io.trino.spi.TrinoException", "message": message, "suppressed": [], "stack": []},
    })
}

fn failed(id: &str, name: &str, kind: &str, message: &str) -> Value {
    json!({
        "id": id, "infoUri": format!("about:query/{id}"),
        "stats": stats("FAILED", 0, 0),
        "error": error_object(name, kind, message), "warnings": [],
    })
}

async fn submit(State(front): State<Arc<Front>>, headers: HeaderMap, body: Bytes) -> Response {
    let user = headers
        .get("x-trino-user")
        .or_else(|| headers.get("x-presto-user"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return (
            StatusCode::UNAUTHORIZED,
            "X-Trino-User must name the user the statement runs as",
        )
            .into_response();
    };
    let id = format!(
        "{}_{}",
        chrono_like_now(),
        uuid::Uuid::new_v4().simple().to_string()[..5].to_owned()
    );
    let sql = String::from_utf8_lossy(&body).trim().to_owned();
    // Trino's own metadata statements, answered from the engine's catalog.
    let run = Run {
        user: user.clone(),
        limits: front.config.limits.clone(),
    };
    let engine = front.engine.clone();
    let statement = match metadata_statement(&sql) {
        Some(meta) => Ok(meta),
        None => match guard::check_read_only(&sql, engine.flavor()) {
            Ok(checked) => Ok(Statement::Sql(checked.sql)),
            Err(refused @ Refused::Writes(_)) if front.config.allow_writes => {
                match guard::check_write(&sql, engine.flavor()) {
                    Ok(write) => Ok(Statement::Write(Box::new(write))),
                    Err(_) => Err(refused),
                }
            }
            Err(refused) => Err(refused),
        },
    };
    let statement = match statement {
        Ok(statement) => statement,
        Err(refused) => {
            let name = match refused {
                Refused::Unparsed(_) | Refused::Empty | Refused::Several(_) => "SYNTAX_ERROR",
                _ => "PERMISSION_DENIED",
            };
            return Json(failed(&id, name, "USER_ERROR", &refused.to_string())).into_response();
        }
    };
    let task_front = front.clone();
    let task_id = id.clone();
    let task = tokio::spawn(async move {
        let outcome = match statement {
            Statement::Sql(sql) => engine.query(&sql, &run).await,
            Statement::Write(write) => {
                match TableName::resolve(&write.target, engine.default_catalog(), None) {
                    Ok(target) => engine
                        .write(&write, &target, &run)
                        .await
                        .map(|written| Rows {
                            columns: vec![Column {
                                name: "rows".into(),
                                data_type: "Int64".into(),
                            }],
                            rows: vec![vec![json!(written.rows.unwrap_or(0))]],
                            truncated: None,
                        }),
                    Err(message) => Err(SqlError::Query(message)),
                }
            }
            Statement::Catalogs => engine
                .catalogs(&run)
                .await
                .map(|names| list("Catalog", names)),
            Statement::Schemas(catalog) => {
                let catalog = catalog.unwrap_or_else(|| engine.default_catalog().to_owned());
                engine
                    .schemas(&catalog, &run)
                    .await
                    .map(|names| list("Schema", names))
            }
        };
        if let Some(query) = task_front.lock().get_mut(&task_id) {
            query.outcome = Some(outcome);
        }
    });
    let token = 1;
    let mut queries = front.lock();
    // Statements their clients abandoned are dropped (and stopped) after a while.
    queries.retain(|_, q| {
        let keep = q.started.elapsed() < ABANDONED_AFTER;
        if !keep && let Some(task) = q.task.take() {
            task.abort();
        }
        keep
    });
    queries.insert(
        id.clone(),
        Query {
            user,
            started: Instant::now(),
            task: Some(task),
            outcome: None,
            sent: 0,
            token,
        },
    );
    drop(queries);
    Json(json!({
        "id": id, "infoUri": format!("about:query/{id}"),
        "nextUri": front.next_uri(&id, "queued", token),
        "stats": stats("QUEUED", 0, 0), "warnings": [],
    }))
    .into_response()
}

enum Statement {
    Sql(String),
    Write(Box<guard::WriteChecked>),
    Catalogs,
    Schemas(Option<String>),
}

/// `SHOW CATALOGS` and `SHOW SCHEMAS [FROM|IN catalog]`, which only Trino speaks.
fn metadata_statement(sql: &str) -> Option<Statement> {
    let words: Vec<String> = sql
        .trim_end_matches(';')
        .split_whitespace()
        .map(|w| w.to_owned())
        .collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    match upper
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["SHOW", "CATALOGS"] => Some(Statement::Catalogs),
        ["SHOW", "SCHEMAS"] => Some(Statement::Schemas(None)),
        ["SHOW", "SCHEMAS", "FROM" | "IN", _] => Some(Statement::Schemas(Some(
            words[3].trim_matches('"').replace("\"\"", "\""),
        ))),
        _ => None,
    }
}

fn list(column: &str, names: Vec<String>) -> Rows {
    Rows {
        columns: vec![crate::engine::Column {
            name: column.to_owned(),
            data_type: "Utf8".into(),
        }],
        rows: names.into_iter().map(|n| vec![Value::String(n)]).collect(),
        truncated: None,
    }
}

/// A query id in Trino's shape (`20261122_183012_…`), from the clock.
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{}_{:05}", secs / 86_400, secs % 86_400)
}

async fn follow(
    State(front): State<Arc<Front>>,
    method: axum::http::Method,
    Path(rest): Path<String>,
) -> Response {
    // `<state>/<id>/<slug>/<token>`
    let parts: Vec<&str> = rest.split('/').collect();
    let (Some(id), Some(token)) = (
        parts.get(1),
        parts.get(3).and_then(|t| t.parse::<u64>().ok()),
    ) else {
        return (StatusCode::NOT_FOUND, "no such statement").into_response();
    };
    let id = (*id).to_owned();
    if method == axum::http::Method::DELETE {
        if let Some(mut query) = front.lock().remove(&id) {
            if let Some(task) = query.task.take() {
                task.abort();
            }
            front.stats.cancelled.fetch_add(1, Ordering::SeqCst);
            tracing::info!(query = %id, user = %query.user, "a client cancelled a statement");
        }
        return StatusCode::NO_CONTENT.into_response();
    }
    if method != axum::http::Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let page_rows = front.config.page_rows;
    let mut queries = front.lock();
    let Some(query) = queries.get_mut(&id) else {
        return (
            StatusCode::NOT_FOUND,
            "no such statement (finished, cancelled or expired)",
        )
            .into_response();
    };
    if token != query.token {
        return (StatusCode::GONE, "that page was already served").into_response();
    }
    let elapsed = query.started.elapsed().as_millis();
    let page = match &query.outcome {
        None => {
            query.token += 1;
            json!({
                "id": id, "infoUri": format!("about:query/{id}"),
                "nextUri": front.next_uri(&id, "executing", query.token),
                "stats": stats("RUNNING", elapsed, 0), "warnings": [],
            })
        }
        Some(Err(e)) => {
            let (name, kind) = match e {
                SqlError::Timeout(_) => ("EXCEEDED_TIME_LIMIT", "INSUFFICIENT_RESOURCES"),
                SqlError::Query(_) => ("SYNTAX_ERROR", "USER_ERROR"),
                _ => ("GENERIC_INTERNAL_ERROR", "INTERNAL_ERROR"),
            };
            let body = failed(&id, name, kind, &e.to_string());
            queries.remove(&id);
            return Json(body).into_response();
        }
        Some(Ok(rows)) => {
            let end = (query.sent + page_rows).min(rows.rows.len());
            let data = &rows.rows[query.sent..end];
            let columns: Vec<Value> = rows
                .columns
                .iter()
                .map(|c| column(&c.name, &c.data_type))
                .collect();
            let data: Vec<Vec<Value>> = data
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&rows.columns)
                        .map(|(v, c)| value(v, &c.data_type))
                        .collect()
                })
                .collect();
            query.sent = end;
            let more = end < rows.rows.len();
            let mut page = json!({
                "id": id, "infoUri": format!("about:query/{id}"),
                "columns": columns, "data": data,
                "stats": stats(if more { "RUNNING" } else { "FINISHED" }, elapsed, end),
                "warnings": [],
            });
            if more {
                query.token += 1;
                page["nextUri"] = json!(front.next_uri(&id, "executing", query.token));
            } else {
                queries.remove(&id);
            }
            page
        }
    };
    Json(page).into_response()
}

/// A column in Trino's shape, its type mapped from the engine's.
fn column(name: &str, engine_type: &str) -> Value {
    let (raw, arguments) = trino_type(engine_type);
    // Unbounded varchar is plain `varchar`, as Trino names it.
    let type_name = if arguments.is_empty() || (raw == "varchar" && arguments == [2_147_483_647]) {
        raw.to_owned()
    } else {
        format!(
            "{raw}({})",
            arguments
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    json!({
        "name": name, "type": type_name,
        "typeSignature": {
            "rawType": raw,
            "arguments": arguments.iter().map(|v| json!({"kind": "LONG", "value": v})).collect::<Vec<_>>(),
        },
    })
}

/// Trino's name for an engine type, and its type arguments.
fn trino_type(engine_type: &str) -> (&'static str, Vec<u64>) {
    let t = engine_type.to_ascii_lowercase();
    if t.starts_with("decimal") {
        let args: Vec<u64> = t
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(inside, _)| {
                inside
                    .split(',')
                    .filter_map(|a| a.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        return match args.as_slice() {
            [p, s] => ("decimal", vec![*p, *s]),
            _ => ("decimal", vec![38, 10]),
        };
    }
    match t.as_str() {
        "int8" | "int16" | "uint8" => ("smallint", vec![]),
        "int32" | "uint16" => ("integer", vec![]),
        "int64" | "uint32" | "uint64" => ("bigint", vec![]),
        "float16" | "float32" => ("real", vec![]),
        "float64" => ("double", vec![]),
        "boolean" => ("boolean", vec![]),
        "date32" | "date64" => ("date", vec![]),
        _ if t.starts_with("timestamp") => ("timestamp", vec![3]),
        _ => ("varchar", vec![2_147_483_647]),
    }
}

/// A value as Trino sends it for the column's type.
fn value(v: &Value, engine_type: &str) -> Value {
    match (trino_type(engine_type).0, v) {
        (_, Value::Null) => Value::Null,
        ("timestamp", Value::String(s)) => Value::String(s.replacen('T', " ", 1)),
        ("varchar", Value::String(s)) => Value::String(s.clone()),
        ("varchar", other) => Value::String(other.to_string()),
        ("decimal", other) => Value::String(match other {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }),
        (_, other) => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_types_map_to_trino_signatures() {
        assert_eq!(
            column("n", "Int64")["typeSignature"],
            json!({"rawType": "bigint", "arguments": []})
        );
        assert_eq!(
            column("s", "Utf8View")["typeSignature"]["arguments"][0],
            json!({"kind": "LONG", "value": 2_147_483_647u64})
        );
        assert_eq!(column("d", "Decimal128(10, 2)")["type"], "decimal(10,2)");
        assert_eq!(
            column("t", "Timestamp(Millisecond, None)")["type"],
            "timestamp(3)"
        );
        assert_eq!(
            value(
                &json!("2026-01-02T03:04:05"),
                "Timestamp(Millisecond, None)"
            ),
            json!("2026-01-02 03:04:05")
        );
        assert_eq!(value(&json!(1.5), "Decimal128(10, 2)"), json!("1.5"));
    }

    #[test]
    fn trino_metadata_statements_are_recognised() {
        assert!(matches!(
            metadata_statement("show catalogs"),
            Some(Statement::Catalogs)
        ));
        assert!(matches!(
            metadata_statement("SHOW SCHEMAS FROM \"warehouse\""),
            Some(Statement::Schemas(Some(c))) if c == "warehouse"
        ));
        assert!(metadata_statement("SELECT 1").is_none());
    }
}
