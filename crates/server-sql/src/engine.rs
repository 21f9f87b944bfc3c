//! One trait for every SQL engine the server can front (embedded DataFusion, Trino/Presto,
//! PostgreSQL), and the types its answers come in: columns, rows as JSON values within the
//! caller's limits, plans. Engines receive only statements the guard passed, and run them as the
//! verified caller where the engine has its own notion of users.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::guard::{Flavor, WriteChecked, WriteKind};

/// How much one statement may take.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Rows returned at most; the rest are not read.
    pub max_rows: usize,
    /// Bytes of row data (as JSON) returned at most.
    pub max_bytes: usize,
    /// Wall time after which the statement is cancelled on the engine.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_rows: 1000,
            max_bytes: 256 * 1024,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Who runs a statement, and within what limits.
#[derive(Debug, Clone)]
pub struct Run {
    /// The verified caller; engines with users of their own run the statement as them.
    pub user: String,
    pub limits: Limits,
}

/// A result column.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Column {
    pub name: String,
    /// The engine's name for the type (`BIGINT`, `varchar`, `Date32`).
    #[serde(rename = "type")]
    pub data_type: String,
}

/// Rows of a result, within the limits.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Rows {
    pub columns: Vec<Column>,
    /// Each row's values in column order.
    pub rows: Vec<Vec<Value>>,
    /// Why the result stops short, when it does (more rows or bytes than allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
}

/// What the engine says it would do.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Plan {
    /// The plan as the engine prints it.
    pub plan: String,
    /// Estimated rows of the result, where the engine estimates them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_rows: Option<u64>,
    /// Estimated bytes of the result, where the engine estimates them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_bytes: Option<u64>,
}

/// A table or view.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct TableInfo {
    pub catalog: String,
    pub schema: String,
    pub name: String,
    /// `table` or `view`.
    pub kind: String,
}

/// A fully qualified table name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub catalog: String,
    pub schema: String,
    pub table: String,
}

impl TableName {
    /// The full name that `parts` (`table`, `schema.table` or `catalog.schema.table`) mean on an
    /// engine whose defaults are `catalog` and, if it has a single one, `schema`.
    pub fn resolve(
        parts: &[String],
        catalog: &str,
        schema: Option<&str>,
    ) -> Result<TableName, String> {
        let (catalog, schema, table) = match parts {
            [table] => match schema {
                Some(schema) => (catalog, schema, table),
                None => return Err(format!("name the table {table} as schema.table")),
            },
            [schema, table] => (catalog, schema.as_str(), table),
            [catalog, schema, table] => (catalog.as_str(), schema.as_str(), table),
            _ => {
                return Err(format!(
                    "name the table as schema.table or catalog.schema.table, not {}",
                    parts.join(".")
                ));
            }
        };
        Ok(TableName {
            catalog: catalog.to_owned(),
            schema: schema.to_owned(),
            table: table.clone(),
        })
    }

    /// The name as `"catalog"."schema"."table"`, quoted for SQL.
    pub fn quoted(&self) -> String {
        [&self.catalog, &self.schema, &self.table]
            .iter()
            .map(|part| format!("\"{}\"", part.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.catalog, self.schema, self.table)
    }
}

/// Why an engine could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SqlError {
    /// The engine refused the statement (syntax, unknown table, type error): the caller's to fix.
    #[error("{0}")]
    Query(String),
    #[error("the query ran past its time limit of {} s and was cancelled", .0.as_secs_f64())]
    Timeout(Duration),
    #[error("the SQL engine is unavailable: {0}")]
    Unavailable(String),
    #[error("the SQL engine failed: {0}")]
    Internal(String),
}

/// A SQL engine behind the server's tools.
#[async_trait]
pub trait SqlEngine: Send + Sync + 'static {
    /// For messages: `datafusion`, `trino`, `presto`, `postgres`.
    fn name(&self) -> &'static str;
    /// Which SQL the guard parses for this engine.
    fn flavor(&self) -> Flavor;
    /// The catalog a `schema.table` name means.
    fn default_catalog(&self) -> &str;
    /// The schema an unqualified table name means, when the engine has exactly one (PostgreSQL's
    /// search path and Trino's session schema can name several, or none).
    fn default_schema(&self) -> Option<&str> {
        None
    }
    /// Runs one statement the guard passed, as `run.user`, within `run.limits`; a statement
    /// still running at the time limit is cancelled on the engine.
    async fn query(&self, sql: &str, run: &Run) -> Result<Rows, SqlError>;
    /// The plan of one query the guard passed, with the engine's estimates where it has them.
    async fn explain(&self, sql: &str, run: &Run) -> Result<Plan, SqlError>;
    async fn catalogs(&self, run: &Run) -> Result<Vec<String>, SqlError>;
    async fn schemas(&self, catalog: &str, run: &Run) -> Result<Vec<String>, SqlError>;
    async fn tables(
        &self,
        catalog: &str,
        schema: Option<&str>,
        run: &Run,
    ) -> Result<Vec<TableInfo>, SqlError>;
    async fn columns(&self, table: &TableName, run: &Run) -> Result<Vec<Column>, SqlError>;
    /// Runs one statement the write guard passed, whose target is `target`, as `run.user` within
    /// `run.limits.timeout`, and commits it; what it did to the target.
    async fn write(
        &self,
        write: &WriteChecked,
        target: &TableName,
        run: &Run,
    ) -> Result<Written, SqlError>;
}

/// Whether a write of `kind` can go to `target`, which `exists` or not: a new table must not
/// exist yet, and rows are added to or replace those of one that does.
pub fn check_target(kind: WriteKind, exists: bool, target: &TableName) -> Result<(), SqlError> {
    match (kind, exists) {
        (WriteKind::Create, true) => Err(SqlError::Query(format!(
            "{target} exists already: use CREATE OR REPLACE TABLE, INSERT INTO or INSERT OVERWRITE"
        ))),
        (WriteKind::Append | WriteKind::Overwrite, false) => Err(SqlError::Query(format!(
            "there is no table {target}: create it with CREATE TABLE ... AS SELECT"
        ))),
        _ => Ok(()),
    }
}

/// What a write did.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Written {
    /// Rows the statement wrote, where the engine says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// Metadata rows `[schema, name, table_type]`, as `information_schema.tables` gives them, as the
/// tables of `catalog`.
pub(crate) fn table_infos(catalog: &str, rows: Vec<Vec<String>>) -> Vec<TableInfo> {
    rows.into_iter()
        .filter_map(|r| match r.as_slice() {
            [schema, name, kind] => Some(TableInfo {
                catalog: catalog.to_owned(),
                schema: schema.clone(),
                name: name.clone(),
                kind: if kind.contains("VIEW") {
                    "view"
                } else {
                    "table"
                }
                .into(),
            }),
            _ => None,
        })
        .collect()
}

/// Metadata rows `[name, data_type]` as the columns of `table`; none means there is no such
/// table.
pub(crate) fn column_list(
    table: &TableName,
    rows: Vec<Vec<String>>,
) -> Result<Vec<Column>, SqlError> {
    let columns: Vec<Column> = rows
        .into_iter()
        .filter_map(|r| match r.as_slice() {
            [name, data_type] => Some(Column {
                name: name.clone(),
                data_type: data_type.clone(),
            }),
            _ => None,
        })
        .collect();
    if columns.is_empty() {
        return Err(SqlError::Query(format!("no table named {table}")));
    }
    Ok(columns)
}

/// Gathers rows within the limits: rows past `max_rows`, or past `max_bytes` of JSON, are
/// dropped and the reason recorded.
#[derive(Debug)]
pub(crate) struct Collector {
    limits: Limits,
    pub(crate) rows: Vec<Vec<Value>>,
    bytes: usize,
    pub(crate) truncated: Option<String>,
}

impl Collector {
    pub(crate) fn new(limits: &Limits) -> Collector {
        Collector {
            limits: limits.clone(),
            rows: Vec::new(),
            bytes: 0,
            truncated: None,
        }
    }

    /// Adds a row; `false` once the limits are reached (stop reading).
    pub(crate) fn push(&mut self, row: Vec<Value>) -> bool {
        if self.truncated.is_some() {
            return false;
        }
        if self.rows.len() >= self.limits.max_rows {
            self.truncated = Some(format!(
                "the result has more than {} rows; only the first {} are shown (add a LIMIT or aggregate)",
                self.limits.max_rows, self.limits.max_rows
            ));
            return false;
        }
        let size: usize = row.iter().map(|v| v.to_string().len() + 1).sum();
        if self.bytes + size > self.limits.max_bytes {
            self.truncated = Some(format!(
                "the result is larger than {} bytes; only the first {} rows are shown (select fewer columns or rows)",
                self.limits.max_bytes,
                self.rows.len()
            ));
            return false;
        }
        self.bytes += size;
        self.rows.push(row);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_collector_stops_at_the_first_limit_reached() {
        let limits = Limits {
            max_rows: 3,
            max_bytes: 1000,
            timeout: Duration::from_secs(1),
        };
        let mut rows = Collector::new(&limits);
        assert!(rows.push(vec![json!(1)]));
        assert!(rows.push(vec![json!(2)]));
        assert!(rows.push(vec![json!(3)]));
        assert!(!rows.push(vec![json!(4)]));
        assert_eq!(rows.rows.len(), 3);
        assert!(
            rows.truncated
                .as_ref()
                .unwrap()
                .contains("more than 3 rows")
        );

        let small = Limits {
            max_bytes: 10,
            ..limits
        };
        let mut rows = Collector::new(&small);
        assert!(rows.push(vec![json!("abcd")]));
        assert!(!rows.push(vec![json!("efgh")]));
        assert_eq!(rows.rows.len(), 1);
        assert!(
            rows.truncated
                .as_ref()
                .unwrap()
                .contains("larger than 10 bytes")
        );
    }

    #[test]
    fn table_names_are_quoted_for_sql() {
        let name = TableName {
            catalog: "warehouse".into(),
            schema: "ads".into(),
            table: "odd\"name".into(),
        };
        assert_eq!(name.quoted(), "\"warehouse\".\"ads\".\"odd\"\"name\"");
    }
}
