//! The SQL store: SQLite (one file in the data directory, WAL journal and `synchronous=FULL`, so
//! that an acknowledged audit record or registration survives a crash) or PostgreSQL, with the
//! same queries.

use std::path::Path;

use async_trait::async_trait;
use registry_api::{
    AuditRecord, Outcome, PolicyView, RegisterServer, ServerView, ToolDefinition, ToolView,
};
use sqlx::{
    AnyPool, Row,
    any::{AnyPoolOptions, AnyRow},
};

use crate::{AuditFilter, Store, StoreError};

/// The server columns, as a macro so queries built from it stay `&'static str`.
macro_rules! server_columns {
    () => {
        "SELECT name, title, description, owner_team, support_channel, version, endpoint,
         environment, allowed_groups, status, registered_at_ms, updated_at_ms, policies FROM servers"
    };
}

/// The registry store on SQLite (the embedded default) or PostgreSQL, through sqlx's `Any`
/// driver: one set of `$n` queries serves both, and each database has its own migrations.
pub struct SqlStore {
    pool: AnyPool,
}

/// SQLite pragmas for every connection: WAL journal, `synchronous=FULL` (an acknowledged write
/// survives a crash), foreign keys, and waiting on locks rather than failing.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
    PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;";

impl SqlStore {
    /// Opens (creating if needed) a SQLite database file and applies pending migrations.
    pub async fn sqlite(path: &Path) -> Result<SqlStore, StoreError> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display()), 4).await
    }

    /// A private in-memory SQLite database, for tests.
    pub async fn sqlite_in_memory() -> Result<SqlStore, StoreError> {
        // One connection: every in-memory connection would otherwise be its own database.
        Self::connect("sqlite::memory:", 1).await
    }

    /// Connects to PostgreSQL (`postgres://user@host:port/database`) and applies pending migrations.
    pub async fn postgres(url: &str) -> Result<SqlStore, StoreError> {
        Self::connect(url, 10).await
    }

    async fn connect(url: &str, max: u32) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if sqlite {
                        sqlx::raw_sql(SQLITE_PRAGMAS).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(unavailable)?;
        let migrator = if sqlite {
            sqlx::migrate!("./migrations/sqlite")
        } else {
            sqlx::migrate!("./migrations/postgres")
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("apply migrations: {e}")))?;
        Ok(SqlStore { pool })
    }

    async fn tools_of(&self, server: &str) -> Result<Vec<ToolView>, StoreError> {
        let rows = sqlx::query(
            "SELECT definition, minutes_saved, sensitivity, policy_name, policy_groups
             FROM tools WHERE server = $1 ORDER BY position",
        )
        .bind(server)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(tool_from_row).collect()
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn upsert_server(
        &self,
        reg: &RegisterServer,
        now_ms: i64,
    ) -> Result<ServerView, StoreError> {
        let m = &reg.manifest;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO servers (name, title, description, owner_team, support_channel, version, endpoint,
                                  environment, allowed_groups, manifest, status, registered_at_ms, updated_at_ms, policies)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $11, $12)
             ON CONFLICT (name) DO UPDATE SET
                title = excluded.title, description = excluded.description, owner_team = excluded.owner_team,
                support_channel = excluded.support_channel, version = excluded.version,
                endpoint = excluded.endpoint, environment = excluded.environment,
                allowed_groups = excluded.allowed_groups, manifest = excluded.manifest,
                status = excluded.status, updated_at_ms = excluded.updated_at_ms,
                policies = excluded.policies",
        )
        .bind(&m.server.name)
        .bind(&m.server.title)
        .bind(&m.server.description)
        .bind(&m.server.owner_team)
        .bind(&m.server.support_channel)
        .bind(&m.server.version)
        .bind(&reg.endpoint)
        .bind(&reg.environment)
        .bind(json(&m.access.allowed_groups))
        .bind(json(m))
        .bind(now_ms)
        .bind(&reg.policies)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query("DELETE FROM tools WHERE server = $1")
            .bind(&m.server.name)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for (position, tool) in reg.tool_views().iter().enumerate() {
            sqlx::query(
                "INSERT INTO tools (server, name, position, definition, minutes_saved, sensitivity, policy_name, policy_groups)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&m.server.name)
            .bind(&tool.definition.name)
            .bind(position as i64)
            .bind(json(&tool.definition))
            .bind(tool.minutes_saved)
            .bind(&tool.sensitivity)
            .bind(tool.policy.as_ref().map(|p| p.name.as_str()))
            .bind(tool.policy.as_ref().map(|p| json(&p.groups)))
            .execute(&mut *tx)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    StoreError::Conflict(format!("tool {} is listed twice", tool.definition.name))
                }
                e => unavailable(e),
            })?;
        }
        tx.commit().await.map_err(unavailable)?;
        self.get_server(&m.server.name).await
    }

    async fn list_servers(&self) -> Result<Vec<ServerView>, StoreError> {
        let rows = sqlx::query(concat!(server_columns!(), " ORDER BY name"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut servers = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut server = server_from_row(row)?;
            server.tools = self.tools_of(&server.name).await?;
            servers.push(server);
        }
        Ok(servers)
    }

    async fn get_server(&self, name: &str) -> Result<ServerView, StoreError> {
        let row = sqlx::query(concat!(server_columns!(), " WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("server {name}")))?;
        let mut server = server_from_row(&row)?;
        server.tools = self.tools_of(name).await?;
        Ok(server)
    }

    async fn append_audit(&self, r: &AuditRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit (id, time_ms, user_name, groups, surface, server, method, tool, argument_digest,
                                outcome, is_error, detail, latency_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&r.id)
        .bind(r.time_ms)
        .bind(&r.user)
        .bind(json(&r.groups))
        .bind(&r.surface)
        .bind(&r.server)
        .bind(&r.method)
        .bind(&r.tool)
        .bind(&r.argument_digest)
        .bind(r.outcome.as_str())
        .bind(i64::from(r.is_error))
        .bind(&r.detail)
        .bind(r.latency_ms as i64)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn catalog_version(&self) -> Result<String, StoreError> {
        // SUM over BIGINT is NUMERIC in PostgreSQL, which the Any driver cannot decode: cast.
        let row = sqlx::query(
            "SELECT COUNT(*) AS servers, CAST(COALESCE(SUM(updated_at_ms), 0) AS BIGINT) AS changed \
             FROM servers",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let servers: i64 = row.try_get("servers").map_err(unavailable)?;
        let changed: i64 = row.try_get("changed").map_err(unavailable)?;
        Ok(format!("{servers}:{changed}"))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, time_ms, user_name, groups, surface, server, method, tool, argument_digest, outcome,
                    is_error, detail, latency_ms
             FROM audit
             WHERE ($1 IS NULL OR server = $1) AND ($2 IS NULL OR user_name = $2)
             ORDER BY time_ms DESC, id DESC LIMIT $3",
        )
        .bind(&filter.server)
        .bind(&filter.user)
        .bind(i64::from(filter.limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(audit_from_row).collect()
    }
}

fn server_from_row(row: &AnyRow) -> Result<ServerView, StoreError> {
    Ok(ServerView {
        name: row.get("name"),
        title: row.get("title"),
        description: row.get("description"),
        owner_team: row.get("owner_team"),
        support_channel: row.get("support_channel"),
        version: row.get("version"),
        endpoint: row.get("endpoint"),
        environment: row.get("environment"),
        allowed_groups: parse_json(row.get("allowed_groups"))?,
        status: row.get("status"),
        registered_at_ms: row.get("registered_at_ms"),
        updated_at_ms: row.get("updated_at_ms"),
        tools: Vec::new(),
        policies: row.get("policies"),
    })
}

fn tool_from_row(row: &AnyRow) -> Result<ToolView, StoreError> {
    let definition: ToolDefinition = parse_json(row.get("definition"))?;
    let policy_name: Option<String> = row.get("policy_name");
    let policy = match policy_name {
        Some(name) => {
            let groups: Option<String> = row.get("policy_groups");
            Some(PolicyView {
                name,
                groups: parse_json(&groups.unwrap_or_else(|| "[]".into()))?,
            })
        }
        None => None,
    };
    Ok(ToolView::new(
        definition,
        row.get("minutes_saved"),
        row.get("sensitivity"),
        policy,
    ))
}

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    let outcome: String = row.get("outcome");
    let latency: i64 = row.get("latency_ms");
    Ok(AuditRecord {
        id: row.get("id"),
        time_ms: row.get("time_ms"),
        user: row.get("user_name"),
        groups: parse_json(row.get("groups"))?,
        surface: row.get("surface"),
        server: row.get("server"),
        method: row.get("method"),
        tool: row.get("tool"),
        argument_digest: row.get("argument_digest"),
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown outcome {outcome:?}")))?,
        is_error: row.get::<i64, _>("is_error") != 0,
        detail: row.get("detail"),
        latency_ms: latency.max(0) as u64,
    })
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).expect("registry values always serialize")
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("parse stored JSON: {e}")))
}

fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}
