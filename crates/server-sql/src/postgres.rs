//! PostgreSQL as a SQL engine (sqlx). Every statement runs in its own `READ ONLY` transaction
//! with a `statement_timeout` equal to the time limit, so the server itself refuses writes the
//! guard might have missed (`nextval`, a volatile function) and cancels a statement at the
//! deadline; the transaction carries the caller in `application_name` and, when configured,
//! takes the caller's role so PostgreSQL's own grants decide. Rows come back through
//! `row_to_json`, which keeps every PostgreSQL type readable as JSON.

use std::time::Duration;

use async_trait::async_trait;
use datafusion::sql::sqlparser::ast::Statement;
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::{
    AssertSqlSafe, Column as _, Executor, Row, SqlSafeStr, TypeInfo,
    postgres::{PgPool, PgPoolOptions},
};

use crate::{
    engine::{
        Collector, Column, Plan, Rows, Run, SqlEngine, SqlError, TableInfo, TableName, Written,
        column_list, table_infos,
    },
    guard::{self, Flavor, WriteChecked, WriteKind},
};

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user@host/database`.
    pub url: String,
    /// Run each statement as the caller's role (`SET LOCAL ROLE`); the pool's user must be a
    /// member of every caller's role.
    pub set_role: bool,
}

pub struct Postgres {
    pool: PgPool,
    database: String,
    set_role: bool,
}

impl Postgres {
    pub async fn connect(config: &PostgresConfig) -> anyhow::Result<Postgres> {
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&config.url)
            .await
            .map_err(|e| anyhow::anyhow!("connect to PostgreSQL: {e}"))?;
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&pool)
            .await?;
        Ok(Postgres {
            pool,
            database,
            set_role: config.set_role,
        })
    }

    /// Runs `work` in a read-only transaction as `run.user`, within the time limit.
    async fn read_only<T>(
        &self,
        run: &Run,
        work: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        self.transaction(run, false, work).await
    }

    /// Runs `work` in a transaction as `run.user`, within the time limit: read-only and rolled
    /// back, or (`commit`) read-write and committed when `work` succeeds.
    async fn transaction<T>(
        &self,
        run: &Run,
        commit: bool,
        work: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let timeout = run.limits.timeout;
        let attempt = async {
            let mut tx = self.pool.begin().await.map_err(unavailable)?;
            if !commit {
                tx.execute("SET TRANSACTION READ ONLY")
                    .await
                    .map_err(pg_error)?;
            }
            sqlx::query("SELECT set_config('statement_timeout', $1, true), set_config('application_name', $2, true)")
                .bind(format!("{}ms", timeout.as_millis().max(1)))
                .bind(format!("switchboard:{}", run.user.chars().take(40).collect::<String>()))
                .execute(&mut *tx)
                .await
                .map_err(pg_error)?;
            if self.set_role {
                tx.execute(AssertSqlSafe(format!(
                    "SET LOCAL ROLE {}",
                    identifier(&run.user)
                )))
                .await
                .map_err(pg_error)?;
            }
            let out = work(&mut *tx).await;
            if commit && out.is_ok() {
                tx.commit().await.map_err(pg_error)?;
            } else {
                // Nothing to keep: a read-only transaction ends the same either way.
                let _ = tx.rollback().await;
            }
            out
        };
        // The server cancels at its statement_timeout; the client gives it a moment more.
        match tokio::time::timeout(timeout + Duration::from_millis(500), attempt).await {
            Ok(Err(SqlError::Timeout(_))) | Err(_) => Err(SqlError::Timeout(timeout)),
            Ok(other) => other,
        }
    }

    async fn strings(
        &self,
        sql: &str,
        binds: &[&str],
        run: &Run,
    ) -> Result<Vec<Vec<String>>, SqlError> {
        let sql = sql.to_owned();
        let binds: Vec<String> = binds.iter().map(|b| (*b).to_owned()).collect();
        self.read_only(run, async move |conn| {
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for b in binds {
                query = query.bind(b);
            }
            let rows = query.fetch_all(conn).await.map_err(pg_error)?;
            Ok(rows
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| row.try_get::<String, _>(i).unwrap_or_default())
                        .collect()
                })
                .collect())
        })
        .await
    }
}

fn identifier(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn unavailable(e: sqlx::Error) -> SqlError {
    SqlError::Unavailable(e.to_string())
}

/// PostgreSQL's errors: a cancelled statement is the time limit; the database's refusals are the
/// caller's; the rest is the engine's.
fn pg_error(e: sqlx::Error) -> SqlError {
    match &e {
        sqlx::Error::Database(db) => {
            if db.code().as_deref() == Some("57014") {
                SqlError::Timeout(Duration::ZERO)
            } else {
                SqlError::Query(db.message().to_owned())
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => unavailable(e),
        _ => SqlError::Internal(e.to_string()),
    }
}

#[async_trait]
impl SqlEngine for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn flavor(&self) -> Flavor {
        Flavor::Postgres
    }

    fn default_catalog(&self) -> &str {
        &self.database
    }

    async fn query(&self, sql: &str, run: &Run) -> Result<Rows, SqlError> {
        let statement =
            guard::parse_one(sql, Flavor::Postgres).map_err(|e| SqlError::Query(e.to_string()))?;
        let is_query = matches!(statement, Statement::Query(_));
        let sql = sql.to_owned();
        let limits = run.limits.clone();
        self.read_only(run, async move |conn| {
            let described = (&mut *conn)
                .describe(AssertSqlSafe(sql.clone()).into_sql_str())
                .await
                .map_err(pg_error)?;
            let columns: Vec<Column> = described
                .columns()
                .iter()
                .map(|c| Column {
                    name: c.name().to_owned(),
                    data_type: c.type_info().name().to_lowercase(),
                })
                .collect();
            let mut rows = Collector::new(&limits);
            if is_query {
                // Every type reads as JSON, in column order by name.
                let wrapped = format!("SELECT row_to_json(q) FROM ({sql}) AS q");
                let mut stream =
                    sqlx::query_scalar::<_, Value>(AssertSqlSafe(wrapped)).fetch(&mut *conn);
                while let Some(object) = stream.try_next().await.map_err(pg_error)? {
                    let row = columns
                        .iter()
                        .map(|c| object.get(&c.name).cloned().unwrap_or(Value::Null))
                        .collect();
                    if !rows.push(row) {
                        break;
                    }
                }
            } else {
                // EXPLAIN and SHOW answer in text.
                let mut stream = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *conn);
                while let Some(row) = stream.try_next().await.map_err(pg_error)? {
                    let values = (0..row.len())
                        .map(|i| {
                            row.try_get::<String, _>(i)
                                .map(Value::String)
                                .unwrap_or(Value::Null)
                        })
                        .collect();
                    if !rows.push(values) {
                        break;
                    }
                }
            }
            Ok(Rows {
                columns,
                rows: rows.rows,
                truncated: rows.truncated,
            })
        })
        .await
    }

    async fn explain(&self, sql: &str, run: &Run) -> Result<Plan, SqlError> {
        let explain = format!("EXPLAIN (FORMAT JSON) {sql}");
        let plan: Value = self
            .read_only(run, async move |conn| {
                sqlx::query_scalar::<_, Value>(AssertSqlSafe(explain))
                    .fetch_one(conn)
                    .await
                    .map_err(pg_error)
            })
            .await?;
        let top = plan.pointer("/0/Plan");
        let rows = top.and_then(|p| p.get("Plan Rows")).and_then(Value::as_f64);
        let width = top
            .and_then(|p| p.get("Plan Width"))
            .and_then(Value::as_f64);
        Ok(Plan {
            plan: serde_json::to_string_pretty(&plan).unwrap_or_default(),
            estimated_rows: rows.map(|r| r as u64),
            estimated_bytes: rows.zip(width).map(|(r, w)| (r * w) as u64),
        })
    }

    async fn catalogs(&self, _run: &Run) -> Result<Vec<String>, SqlError> {
        Ok(vec![self.database.clone()])
    }

    async fn schemas(&self, catalog: &str, run: &Run) -> Result<Vec<String>, SqlError> {
        self.same_database(catalog)?;
        Ok(self
            .strings(
                "SELECT schema_name::text FROM information_schema.schemata \
                 WHERE schema_name NOT IN ('pg_catalog', 'information_schema') AND schema_name NOT LIKE 'pg\\_%' \
                 ORDER BY 1",
                &[],
                run,
            )
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
        self.same_database(catalog)?;
        let rows = self
            .strings(
                "SELECT table_schema::text, table_name::text, table_type::text FROM information_schema.tables \
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND ($1 = '' OR table_schema = $1) \
                 ORDER BY 1, 2",
                &[schema.unwrap_or("")],
                run,
            )
            .await?;
        Ok(table_infos(&self.database, rows))
    }

    async fn columns(&self, table: &TableName, run: &Run) -> Result<Vec<Column>, SqlError> {
        self.same_database(&table.catalog)?;
        let rows = self
            .strings(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                &[&table.schema, &table.table],
                run,
            )
            .await?;
        column_list(table, rows)
    }

    async fn write(
        &self,
        write: &WriteChecked,
        target: &TableName,
        run: &Run,
    ) -> Result<Written, SqlError> {
        self.same_database(&target.catalog)?;
        // PostgreSQL has neither INSERT OVERWRITE nor CREATE OR REPLACE TABLE: both become a
        // delete (or drop) and an insert (or create) in one transaction, built from quoted names
        // and the guard's re-printed query.
        let name = format!(
            "{}.{}",
            identifier(&target.schema),
            identifier(&target.table)
        );
        let columns = if write.columns.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                write
                    .columns
                    .iter()
                    .map(|c| identifier(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let statements: Vec<String> = match write.kind {
            WriteKind::Create | WriteKind::Append => vec![write.sql.clone()],
            WriteKind::Overwrite => vec![
                format!("DELETE FROM {name}"),
                format!("INSERT INTO {name}{columns} {}", write.source),
            ],
            WriteKind::Replace => vec![
                format!("DROP TABLE IF EXISTS {name}"),
                format!("CREATE TABLE {name} AS {}", write.source),
            ],
        };
        let rows = self
            .transaction(run, true, async move |conn| {
                let mut rows = 0;
                for statement in statements {
                    rows = sqlx::query(AssertSqlSafe(statement))
                        .execute(&mut *conn)
                        .await
                        .map_err(pg_error)?
                        .rows_affected();
                }
                Ok(rows)
            })
            .await?;
        tracing::info!(table = %target, user = %run.user, rows, "wrote a table");
        Ok(Written { rows: Some(rows) })
    }
}

impl Postgres {
    fn same_database(&self, catalog: &str) -> Result<(), SqlError> {
        if catalog == self.database {
            Ok(())
        } else {
            Err(SqlError::Query(format!(
                "no catalog named {catalog}: this PostgreSQL database is {}",
                self.database
            )))
        }
    }
}
