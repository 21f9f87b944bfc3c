//! The SQL store: SQLite (one file in the data directory, WAL journal and `synchronous=FULL`, so
//! that an acknowledged audit record or registration survives a crash) or PostgreSQL, with the
//! same queries.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
};

use async_trait::async_trait;
use registry_api::{
    Approver, AuditRecord, CallFact, ChangeRecord, Feedback, LiveStatus, NewProposal, Outcome,
    PolicyView, Proposal, ProposalState, Rating, RegisterServer, Review, ReviewFinding, ReviewKind,
    ReviewScope, ReviewState, ServerView, Team, ToolDefinition, ToolView,
};
use sqlx::{
    AnyConnection, AnyPool, Row,
    any::{AnyPoolOptions, AnyRow},
};

use crate::{AuditFilter, ChangeFilter, ProposalFilter, ReviewFilter, Store, StoreError};

/// The server columns, with the owner team's owners, as a macro so queries built from it stay
/// `&'static str`.
macro_rules! server_columns {
    () => {
        "SELECT s.name, s.title, s.description, s.owner_team, s.support_channel, s.version,
         s.endpoint, s.environment, s.allowed_groups, s.status, s.registered_at_ms,
         s.updated_at_ms, s.policies, s.docs_url, s.data_classification, s.sensitivity,
         s.revision, s.approved, t.owners AS team_owners, t.member_groups AS team_groups
         FROM servers s LEFT JOIN teams t ON t.name = s.owner_team"
    };
}

macro_rules! tool_columns {
    () => {
        "SELECT server, definition, minutes_saved, sensitivity, policy_name, policy_groups,
         approved_hash, approval, preview, sensitive_arguments FROM tools"
    };
}

macro_rules! proposal_columns {
    () => {
        "SELECT id, server, tool, arguments, argument_digest, user_name, groups, surface, client,
         reason, approver, state, created_at_ms, expires_at_ms, decided_by, decided_at_ms, comment,
         claimed_by, result, finished_at_ms, preview, channel FROM proposals"
    };
}

macro_rules! review_columns {
    () => {
        "SELECT id, server, round, scope, kind, state, reason, tools, findings, opened_at_ms,
         decided_by, decided_at_ms, comment FROM reviews"
    };
}

/// The registry store on SQLite (the embedded default) or PostgreSQL, through sqlx's `Any`
/// driver: one set of `$n` queries serves both, and each database has its own migrations.
pub struct SqlStore {
    pool: AnyPool,
    /// Whether the database is SQLite, whose write transactions must take the write lock when
    /// they begin.
    sqlite: bool,
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
        Ok(SqlStore { pool, sqlite })
    }

    /// A transaction that will write. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), waiting up to the busy timeout for another writer: a transaction that read
    /// first would fail when it came to write after another connection had committed
    /// (`SQLITE_BUSY_SNAPSHOT`), which no timeout cures.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        if self.sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await
        } else {
            self.pool.begin().await
        }
        .map_err(unavailable)
    }

    /// The server named `name` with its tools, read on `conn` (inside a transaction, when the
    /// caller holds one).
    async fn read_server(
        conn: &mut AnyConnection,
        name: &str,
    ) -> Result<Option<ServerView>, StoreError> {
        let Some(row) = sqlx::query(concat!(server_columns!(), " WHERE s.name = $1"))
            .bind(name)
            .fetch_optional(&mut *conn)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let mut server = server_from_row(&row)?;
        let rows = sqlx::query(concat!(
            tool_columns!(),
            " WHERE server = $1 ORDER BY position"
        ))
        .bind(name)
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
        server.tools = rows.iter().map(tool_from_row).collect::<Result<_, _>>()?;
        Ok(Some(server))
    }

    /// The one row `query` (taking the key as `$1`) finds for `key`, or `NotFound` naming `what`.
    async fn row_by_key(
        &self,
        query: &'static str,
        key: &str,
        what: &str,
    ) -> Result<AnyRow, StoreError> {
        sqlx::query(query)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("{what} {key}")))
    }

    /// Locks the server's row until the transaction ends (PostgreSQL; SQLite serializes writers),
    /// so concurrent registrations and review decisions on one server apply one after another.
    async fn lock_server(conn: &mut AnyConnection, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE servers SET revision = revision WHERE name = $1")
            .bind(name)
            .execute(&mut *conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Appends a change record inside the caller's transaction.
async fn record_change(
    conn: &mut AnyConnection,
    now_ms: i64,
    actor: &str,
    subject: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO changes (time_ms, actor, subject, action, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now_ms)
    .bind(actor)
    .bind(subject)
    .bind(action)
    .bind(json(&detail))
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// The parts of a server that a registration sets, for telling whether it changed anything.
fn registered_content(server: &ServerView) -> ServerView {
    let mut s = server.clone();
    s.registered_at_ms = 0;
    s.updated_at_ms = 0;
    s.revision = 0;
    s.approved = false;
    s.owner_users.clear();
    s.owner_groups.clear();
    for t in &mut s.tools {
        t.approved_hash = None;
        t.approved = false;
    }
    s
}

#[async_trait]
impl Store for SqlStore {
    async fn upsert_server(
        &self,
        reg: &RegisterServer,
        actor: &str,
        now_ms: i64,
    ) -> Result<ServerView, StoreError> {
        let m = &reg.manifest;
        let name = &m.server.name;
        let mut tx = self.write_tx().await?;
        Self::lock_server(&mut tx, name).await?;
        let team = sqlx::query("SELECT owners, member_groups FROM teams WHERE name = $1")
            .bind(&m.server.owner_team)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?;
        let Some(team) = team else {
            return Err(StoreError::Invalid(format!(
                "server.owner_team: team {:?} is not registered; create it first (PUT /v1/teams/{})",
                m.server.owner_team, m.server.owner_team
            )));
        };
        let previous = Self::read_server(&mut tx, name).await?;
        let mut next = reg.preview();
        next.owner_users = parse_json(team.get("owners"))?;
        next.owner_groups = parse_json(team.get("member_groups"))?;
        next.approved = previous.as_ref().is_some_and(|p| p.approved);
        next.tools = next
            .tools
            .into_iter()
            .map(|t| {
                let approved = previous.as_ref().and_then(|p| {
                    p.tools
                        .iter()
                        .find(|old| old.definition.name == t.definition.name)
                        .and_then(|old| old.approved_hash.clone())
                });
                t.with_approved_hash(approved)
            })
            .collect();
        let changed = previous
            .as_ref()
            .is_none_or(|p| registered_content(p) != registered_content(&next));
        if !changed {
            // Nothing new: no revision, no change record, no reviews.
            tx.commit().await.map_err(unavailable)?;
            return Ok(previous.expect("an unchanged server exists"));
        }
        let plan = registry_api::plan_round(previous.as_ref(), &next);
        let revision = previous.as_ref().map_or(1, |p| p.revision + 1);
        if plan
            .as_ref()
            .is_some_and(|p| p.scope == ReviewScope::Server)
        {
            next.approved = false;
        }
        sqlx::query(
            "INSERT INTO servers (name, title, description, owner_team, support_channel, version, endpoint,
                                  environment, allowed_groups, manifest, status, registered_at_ms, updated_at_ms,
                                  policies, docs_url, data_classification, sensitivity, revision, approved)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, $11, $12, $13, $14, $15, $16, $17)
             ON CONFLICT (name) DO UPDATE SET
                title = excluded.title, description = excluded.description, owner_team = excluded.owner_team,
                support_channel = excluded.support_channel, version = excluded.version,
                endpoint = excluded.endpoint, environment = excluded.environment,
                allowed_groups = excluded.allowed_groups, manifest = excluded.manifest,
                status = excluded.status, updated_at_ms = excluded.updated_at_ms,
                policies = excluded.policies, docs_url = excluded.docs_url,
                data_classification = excluded.data_classification,
                sensitivity = excluded.sensitivity, revision = excluded.revision,
                approved = excluded.approved",
        )
        .bind(name)
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
        .bind(&next.docs_url)
        .bind(&next.data_classification)
        .bind(&next.sensitivity)
        .bind(revision)
        .bind(i64::from(next.approved))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query("DELETE FROM tools WHERE server = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        for (position, tool) in next.tools.iter().enumerate() {
            sqlx::query(
                "INSERT INTO tools (server, name, position, definition, minutes_saved, sensitivity, policy_name,
                                    policy_groups, definition_hash, approved_hash, approval, preview,
                                    sensitive_arguments)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(name)
            .bind(&tool.definition.name)
            .bind(position as i64)
            .bind(json(&tool.definition))
            .bind(tool.minutes_saved)
            .bind(&tool.sensitivity)
            .bind(tool.policy.as_ref().map(|p| p.name.as_str()))
            .bind(tool.policy.as_ref().map(|p| json(&p.groups)))
            .bind(&tool.definition_hash)
            .bind(&tool.approved_hash)
            .bind(&tool.approval)
            .bind(i64::from(tool.preview))
            .bind(json(&tool.sensitive_arguments))
            .execute(&mut *tx)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    StoreError::Conflict(format!("tool {} is listed twice", tool.definition.name))
                }
                e => unavailable(e),
            })?;
        }
        let subject = format!("server:{name}");
        let action = if previous.is_some() {
            "server.updated"
        } else {
            "server.registered"
        };
        record_change(
            &mut tx,
            now_ms,
            actor,
            &subject,
            action,
            serde_json::json!({
                "revision": revision,
                "version": m.server.version,
                "endpoint": reg.endpoint,
                "environment": reg.environment,
                "tools": next.tools.iter().map(|t| (&t.definition.name, &t.definition_hash)).collect::<BTreeMap<_, _>>(),
            }),
        )
        .await?;
        let tools_changed = previous.as_ref().is_some_and(|p| {
            p.tools.len() != next.tools.len()
                || p.tools.iter().zip(&next.tools).any(|(a, b)| {
                    a.definition.name != b.definition.name || a.definition_hash != b.definition_hash
                })
        });
        if plan.is_some() || tools_changed {
            let superseded = sqlx::query(
                "UPDATE reviews SET state = 'superseded', decided_at_ms = $2
                 WHERE server = $1 AND state = 'pending'",
            )
            .bind(name)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?
            .rows_affected();
            if superseded > 0 {
                record_change(
                    &mut tx,
                    now_ms,
                    actor,
                    &subject,
                    "review.superseded",
                    serde_json::json!({ "reviews": superseded, "by_revision": revision }),
                )
                .await?;
            }
        }
        if let Some(plan) = plan {
            if plan.scope == ReviewScope::Server && previous.as_ref().is_some_and(|p| p.approved) {
                record_change(
                    &mut tx,
                    now_ms,
                    actor,
                    &subject,
                    "server.approval_revoked",
                    serde_json::json!({ "reason": plan.reason }),
                )
                .await?;
            }
            let findings: Vec<ReviewFinding> = next
                .tools
                .iter()
                .filter(|t| plan.tools.contains_key(&t.definition.name))
                .flat_map(|t| {
                    t.findings.iter().map(|f| ReviewFinding {
                        tool: t.definition.name.clone(),
                        code: f.code.clone(),
                        message: f.message.clone(),
                    })
                })
                .collect();
            for kind in &plan.kinds {
                let id = format!("{name}.{revision}.{}", kind.as_str());
                let kind_findings: &[ReviewFinding] = if *kind == ReviewKind::Genai {
                    &findings
                } else {
                    &[]
                };
                sqlx::query(
                    "INSERT INTO reviews (id, server, round, scope, kind, state, reason, tools, findings, opened_at_ms)
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $8, $9)",
                )
                .bind(&id)
                .bind(name)
                .bind(revision)
                .bind(plan.scope.as_str())
                .bind(kind.as_str())
                .bind(&plan.reason)
                .bind(json(&plan.tools))
                .bind(json(kind_findings))
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
                record_change(
                    &mut tx,
                    now_ms,
                    actor,
                    &format!("review:{id}"),
                    "review.opened",
                    serde_json::json!({ "server": name, "reason": plan.reason, "findings": kind_findings.len() }),
                )
                .await?;
            }
        }
        let server = Self::read_server(&mut tx, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("server {name}")))?;
        tx.commit().await.map_err(unavailable)?;
        Ok(server)
    }

    async fn list_servers(&self) -> Result<Vec<ServerView>, StoreError> {
        let rows = sqlx::query(concat!(server_columns!(), " ORDER BY s.name"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut servers = rows
            .iter()
            .map(server_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Every tool in one query rather than one per server.
        let tool_rows = sqlx::query(concat!(tool_columns!(), " ORDER BY server, position"))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut by_server: HashMap<String, Vec<ToolView>> = HashMap::new();
        for row in &tool_rows {
            let server: String = row.get("server");
            by_server
                .entry(server)
                .or_default()
                .push(tool_from_row(row)?);
        }
        for server in &mut servers {
            server.tools = by_server.remove(&server.name).unwrap_or_default();
        }
        Ok(servers)
    }

    async fn get_server(&self, name: &str) -> Result<ServerView, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        Self::read_server(&mut conn, name)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("server {name}")))
    }

    async fn get_registration(&self, name: &str) -> Result<RegisterServer, StoreError> {
        let row = self
            .row_by_key(
                "SELECT manifest, endpoint, environment, policies FROM servers WHERE name = $1",
                name,
                "server",
            )
            .await?;
        let tools = sqlx::query("SELECT definition FROM tools WHERE server = $1 ORDER BY position")
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(RegisterServer {
            manifest: parse_json(row.get("manifest"))?,
            endpoint: row.get("endpoint"),
            environment: row.get("environment"),
            policies: row.get("policies"),
            tools: tools
                .iter()
                .map(|t| parse_json(t.get("definition")))
                .collect::<Result<_, _>>()?,
        })
    }

    async fn put_team(&self, team: &Team, actor: &str, now_ms: i64) -> Result<Team, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO teams (name, title, owners, member_groups, support_channel, created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (name) DO UPDATE SET
                title = excluded.title, owners = excluded.owners, member_groups = excluded.member_groups,
                support_channel = excluded.support_channel, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(&team.name)
        .bind(&team.title)
        .bind(json(&team.owners))
        .bind(json(&team.member_groups))
        .bind(&team.support_channel)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        record_change(
            &mut tx,
            now_ms,
            actor,
            &format!("team:{}", team.name),
            "team.saved",
            serde_json::json!({
                "owners": team.owners,
                "member_groups": team.member_groups,
                "support_channel": team.support_channel,
            }),
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        self.get_team(&team.name).await
    }

    async fn list_teams(&self) -> Result<Vec<Team>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, title, owners, member_groups, support_channel, updated_at_ms FROM teams ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(team_from_row).collect()
    }

    async fn get_team(&self, name: &str) -> Result<Team, StoreError> {
        let row = self
            .row_by_key(
                "SELECT name, title, owners, member_groups, support_channel, updated_at_ms FROM teams WHERE name = $1",
                name,
                "team",
            )
            .await?;
        team_from_row(&row)
    }

    async fn list_reviews(&self, filter: &ReviewFilter) -> Result<Vec<Review>, StoreError> {
        let rows = sqlx::query(concat!(
            review_columns!(),
            " WHERE ($1 IS NULL OR server = $1) AND ($2 IS NULL OR state = $2)
              ORDER BY opened_at_ms DESC, id LIMIT $3"
        ))
        .bind(&filter.server)
        .bind(filter.state.map(ReviewState::as_str))
        .bind(i64::from(filter.limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(review_from_row).collect()
    }

    async fn get_review(&self, id: &str) -> Result<Review, StoreError> {
        let row = self
            .row_by_key(concat!(review_columns!(), " WHERE id = $1"), id, "review")
            .await?;
        review_from_row(&row)
    }

    async fn decide_review(
        &self,
        id: &str,
        approve: bool,
        actor: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Review, StoreError> {
        let mut tx = self.write_tx().await?;
        let server = sqlx::query("SELECT server FROM reviews WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::NotFound(format!("review {id}")))?
            .get::<String, _>("server");
        Self::lock_server(&mut tx, &server).await?;
        // Read after the lock, so a registration that superseded it meanwhile is seen.
        let row = sqlx::query(concat!(review_columns!(), " WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        let review = review_from_row(&row)?;
        if review.state != ReviewState::Pending {
            return Err(StoreError::Conflict(format!(
                "review {id} is {} already; only pending reviews can be decided",
                review.state.as_str()
            )));
        }
        let state = if approve {
            ReviewState::Approved
        } else {
            ReviewState::Rejected
        };
        sqlx::query(
            "UPDATE reviews SET state = $2, decided_by = $3, decided_at_ms = $4, comment = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(actor)
        .bind(now_ms)
        .bind(comment)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        record_change(
            &mut tx,
            now_ms,
            actor,
            &format!("review:{id}"),
            &format!("review.{}", state.as_str()),
            serde_json::json!({ "server": server, "comment": comment }),
        )
        .await?;
        let round = sqlx::query("SELECT state FROM reviews WHERE server = $1 AND round = $2")
            .bind(&server)
            .bind(review.round)
            .fetch_all(&mut *tx)
            .await
            .map_err(unavailable)?;
        let complete = round
            .iter()
            .all(|r| r.get::<String, _>("state") == ReviewState::Approved.as_str());
        if complete {
            // Pin exactly the definitions the round reviewed (a tool changed since keeps its old
            // pin; its change opened a newer round, which superseded this one).
            for (tool, hash) in &review.tools {
                sqlx::query(
                    "UPDATE tools SET approved_hash = $3
                     WHERE server = $1 AND name = $2 AND definition_hash = $3",
                )
                .bind(&server)
                .bind(tool)
                .bind(hash)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            }
            if review.scope == ReviewScope::Server {
                sqlx::query("UPDATE servers SET approved = 1 WHERE name = $1")
                    .bind(&server)
                    .execute(&mut *tx)
                    .await
                    .map_err(unavailable)?;
            }
            sqlx::query("UPDATE servers SET updated_at_ms = $2 WHERE name = $1")
                .bind(&server)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            record_change(
                &mut tx,
                now_ms,
                actor,
                &format!("server:{server}"),
                if review.scope == ReviewScope::Server {
                    "server.approved"
                } else {
                    "tools.approved"
                },
                serde_json::json!({ "round": review.round, "tools": review.tools }),
            )
            .await?;
        }
        let row = sqlx::query(concat!(review_columns!(), " WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        let decided = review_from_row(&row)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(decided)
    }

    async fn put_status(&self, status: &LiveStatus) -> Result<LiveStatus, StoreError> {
        let result = sqlx::query(
            "INSERT INTO server_status (server, ok, latency_ms, error, checked_at_ms, last_ok_at_ms, tools, protocol_version, not_ready)
             SELECT $1, $2, $3, $4, $5, CASE WHEN $2 = 1 THEN $5 ELSE NULL END, $6, $7, $8
             WHERE EXISTS (SELECT 1 FROM servers WHERE name = $1)
             ON CONFLICT (server) DO UPDATE SET
                ok = excluded.ok, latency_ms = excluded.latency_ms, error = excluded.error,
                checked_at_ms = excluded.checked_at_ms,
                last_ok_at_ms = COALESCE(excluded.last_ok_at_ms, server_status.last_ok_at_ms),
                tools = excluded.tools, protocol_version = excluded.protocol_version,
                not_ready = excluded.not_ready",
        )
        .bind(&status.server)
        .bind(i64::from(status.ok))
        .bind(status.latency_ms.min(i64::MAX as u64) as i64)
        .bind(&status.error)
        .bind(status.checked_at_ms)
        .bind(i64::from(status.tools))
        .bind(&status.protocol_version)
        .bind(&status.not_ready)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("server {}", status.server)));
        }
        self.list_statuses()
            .await?
            .into_iter()
            .find(|s| s.server == status.server)
            .ok_or_else(|| StoreError::NotFound(format!("server {}", status.server)))
    }

    async fn list_statuses(&self) -> Result<Vec<LiveStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT server, ok, latency_ms, error, checked_at_ms, last_ok_at_ms, tools, protocol_version, not_ready
             FROM server_status ORDER BY server",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| LiveStatus {
                server: row.get("server"),
                ok: row.get::<i64, _>("ok") != 0,
                latency_ms: row.get::<i64, _>("latency_ms").max(0) as u64,
                error: row.get("error"),
                checked_at_ms: row.get("checked_at_ms"),
                last_ok_at_ms: row.get("last_ok_at_ms"),
                tools: row.get::<i64, _>("tools").clamp(0, i64::from(u32::MAX)) as u32,
                protocol_version: row.get("protocol_version"),
                not_ready: row.get("not_ready"),
            })
            .collect())
    }

    async fn create_proposal(&self, p: &NewProposal, now_ms: i64) -> Result<Proposal, StoreError> {
        let digest = catalog::json_digest(&p.arguments);
        let mut tx = self.write_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO proposals (id, server, tool, arguments, argument_digest, user_name, groups, surface,
                                    client, reason, approver, state, created_at_ms, expires_at_ms, preview, channel)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12, $13, $14, $15)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&p.id)
        .bind(&p.server)
        .bind(&p.tool)
        .bind(json(&p.arguments))
        .bind(&digest)
        .bind(&p.user)
        .bind(json(&p.groups))
        .bind(&p.surface)
        .bind(&p.client)
        .bind(&p.reason)
        .bind(p.approver.to_string())
        .bind(now_ms)
        .bind(p.expires_at_ms)
        .bind(p.preview.as_ref().map(json))
        .bind(&p.channel)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if inserted == 1 {
            record_change(
                &mut tx,
                now_ms,
                &p.user,
                &format!("proposal:{}", p.id),
                "proposal.opened",
                serde_json::json!({
                    "server": p.server, "tool": p.tool, "approver": p.approver.to_string(),
                    "argument_digest": digest, "reason": p.reason,
                }),
            )
            .await?;
        }
        tx.commit().await.map_err(unavailable)?;
        self.get_proposal(&p.id, now_ms).await
    }

    async fn get_proposal(&self, id: &str, now_ms: i64) -> Result<Proposal, StoreError> {
        // Read first, and write only when this one has just expired: waiting gateways poll here.
        let query = concat!(proposal_columns!(), " WHERE id = $1");
        let proposal = proposal_from_row(&self.row_by_key(query, id, "proposal").await?)?;
        if proposal.state == ProposalState::Pending && proposal.proposal.expires_at_ms <= now_ms {
            expire_proposals(&self.pool, now_ms).await?;
            return proposal_from_row(&self.row_by_key(query, id, "proposal").await?);
        }
        Ok(proposal)
    }

    async fn list_proposals(
        &self,
        filter: &ProposalFilter,
        now_ms: i64,
    ) -> Result<Vec<Proposal>, StoreError> {
        expire_proposals(&self.pool, now_ms).await?;
        let rows = sqlx::query(concat!(
            proposal_columns!(),
            " WHERE ($1 IS NULL OR state = $1) AND ($2 IS NULL OR server = $2) AND ($3 IS NULL OR user_name = $3)
              ORDER BY created_at_ms DESC, id LIMIT $4"
        ))
        .bind(filter.state.map(ProposalState::as_str))
        .bind(&filter.server)
        .bind(&filter.user)
        .bind(i64::from(filter.limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(proposal_from_row).collect()
    }

    async fn decide_proposal(
        &self,
        id: &str,
        approve: bool,
        actor: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Proposal, StoreError> {
        let state = if approve {
            ProposalState::Approved
        } else {
            ProposalState::Rejected
        };
        let mut tx = self.write_tx().await?;
        // Decided only while pending and unexpired: one statement, so two deciders cannot both win.
        let changed = sqlx::query(
            "UPDATE proposals SET state = $2, decided_by = $3, decided_at_ms = $4, comment = $5
             WHERE id = $1 AND state = 'pending' AND expires_at_ms > $4",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(actor)
        .bind(now_ms)
        .bind(comment)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if changed == 0 {
            drop(tx);
            let current = self.get_proposal(id, now_ms).await?;
            return Err(StoreError::Conflict(format!(
                "proposal {id} is {} already; only pending proposals can be decided",
                current.state.as_str()
            )));
        }
        record_change(
            &mut tx,
            now_ms,
            actor,
            &format!("proposal:{id}"),
            &format!("proposal.{}", state.as_str()),
            serde_json::json!({ "comment": comment }),
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        self.get_proposal(id, now_ms).await
    }

    async fn claim_proposal(
        &self,
        id: &str,
        claimant: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Proposal>, StoreError> {
        let claimed = sqlx::query(
            "UPDATE proposals SET state = 'running', claimed_by = $2, claimed_at_ms = $3
             WHERE id = $1 AND (state = 'approved' OR (state = 'running' AND claimed_at_ms < $4))",
        )
        .bind(id)
        .bind(claimant)
        .bind(now_ms)
        .bind(now_ms.saturating_sub(lease_ms))
        .execute(&self.pool)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        self.get_proposal(id, now_ms).await.map(Some)
    }

    async fn finish_proposal(
        &self,
        id: &str,
        claimant: &str,
        ok: bool,
        result: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Proposal, StoreError> {
        let state = if ok {
            ProposalState::Done
        } else {
            ProposalState::Failed
        };
        let mut tx = self.write_tx().await?;
        let finished = sqlx::query(
            "UPDATE proposals SET state = $3, result = $4, finished_at_ms = $5
             WHERE id = $1 AND state = 'running' AND claimed_by = $2",
        )
        .bind(id)
        .bind(claimant)
        .bind(state.as_str())
        .bind(json(result))
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if finished == 0 {
            return Err(StoreError::Conflict(format!(
                "proposal {id} is not running under {claimant}"
            )));
        }
        record_change(
            &mut tx,
            now_ms,
            claimant,
            &format!("proposal:{id}"),
            &format!("proposal.{}", state.as_str()),
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        self.get_proposal(id, now_ms).await
    }

    async fn list_changes(&self, filter: &ChangeFilter) -> Result<Vec<ChangeRecord>, StoreError> {
        // A server's history includes its reviews (`review:<server>.<round>.<kind>`).
        let reviews_of = filter
            .subject
            .as_deref()
            .and_then(|s| s.strip_prefix("server:"))
            .map(|name| format!("review:{name}.%"));
        let rows = sqlx::query(
            "SELECT seq, time_ms, actor, subject, action, detail FROM changes
             WHERE ($1 IS NULL OR subject = $1 OR subject LIKE $2)
             ORDER BY seq DESC LIMIT $3",
        )
        .bind(&filter.subject)
        .bind(reviews_of.unwrap_or_default())
        .bind(i64::from(filter.limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(ChangeRecord {
                    seq: row.get("seq"),
                    time_ms: row.get("time_ms"),
                    actor: row.get("actor"),
                    subject: row.get("subject"),
                    action: row.get("action"),
                    detail: parse_json(row.get("detail"))?,
                })
            })
            .collect()
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // Rows go in many at a time: every statement is a round trip to the database (for
        // SQLite, to its worker thread and back), and a shipped batch holds hundreds of calls.
        let mut tx = self.write_tx().await?;
        for chunk in records.chunks(AUDIT_ROWS_PER_INSERT) {
            // Made of fixed text and placeholder numbers only: every value is bound.
            let sql = sqlx::AssertSqlSafe(audit_insert_sql(chunk.len(), !self.sqlite));
            // Only the full-size statement is worth keeping prepared; a batch's remainder
            // varies in size from one delivery to the next.
            let mut query = sqlx::query(sql).persistent(chunk.len() == AUDIT_ROWS_PER_INSERT);
            for r in chunk {
                query = query
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
                    .bind(r.latency_ms.min(i64::MAX as u64) as i64)
                    .bind(r.arguments.as_ref().map(json))
                    .bind(&r.proposal)
                    .bind(&r.team)
                    .bind(r.minutes_saved)
                    .bind(&r.trace_id)
                    .bind(&r.channel);
            }
            query.execute(&mut *tx).await.map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn call_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<CallFact>, StoreError> {
        let rows = sqlx::query(
            "SELECT time_ms, user_name, server, method, tool, team, outcome, latency_ms, minutes_saved
             FROM audit WHERE time_ms >= $1 AND time_ms < $2 AND method = 'tools/call'",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let outcome: String = row.get("outcome");
                Ok(CallFact {
                    time_ms: row.get("time_ms"),
                    user: row.get("user_name"),
                    server: row.get("server"),
                    method: row.get("method"),
                    tool: row.get("tool"),
                    team: row.get("team"),
                    outcome: stored_outcome(&outcome)?,
                    latency_ms: row.get::<i64, _>("latency_ms").max(0) as u64,
                    minutes_saved: row.get("minutes_saved"),
                })
            })
            .collect()
    }

    async fn purge_audit(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM audit WHERE time_ms < $1")
            .bind(before_ms)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    async fn gateway_heartbeat(
        &self,
        id: &str,
        url: &str,
        now_ms: i64,
        since_ms: i64,
    ) -> Result<u32, StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO gateway_replicas (id, url, last_seen_ms) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET url = excluded.url, last_seen_ms = excluded.last_seen_ms",
        )
        .bind(id)
        .bind(url)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        // Replicas silent for an hour are gone for good.
        sqlx::query("DELETE FROM gateway_replicas WHERE last_seen_ms < $1")
            .bind(now_ms - 3_600_000)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        let live: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM gateway_replicas WHERE last_seen_ms >= $1")
                .bind(since_ms)
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?
                .get("n");
        tx.commit().await.map_err(unavailable)?;
        Ok(u32::try_from(live.max(1)).unwrap_or(u32::MAX))
    }

    async fn add_feedback(&self, f: &Feedback) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO feedback (id, time_ms, user_name, server, tool, rating, comment, audit_id, surface)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&f.id)
        .bind(f.time_ms)
        .bind(&f.user)
        .bind(&f.server)
        .bind(&f.tool)
        .bind(match f.rating {
            Rating::Up => 1_i64,
            Rating::Down => -1,
        })
        .bind(&f.comment)
        .bind(&f.audit_id)
        .bind(&f.surface)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(())
    }

    async fn list_feedback(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Feedback>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, time_ms, user_name, server, tool, rating, comment, audit_id, surface
             FROM feedback WHERE time_ms >= $1 AND time_ms < $2 ORDER BY time_ms, id",
        )
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| Feedback {
                id: row.get("id"),
                time_ms: row.get("time_ms"),
                user: row.get("user_name"),
                server: row.get("server"),
                tool: row.get("tool"),
                rating: if row.get::<i64, _>("rating") > 0 {
                    Rating::Up
                } else {
                    Rating::Down
                },
                comment: row.get("comment"),
                audit_id: row.get("audit_id"),
                surface: row.get("surface"),
            })
            .collect())
    }

    async fn proposal_counts(&self, now_ms: i64) -> Result<Vec<(ProposalState, u64)>, StoreError> {
        // Read-only (metrics scrape this): a pending proposal past expiry counts as expired.
        let rows = sqlx::query(concat!(
            "SELECT ",
            state_now!(),
            " AS state, COUNT(*) AS n FROM proposals GROUP BY 1 ORDER BY 1"
        ))
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let state: String = row.get("state");
                Ok((stored_state(&state)?, row.get::<i64, _>("n").max(0) as u64))
            })
            .collect()
    }

    async fn proposal_facts(
        &self,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<(String, String, ProposalState)>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT server, tool, ",
            state_now!(),
            " AS state FROM proposals WHERE created_at_ms >= $2 AND created_at_ms < $3"
        ))
        .bind(now_ms)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let state: String = row.get("state");
                Ok((row.get("server"), row.get("tool"), stored_state(&state)?))
            })
            .collect()
    }

    async fn catalog_version(&self) -> Result<String, StoreError> {
        // SUM over BIGINT is NUMERIC in PostgreSQL, which the Any driver cannot decode: cast.
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM servers) AS servers,
                    (SELECT CAST(COALESCE(SUM(updated_at_ms), 0) AS BIGINT) FROM servers) AS changed,
                    (SELECT COUNT(*) FROM teams) AS teams,
                    (SELECT CAST(COALESCE(SUM(updated_at_ms), 0) AS BIGINT) FROM teams) AS teams_changed",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let number = |column: &str| row.try_get::<i64, _>(column).map_err(unavailable);
        Ok(format!(
            "{}:{}:{}:{}",
            number("servers")?,
            number("changed")?,
            number("teams")?,
            number("teams_changed")?
        ))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let (after_ms, after_id) = match &filter.after {
            Some((ms, id)) => (Some(*ms), Some(id.clone())),
            None => (None, None),
        };
        let order = if filter.after.is_some() {
            "ORDER BY time_ms ASC, id ASC"
        } else {
            "ORDER BY time_ms DESC, id DESC"
        };
        let text = filter
            .text
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(|t| format!("%{}%", t.to_lowercase()));
        let sql = format!(
            "SELECT id, time_ms, user_name, groups, surface, server, method, tool, argument_digest, outcome,
                    is_error, detail, latency_ms, arguments, proposal, team, minutes_saved, trace_id, channel
             FROM audit
             WHERE ($1 IS NULL OR server = $1) AND ($2 IS NULL OR user_name = $2)
               AND ($3 IS NULL OR tool = $3) AND ($4 IS NULL OR outcome = $4)
               AND ($5 IS NULL OR time_ms >= $5) AND ($6 IS NULL OR time_ms < $6)
               AND ($7 IS NULL OR LOWER(user_name) LIKE $7 OR LOWER(COALESCE(tool, '')) LIKE $7
                    OR LOWER(COALESCE(detail, '')) LIKE $7 OR LOWER(COALESCE(arguments, '')) LIKE $7)
               AND ($8 IS NULL OR time_ms > $8 OR (time_ms = $8 AND id > $9))
             {order} LIMIT $10"
        );
        // Safe: the only text put into the statement is `order`, one of two constants.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&filter.server)
            .bind(&filter.user)
            .bind(&filter.tool)
            .bind(filter.outcome.map(Outcome::as_str))
            .bind(filter.from_ms)
            .bind(filter.to_ms)
            .bind(text)
            .bind(after_ms)
            .bind(after_id)
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
        docs_url: row.get("docs_url"),
        data_classification: row.get("data_classification"),
        sensitivity: row.get("sensitivity"),
        revision: row.get("revision"),
        approved: row.get::<i64, _>("approved") != 0,
        owner_users: parse_json(
            &row.get::<Option<String>, _>("team_owners")
                .unwrap_or_else(|| "[]".into()),
        )?,
        owner_groups: parse_json(
            &row.get::<Option<String>, _>("team_groups")
                .unwrap_or_else(|| "[]".into()),
        )?,
    })
}

/// Pending proposals past their expiry become expired (with the time they expired).
/// A proposal's state as of `$1` (now): a pending one past its expiry reads as expired, without
/// writing (`expire_proposals` records it when proposals are listed or decided).
macro_rules! state_now {
    () => {
        "CASE WHEN state = 'pending' AND expires_at_ms <= $1 THEN 'expired' ELSE state END"
    };
}
use state_now;

async fn expire_proposals(pool: &AnyPool, now_ms: i64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE proposals SET state = 'expired', decided_at_ms = expires_at_ms
         WHERE state = 'pending' AND expires_at_ms <= $1",
    )
    .bind(now_ms)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

fn proposal_from_row(row: &AnyRow) -> Result<Proposal, StoreError> {
    let state: String = row.get("state");
    let approver: String = row.get("approver");
    let result: Option<String> = row.get("result");
    let preview: Option<String> = row.get("preview");
    Ok(Proposal {
        proposal: NewProposal {
            id: row.get("id"),
            server: row.get("server"),
            tool: row.get("tool"),
            arguments: parse_json(row.get("arguments"))?,
            user: row.get("user_name"),
            groups: parse_json(row.get("groups"))?,
            surface: row.get("surface"),
            channel: row.get("channel"),
            client: row.get("client"),
            reason: row.get("reason"),
            approver: Approver::parse(&approver).map_err(StoreError::Corrupt)?,
            expires_at_ms: row.get("expires_at_ms"),
            preview: preview.as_deref().map(parse_json).transpose()?,
        },
        argument_digest: row.get("argument_digest"),
        state: stored_state(&state)?,
        created_at_ms: row.get("created_at_ms"),
        decided_by: row.get("decided_by"),
        decided_at_ms: row.get("decided_at_ms"),
        comment: row.get("comment"),
        claimed_by: row.get("claimed_by"),
        result: result.as_deref().map(parse_json).transpose()?,
        finished_at_ms: row.get("finished_at_ms"),
    })
}

fn team_from_row(row: &AnyRow) -> Result<Team, StoreError> {
    Ok(Team {
        name: row.get("name"),
        title: row.get("title"),
        owners: parse_json(row.get("owners"))?,
        member_groups: parse_json(row.get("member_groups"))?,
        support_channel: row.get("support_channel"),
        updated_at_ms: row.get("updated_at_ms"),
    })
}

fn review_from_row(row: &AnyRow) -> Result<Review, StoreError> {
    let text = |column: &str| row.get::<String, _>(column);
    let corrupt =
        |what: &str, value: String| StoreError::Corrupt(format!("unknown review {what} {value:?}"));
    Ok(Review {
        id: text("id"),
        server: text("server"),
        round: row.get("round"),
        scope: ReviewScope::parse(&text("scope")).ok_or_else(|| corrupt("scope", text("scope")))?,
        kind: ReviewKind::parse(&text("kind")).ok_or_else(|| corrupt("kind", text("kind")))?,
        state: ReviewState::parse(&text("state")).ok_or_else(|| corrupt("state", text("state")))?,
        reason: text("reason"),
        tools: parse_json(row.get("tools"))?,
        findings: parse_json(row.get("findings"))?,
        opened_at_ms: row.get("opened_at_ms"),
        decided_by: row.get("decided_by"),
        decided_at_ms: row.get("decided_at_ms"),
        comment: row.get("comment"),
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
    )
    .with_approved_hash(row.get("approved_hash"))
    .with_approval(row.get("approval"))
    .with_preview(row.get::<i64, _>("preview") != 0)
    .with_sensitive_arguments(
        row.get::<Option<String>, _>("sensitive_arguments")
            .as_deref()
            .map(parse_json)
            .transpose()?
            .unwrap_or_default(),
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
        channel: row.get("channel"),
        server: row.get("server"),
        method: row.get("method"),
        tool: row.get("tool"),
        argument_digest: row.get("argument_digest"),
        outcome: stored_outcome(&outcome)?,
        is_error: row.get::<i64, _>("is_error") != 0,
        detail: row.get("detail"),
        latency_ms: latency.max(0) as u64,
        arguments: row
            .get::<Option<String>, _>("arguments")
            .as_deref()
            .map(parse_json)
            .transpose()?,
        proposal: row.get("proposal"),
        team: row.get("team"),
        minutes_saved: row.get("minutes_saved"),
        trace_id: row.get("trace_id"),
    })
}

/// An outcome as stored.
fn stored_outcome(text: &str) -> Result<Outcome, StoreError> {
    Outcome::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown outcome {text:?}")))
}

/// A proposal state as stored.
fn stored_state(text: &str) -> Result<ProposalState, StoreError> {
    ProposalState::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown proposal state {text:?}")))
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

/// Audit rows one `INSERT` carries at most: 19 parameters a row keeps a full statement at 3,800
/// parameters, inside SQLite's limit (32,766) and PostgreSQL's (65,535).
const AUDIT_ROWS_PER_INSERT: usize = 200;

/// The `INSERT` of `rows` audit records; a record already stored (a delivery retried after its
/// answer was lost) is skipped. PostgreSQL's placeholders are numbered (`$1` on); SQLite's are
/// plain `?`, since SQLite finds a numbered placeholder's position by walking every name before
/// it, which makes binding a statement of thousands of them quadratic.
fn audit_insert_sql(rows: usize, numbered: bool) -> String {
    use std::fmt::Write;
    const COLUMNS: usize = 19;
    let mut sql = String::from(
        "INSERT INTO audit (id, time_ms, user_name, groups, surface, server, method, tool, argument_digest, \
         outcome, is_error, detail, latency_ms, arguments, proposal, team, minutes_saved, trace_id, channel) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..COLUMNS {
            sql.push_str(if column == 0 { "" } else { ", " });
            if numbered {
                let _ = write!(sql, "${}", row * COLUMNS + column + 1);
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    sql
}

#[cfg(test)]
mod tests {
    use super::audit_insert_sql;

    #[test]
    fn an_audit_insert_has_one_placeholder_per_column_of_each_row() {
        let numbered = audit_insert_sql(2, true);
        assert!(numbered.contains("VALUES ($1, $2, "));
        assert!(numbered.contains("$19), ($20, "));
        assert!(numbered.ends_with("$38) ON CONFLICT (id) DO NOTHING"));
        assert!(!numbered.contains('?'));
        let plain = audit_insert_sql(3, false);
        assert_eq!(plain.matches('?').count(), 3 * 19);
        assert!(!plain.contains('$'));
        assert_eq!(plain.matches("), (").count(), 2);
    }
}
