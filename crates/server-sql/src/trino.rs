//! Trino and Presto over their client REST protocol: `POST /v1/statement` with the SQL, then
//! `GET nextUri` page by page until there is none. The statement runs as the verified caller
//! (`X-Trino-User` / `X-Presto-User`), so the warehouse's own access control sees the real user;
//! time limits go both to the engine (session properties) and to a client deadline, and a
//! statement that passes its limits (time or rows) is cancelled with `DELETE nextUri`. No
//! spooling header is sent, so results come inline on every Trino and Presto version.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    engine::{
        Collector, Column, Plan, Rows, Run, SqlEngine, SqlError, TableInfo, TableName, Written,
        column_list, table_infos,
    },
    guard::{Flavor, WriteChecked, WriteKind},
};

/// Which product's header names to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Trino,
    Presto,
}

/// How to reach a coordinator.
#[derive(Debug, Clone)]
pub struct TrinoConfig {
    /// The coordinator's base URL (`http://trino:8080`).
    pub url: String,
    pub dialect: Dialect,
    /// The catalog `schema.table` names mean, sent as `X-Trino-Catalog`.
    pub catalog: String,
    /// An `Authorization` header value for the coordinator (`Basic …`, `Bearer …`), if it needs one.
    pub authorization: Option<String>,
}

/// A Trino or Presto coordinator.
pub struct Trino {
    config: TrinoConfig,
    http: reqwest::Client,
}

/// A statement still running on the coordinator: dropped before it finished (the client cancelled
/// the call, the caller went away), it cancels the statement there.
struct Running {
    http: reqwest::Client,
    next_uri: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(next) = self.next_uri.take() else {
            return;
        };
        let http = self.http.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                match http.delete(&next).send().await {
                    Ok(_) => tracing::info!("cancelled an abandoned statement on the coordinator"),
                    Err(e) => tracing::warn!(error = %e, "could not cancel an abandoned statement"),
                }
            });
        }
    }
}

/// Retries of a page the coordinator is too busy to serve (HTTP 502/503/504).
const BUSY_RETRIES: u32 = 20;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryResults {
    #[serde(default)]
    next_uri: Option<String>,
    #[serde(default)]
    columns: Option<Vec<TrinoColumn>>,
    #[serde(default)]
    data: Option<Vec<Vec<Value>>>,
    #[serde(default)]
    error: Option<QueryError>,
}

#[derive(Debug, Deserialize)]
struct TrinoColumn {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    error_name: Option<String>,
    #[serde(default)]
    error_type: Option<String>,
}

impl Trino {
    pub fn new(config: TrinoConfig) -> anyhow::Result<Trino> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Trino {
            config: TrinoConfig {
                url: config.url.trim_end_matches('/').to_owned(),
                ..config
            },
            http,
        })
    }

    fn header(&self, name: &str) -> String {
        match self.config.dialect {
            Dialect::Trino => format!("X-Trino-{name}"),
            Dialect::Presto => format!("X-Presto-{name}"),
        }
    }

    /// Runs `sql` to the end or to the limits, cancelling it on the coordinator when it stops
    /// short.
    async fn execute(&self, sql: &str, run: &Run) -> Result<Rows, SqlError> {
        let limits = &run.limits;
        let deadline = Instant::now() + limits.timeout;
        // The engine enforces the limit too; the client deadline cancels whatever is left.
        let seconds = limits.timeout.as_secs().max(1);
        let session = format!("query_max_execution_time={seconds}s,query_max_run_time={seconds}s");
        let mut request = self
            .http
            .post(format!("{}/v1/statement", self.config.url))
            .header(self.header("User"), &run.user)
            .header(self.header("Source"), "switchboard")
            .header(self.header("Catalog"), &self.config.catalog)
            .header(self.header("Session"), session)
            .header("content-type", "text/plain; charset=utf-8")
            .body(sql.to_owned());
        if let Some(auth) = &self.config.authorization {
            request = request.header("authorization", auth);
        }
        let mut page = self.page(request, deadline, limits.timeout).await?;
        let mut running = Running {
            http: self.http.clone(),
            next_uri: None,
        };
        let mut columns: Option<Vec<Column>> = None;
        let mut rows = Collector::new(limits);
        loop {
            if let Some(error) = page.error {
                return Err(query_error(error));
            }
            if columns.is_none()
                && let Some(found) = page.columns.take()
            {
                columns = Some(
                    found
                        .into_iter()
                        .map(|c| Column {
                            name: c.name,
                            data_type: c.data_type,
                        })
                        .collect(),
                );
            }
            let mut full = false;
            for row in page.data.take().unwrap_or_default() {
                if !rows.push(row) {
                    full = true;
                    break;
                }
            }
            let Some(next) = page.next_uri.take() else {
                break;
            };
            // From here until the next page arrives, dropping this future cancels the statement.
            running.next_uri = Some(next.clone());
            if full {
                running.next_uri = None;
                self.cancel(&next).await;
                break;
            }
            if Instant::now() >= deadline {
                running.next_uri = None;
                self.cancel(&next).await;
                return Err(SqlError::Timeout(limits.timeout));
            }
            let request = self.http.get(&next);
            page = match self.page(request, deadline, limits.timeout).await {
                Ok(page) => page,
                Err(e) => {
                    running.next_uri = None;
                    self.cancel(&next).await;
                    return Err(e);
                }
            };
            running.next_uri = None;
        }
        Ok(Rows {
            columns: columns.unwrap_or_default(),
            rows: rows.rows,
            truncated: rows.truncated,
        })
    }

    /// One page, retried while the coordinator is busy, within the deadline.
    async fn page(
        &self,
        request: reqwest::RequestBuilder,
        deadline: Instant,
        limit: Duration,
    ) -> Result<QueryResults, SqlError> {
        for _ in 0..=BUSY_RETRIES {
            let attempt = request
                .try_clone()
                .ok_or_else(|| SqlError::Internal("the request cannot be retried".into()))?;
            let left = deadline.saturating_duration_since(Instant::now());
            let response = match tokio::time::timeout(left, attempt.send()).await {
                Err(_) => return Err(SqlError::Timeout(limit)),
                Ok(Err(e)) => {
                    return Err(SqlError::Unavailable(format!("{}: {e}", self.config.url)));
                }
                Ok(Ok(r)) => r,
            };
            let status = response.status();
            if matches!(status.as_u16(), 502..=504) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                let body: String = body.chars().take(500).collect();
                return Err(if status.as_u16() == 401 || status.as_u16() == 403 {
                    SqlError::Query(format!(
                        "the coordinator refused the caller: HTTP {status} {body}"
                    ))
                } else {
                    SqlError::Unavailable(format!("HTTP {status} from the coordinator: {body}"))
                });
            }
            return response
                .json::<QueryResults>()
                .await
                .map_err(|e| SqlError::Internal(format!("read the coordinator's answer: {e}")));
        }
        Err(SqlError::Unavailable(
            "the coordinator stayed busy (HTTP 502-504)".into(),
        ))
    }

    /// Cancels a running statement (best effort: the coordinator also ends abandoned queries).
    async fn cancel(&self, next_uri: &str) {
        match self.http.delete(next_uri).send().await {
            Ok(r) if r.status().is_success() || r.status().as_u16() == 204 => {
                tracing::info!("cancelled a statement on the coordinator");
            }
            Ok(r) => {
                tracing::warn!(status = %r.status(), "the coordinator did not cancel a statement")
            }
            Err(e) => tracing::warn!(error = %e, "could not cancel a statement on the coordinator"),
        }
    }

    /// A metadata query's rows as strings.
    async fn strings(&self, sql: &str, run: &Run) -> Result<Vec<Vec<String>>, SqlError> {
        let mut run = run.clone();
        run.limits.max_rows = 100_000;
        run.limits.max_bytes = 64 * 1024 * 1024;
        let rows = self.execute(sql, &run).await?;
        Ok(rows
            .rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect())
    }
}

fn query_error(error: QueryError) -> SqlError {
    let name = error.error_name.unwrap_or_default();
    let message = if name.is_empty() {
        error.message
    } else {
        format!("{name}: {}", error.message)
    };
    match (name.as_str(), error.error_type.as_deref()) {
        ("EXCEEDED_TIME_LIMIT", _) => SqlError::Query(message),
        (_, Some("INTERNAL_ERROR")) => SqlError::Internal(message),
        _ => SqlError::Query(message),
    }
}

/// `text` as a SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` as a quoted SQL identifier.
fn identifier(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[async_trait]
impl SqlEngine for Trino {
    fn name(&self) -> &'static str {
        match self.config.dialect {
            Dialect::Trino => "trino",
            Dialect::Presto => "presto",
        }
    }

    fn flavor(&self) -> Flavor {
        Flavor::Generic
    }

    fn default_catalog(&self) -> &str {
        &self.config.catalog
    }

    async fn query(&self, sql: &str, run: &Run) -> Result<Rows, SqlError> {
        self.execute(sql, run).await
    }

    async fn explain(&self, sql: &str, run: &Run) -> Result<Plan, SqlError> {
        let rows = self.strings(&format!("EXPLAIN {sql}"), run).await?;
        let plan = rows.into_iter().flatten().collect::<Vec<_>>().join("\n");
        Ok(Plan {
            estimated_rows: estimate(&plan, "rows"),
            estimated_bytes: None,
            plan,
        })
    }

    async fn catalogs(&self, run: &Run) -> Result<Vec<String>, SqlError> {
        Ok(self
            .strings("SHOW CATALOGS", run)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect())
    }

    async fn schemas(&self, catalog: &str, run: &Run) -> Result<Vec<String>, SqlError> {
        Ok(self
            .strings(&format!("SHOW SCHEMAS FROM {}", identifier(catalog)), run)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next())
            .collect())
    }

    async fn tables(
        &self,
        catalog: &str,
        schema: Option<&str>,
        run: &Run,
    ) -> Result<Vec<TableInfo>, SqlError> {
        let mut sql = format!(
            "SELECT table_schema, table_name, table_type FROM {}.information_schema.tables \
             WHERE table_schema <> 'information_schema'",
            identifier(catalog)
        );
        if let Some(schema) = schema {
            sql.push_str(&format!(" AND table_schema = {}", literal(schema)));
        }
        sql.push_str(" ORDER BY table_schema, table_name");
        Ok(table_infos(catalog, self.strings(&sql, run).await?))
    }

    async fn columns(&self, table: &TableName, run: &Run) -> Result<Vec<Column>, SqlError> {
        let sql = format!(
            "SELECT column_name, data_type FROM {}.information_schema.columns \
             WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
            identifier(&table.catalog),
            literal(&table.schema),
            literal(&table.table)
        );
        column_list(table, self.strings(&sql, run).await?)
    }

    async fn write(
        &self,
        write: &WriteChecked,
        target: &TableName,
        run: &Run,
    ) -> Result<Written, SqlError> {
        if write.kind == WriteKind::Overwrite {
            return Err(SqlError::Query(format!(
                "{} has no INSERT OVERWRITE: use CREATE OR REPLACE TABLE {} AS SELECT ...",
                self.name(),
                target
            )));
        }
        // Trino answers a write with one row: the number of rows written.
        let result = self.execute(&write.sql, run).await?;
        let rows = result
            .rows
            .first()
            .and_then(|row| row.first())
            .and_then(Value::as_u64);
        tracing::info!(table = %target, user = %run.user, rows, "wrote a table");
        Ok(Written { rows })
    }
}

/// The first `<what>: <number>` of a plan's `Estimates: {rows: 1200 (…), …}` lines.
fn estimate(plan: &str, what: &str) -> Option<u64> {
    let line = plan.lines().find(|l| l.contains("Estimates:"))?;
    let after = line.split(&format!("{what}: ")).nth(1)?;
    let digits: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_read_from_the_plan() {
        let plan = "Fragment 0 [SINGLE]\n    Output[columnNames = [n]]\n    │   Estimates: {rows: 1,200 (10.55kB), cpu: 0, memory: 0B, network: 0B}";
        assert_eq!(estimate(plan, "rows"), Some(1200));
        assert_eq!(estimate("no estimates here", "rows"), None);
    }

    #[test]
    fn names_and_values_are_quoted() {
        assert_eq!(literal("o'brien"), "'o''brien'");
        assert_eq!(identifier("odd\"name"), "\"odd\"\"name\"");
    }
}
