//! The SQL MCP server (Pinterest's Presto MCP, for Switchboard): engineers and agents query the
//! warehouse with SQL through one engine trait ([`SqlEngine`]) over embedded DataFusion (the
//! default, over a generated sample warehouse), Trino/Presto and PostgreSQL. Every statement is
//! parsed and must only read ([`guard`]); results stay within row, byte and time limits and come
//! back both structured and as a compact text table for the model.
//!
//! Table-level access rules are the server's Cedar policies (`policies.cedar`, registered with
//! it): every tool that touches tables works out which ones (`tables` as `schema.table`,
//! `schemas`) and asks the policies with them before the engine sees anything, so a rule such as
//! "finance.* only for group finance" holds however the SQL names the table. Writes go through
//! `run_write` alone: it always needs approval, previews what it would change (target table,
//! rows now, rows it would write) for the caller's confirmation and the approvers, and runs only
//! as an approved proposal.

pub mod embedded;
pub mod engine;
pub mod guard;
pub mod postgres;
pub mod sample;
mod text;
pub mod trino;
pub mod trino_front;

use std::sync::Arc;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{
        common::schema_for_output, router::tool::ToolRouter, tool::InputResponses as Responses,
        wrapper::Parameters,
    },
    model::{CallToolResponse, CallToolResult, ServerConfig},
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use server_sdk::Governance;
use server_sdk::answer::{answer, failure};

pub use embedded::Embedded;
pub use engine::{
    Column, Limits, Plan, Rows, Run, SqlEngine, SqlError, TableInfo, TableName, Written,
};
pub use guard::{Checked, Flavor, Refused, WriteChecked, WriteKind, check_read_only, check_write};
pub use postgres::{Postgres, PostgresConfig};
pub use trino::{Dialect, Trino, TrinoConfig};

/// The bundled manifest.
pub const MANIFEST: &str = include_str!("../switchboard.toml");

/// The bundled table-level access rules (Cedar), registered with the server.
pub const POLICIES: &str = include_str!("../policies.cedar");

/// The SQL server over `engine` as an HTTP router (`/mcp`, `/metrics`, `/healthz`, `/readyz`),
/// its tools governed by `governance` (made from this server's manifest and, for table rules,
/// [`POLICIES`] or the operator's own).
pub fn http_router(
    engine: Arc<dyn SqlEngine>,
    limits: Limits,
    governance: Governance,
    options: server_sdk::HttpOptions,
) -> Result<axum::Router, Vec<catalog::Problem>> {
    let router = governance.govern(SqlServer::tools())?;
    let info = server_sdk::server_info(governance.manifest());
    let handlers = governance.clone();
    Ok(server_sdk::http_router(
        move || {
            SqlServer::new(
                engine.clone(),
                limits.clone(),
                info.clone(),
                router.clone(),
                handlers.clone(),
            )
        },
        governance,
        options,
    ))
}

/// Rows `sample_rows` returns at most.
const MAX_SAMPLE_ROWS: u32 = 50;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CatalogArgs {
    /// The catalog (default: the engine's default catalog).
    #[serde(default)]
    pub catalog: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TablesArgs {
    /// The catalog (default: the engine's default catalog).
    #[serde(default)]
    pub catalog: Option<String>,
    /// Only this schema's tables (default: every schema).
    #[serde(default)]
    pub schema: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TableArgs {
    /// The table, as `schema.table` or `catalog.schema.table` (for example "ads.daily_spend").
    pub table: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SampleArgs {
    /// The table, as `schema.table` or `catalog.schema.table`.
    pub table: String,
    /// Rows to return, 1 to 50 (default 10).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// What a call may say about the tables its statement touches. The server works both out from
/// the SQL and checks access rules against what it found; a call that declares them lets the
/// gateway check the same rules before the call reaches the server, and must declare them right.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct Touches {
    /// Optional: the tables the statement reads or writes, as `schema.table`.
    #[serde(default)]
    pub tables: Option<Vec<String>>,
    /// Optional: the schemas of those tables.
    #[serde(default)]
    pub schemas: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryArgs {
    /// One SQL statement that reads: SELECT (with WITH, JOIN, UNION, ...), EXPLAIN, SHOW or
    /// DESCRIBE. Statements that change anything are refused.
    pub sql: String,
    /// Return at most this many rows (default and maximum: the server's row limit).
    #[serde(default)]
    pub max_rows: Option<u32>,
    #[serde(flatten)]
    pub touches: Touches,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExplainArgs {
    /// The query to plan (it is not run).
    pub sql: String,
    #[serde(flatten)]
    pub touches: Touches,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WriteArgs {
    /// One statement that writes a table from a query: CREATE TABLE t AS SELECT ..., CREATE OR
    /// REPLACE TABLE t AS SELECT ..., INSERT INTO t SELECT ... or INSERT OVERWRITE t SELECT ....
    pub sql: String,
    #[serde(flatten)]
    pub touches: Touches,
}

/// What a write would change, shown to the caller and the approvers before it runs.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct WritePreview {
    /// What the statement does to the table.
    pub operation: WriteKind,
    /// The affected table, `catalog.schema.table`.
    pub table: String,
    /// Rows in the table now (none when it does not exist yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_rows: Option<u64>,
    /// Rows the query would write, counted now; the table may have changed by the time the
    /// approved write runs.
    pub estimated_rows: u64,
    /// Rows the table would hold afterwards.
    pub rows_after: u64,
    /// The tables the query reads.
    pub reads: Vec<String>,
    /// The statement as it would run.
    pub sql: String,
}

impl WritePreview {
    /// One line for people: what would change.
    pub fn summary(&self) -> String {
        let now = match self.current_rows {
            Some(rows) => format!("{rows} rows now"),
            None => "a new table".into(),
        };
        format!(
            "{} {} ({now}): writes about {} rows, leaving {} rows",
            capitalised(self.operation.verb()),
            self.table,
            self.estimated_rows,
            self.rows_after
        )
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// A write's result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct WriteResult {
    /// What was approved.
    pub preview: WritePreview,
    /// Rows the statement wrote, where the engine says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_written: Option<u64>,
    /// The approved proposal this write ran as.
    pub proposal: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Catalogs {
    pub catalogs: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Schemas {
    pub catalog: String,
    pub schemas: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Tables {
    pub tables: Vec<TableInfo>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TableDescription {
    /// `catalog.schema.table`.
    pub table: String,
    pub columns: Vec<Column>,
}

/// A query's result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryResult {
    pub columns: Vec<Column>,
    /// Each row's values in column order.
    pub rows: Vec<Vec<serde_json::Value>>,
    pub row_count: usize,
    /// Why the result stops short, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<String>,
    /// The tables the statement reads.
    pub tables: Vec<String>,
}

/// The server handler; cheap to clone (one per session or stateless request).
#[derive(Clone)]
pub struct SqlServer {
    engine: Arc<dyn SqlEngine>,
    limits: Limits,
    info: ServerConfig,
    tool_router: ToolRouter<SqlServer>,
    governance: Governance,
}

/// Why a call stops before the engine: a refusal by policy (a JSON-RPC error, as the gateway
/// answers one) or a mistake in the call (a tool error the model reads).
enum Stop {
    Denied(ErrorData),
    Invalid(String),
}

impl Stop {
    fn into_result(self) -> Result<CallToolResult, ErrorData> {
        match self {
            Stop::Denied(e) => Err(e),
            Stop::Invalid(message) => Ok(failure(message)),
        }
    }
}

/// Runs `work` until it ends or the client cancels the call (a `notifications/cancelled`, or a
/// closed stream): then `work` is dropped, which stops the statement on the engine.
async fn cancellable<T>(
    ctx: &RequestContext<RoleServer>,
    work: impl std::future::Future<Output = Result<T, SqlError>>,
) -> Result<T, SqlError> {
    tokio::select! {
        outcome = work => outcome,
        () = ctx.ct.cancelled() => {
            tracing::info!("the client cancelled a statement; stopped it on the engine");
            Err(SqlError::Query("the client cancelled the call".into()))
        }
    }
}

#[tool_router]
impl SqlServer {
    /// Builds the handler over `engine`, with `tool_router` being the governed router (see
    /// [`SqlServer::tools`] and `server_sdk::Governance::govern`).
    pub fn new(
        engine: Arc<dyn SqlEngine>,
        limits: Limits,
        info: ServerConfig,
        tool_router: ToolRouter<SqlServer>,
        governance: Governance,
    ) -> SqlServer {
        SqlServer {
            engine,
            limits,
            info,
            tool_router,
            governance,
        }
    }

    /// The tables (`schema.table`) and schemas that `names` (as the guard reports relations,
    /// or as a `TableName`'s parts) touch, sorted. An unqualified name is resolved against the
    /// engine's one default schema; where there is none and the server has access rules, it is
    /// refused, since a rule could not tell which table it means.
    fn touched(&self, names: &[String]) -> Result<(Vec<String>, Vec<String>), Stop> {
        let mut tables = std::collections::BTreeSet::new();
        let mut schemas = std::collections::BTreeSet::new();
        for name in names {
            let parts: Vec<&str> = name.split('.').collect();
            let (schema, table) = match parts.as_slice() {
                [schema, table] | [_, schema, table] => ((*schema).to_owned(), *table),
                [table] => match self.engine.default_schema() {
                    Some(schema) => (schema.to_owned(), *table),
                    None if self.governance.has_policies() => {
                        return Err(Stop::Invalid(format!(
                            "name the table {table} as schema.table: access rules are checked against schema-qualified names"
                        )));
                    }
                    None => continue,
                },
                _ => {
                    return Err(Stop::Invalid(format!(
                        "name the table {name} as schema.table or catalog.schema.table"
                    )));
                }
            };
            tables.insert(format!("{schema}.{table}"));
            schemas.insert(schema);
        }
        Ok((tables.into_iter().collect(), schemas.into_iter().collect()))
    }

    /// Asks the server's access rules whether the caller may make this call of `tool`, with the
    /// tables and schemas it touches (worked out from the SQL, never taken from the caller)
    /// added to its arguments. A call that declared them must have declared them right.
    fn check_access(
        &self,
        ctx: &RequestContext<RoleServer>,
        tool: &str,
        mut args: serde_json::Map<String, serde_json::Value>,
        declared: &Touches,
        names: &[String],
    ) -> Result<(), Stop> {
        let (tables, schemas) = self.touched(names)?;
        let differs = |declared: &Option<Vec<String>>, found: &[String]| {
            declared.as_ref().is_some_and(|d| {
                let d: std::collections::BTreeSet<String> =
                    d.iter().map(|t| t.to_lowercase()).collect();
                !d.iter().eq(found.iter())
            })
        };
        if differs(&declared.tables, &tables) || differs(&declared.schemas, &schemas) {
            return Err(Stop::Invalid(format!(
                "the call declares tables {:?} and schemas {:?}, but the statement touches tables {tables:?} in schemas {schemas:?}; declare them as the statement names them, or leave them out",
                declared.tables.as_deref().unwrap_or_default(),
                declared.schemas.as_deref().unwrap_or_default()
            )));
        }
        args.insert("tables".into(), serde_json::json!(tables));
        args.insert("schemas".into(), serde_json::json!(schemas));
        let caller = self.governance.caller(ctx);
        self.governance
            .authorize_call(&caller, tool, &serde_json::Value::Object(args))
            .map_err(Stop::Denied)
    }

    /// The table `parts` name, as a full name.
    fn target_name(&self, parts: &[String]) -> Result<TableName, String> {
        TableName::resolve(
            parts,
            self.engine.default_catalog(),
            self.engine.default_schema(),
        )
    }

    /// A single count from the engine, as the caller.
    async fn count(
        &self,
        sql: &str,
        run: &Run,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<u64, SqlError> {
        let rows = cancellable(ctx, self.engine.query(sql, run)).await?;
        rows.rows
            .first()
            .and_then(|row| row.first())
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or_else(|| SqlError::Internal(format!("the engine gave no count for {sql}")))
    }

    /// What `write` would change, worked out as the caller without changing anything.
    async fn preview(
        &self,
        write: &WriteChecked,
        target: &TableName,
        run: &Run,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<WritePreview, SqlError> {
        let exists = self.engine.columns(target, run).await.is_ok();
        engine::check_target(write.kind, exists, target)?;
        let current_rows = if exists {
            Some(
                self.count(
                    &format!("SELECT count(*) FROM {}", target.quoted()),
                    run,
                    ctx,
                )
                .await?,
            )
        } else {
            None
        };
        let estimated_rows = self
            .count(
                &format!(
                    "SELECT count(*) FROM ({}) AS switchboard_source",
                    write.source
                ),
                run,
                ctx,
            )
            .await?;
        let rows_after = match write.kind {
            WriteKind::Append => current_rows.unwrap_or(0) + estimated_rows,
            _ => estimated_rows,
        };
        Ok(WritePreview {
            operation: write.kind,
            table: target.to_string(),
            current_rows,
            estimated_rows,
            rows_after,
            reads: write.tables.clone(),
            sql: write.sql.clone(),
        })
    }

    /// The ungoverned tool router, to be wrapped by the SDK.
    pub fn tools() -> ToolRouter<SqlServer> {
        Self::tool_router()
    }

    /// Who runs a statement: the verified caller (the gateway's assertion, or the local
    /// identity), within the server's limits.
    fn run_for(&self, ctx: &RequestContext<RoleServer>) -> Run {
        Run {
            user: server_sdk::caller_of(ctx)
                .map(|c| c.user)
                .unwrap_or_else(|| "anonymous".into()),
            limits: self.limits.clone(),
        }
    }

    /// `schema.table` or `catalog.schema.table` (as text) as a full name.
    fn table_name(&self, text: &str) -> Result<TableName, String> {
        let parts = guard::split_name(text, self.engine.flavor()).map_err(|e| e.to_string())?;
        self.target_name(&parts)
    }

    /// Runs a statement the guard passed and shapes its result.
    async fn run_checked(
        &self,
        checked: Checked,
        run: &Run,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        match cancellable(ctx, self.engine.query(&checked.sql, run)).await {
            Ok(rows) => {
                let text = text::table(&rows);
                let result = QueryResult {
                    row_count: rows.rows.len(),
                    columns: rows.columns,
                    rows: rows.rows,
                    truncated: rows.truncated,
                    tables: checked.tables,
                };
                answer(&result, text)
            }
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "List the catalogs of the SQL engine.",
        annotations(title = "List catalogs", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Catalogs>()
    )]
    async fn list_catalogs(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        match self.engine.catalogs(&self.run_for(&ctx)).await {
            Ok(catalogs) => {
                let text = catalogs.join("\n");
                answer(&Catalogs { catalogs }, text)
            }
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "List the schemas of a catalog.",
        annotations(title = "List schemas", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Schemas>()
    )]
    async fn list_schemas(
        &self,
        Parameters(args): Parameters<CatalogArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let catalog = args
            .catalog
            .unwrap_or_else(|| self.engine.default_catalog().to_owned());
        match self.engine.schemas(&catalog, &self.run_for(&ctx)).await {
            Ok(schemas) => {
                let text = schemas.join("\n");
                answer(&Schemas { catalog, schemas }, text)
            }
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "List the tables of a catalog, or of one schema in it.",
        annotations(title = "List tables", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Tables>()
    )]
    async fn list_tables(
        &self,
        Parameters(args): Parameters<TablesArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let catalog = args
            .catalog
            .unwrap_or_else(|| self.engine.default_catalog().to_owned());
        match self
            .engine
            .tables(&catalog, args.schema.as_deref(), &self.run_for(&ctx))
            .await
        {
            Ok(tables) => {
                let text = tables
                    .iter()
                    .map(|t| format!("{}.{}.{}", t.catalog, t.schema, t.name))
                    .collect::<Vec<_>>()
                    .join("\n");
                answer(&Tables { tables }, text)
            }
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "Describe a table: its columns and their types.",
        annotations(title = "Describe a table", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<TableDescription>()
    )]
    async fn describe_table(
        &self,
        Parameters(args): Parameters<TableArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let name = match self.table_name(&args.table) {
            Ok(name) => name,
            Err(e) => return Ok(failure(e)),
        };
        let touched = [format!("{}.{}", name.schema, name.table)];
        let call = serde_json::Map::from_iter([("table".to_owned(), args.table.clone().into())]);
        if let Err(stop) =
            self.check_access(&ctx, "describe_table", call, &Touches::default(), &touched)
        {
            return stop.into_result();
        }
        match self.engine.columns(&name, &self.run_for(&ctx)).await {
            Ok(columns) => {
                let text = columns
                    .iter()
                    .map(|c| format!("{} {}", c.name, c.data_type))
                    .collect::<Vec<_>>()
                    .join("\n");
                answer(
                    &TableDescription {
                        table: name.to_string(),
                        columns,
                    },
                    text,
                )
            }
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "Return a few rows of a table, to see what its data looks like.",
        annotations(title = "Sample rows", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<QueryResult>()
    )]
    async fn sample_rows(
        &self,
        Parameters(args): Parameters<SampleArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = args.limit.unwrap_or(10);
        if !(1..=MAX_SAMPLE_ROWS).contains(&limit) {
            return Ok(failure(format!(
                "limit must be between 1 and {MAX_SAMPLE_ROWS}, got {limit}"
            )));
        }
        let name = match self.table_name(&args.table) {
            Ok(name) => name,
            Err(e) => return Ok(failure(e)),
        };
        let touched = [format!("{}.{}", name.schema, name.table)];
        let call = serde_json::Map::from_iter([
            ("table".to_owned(), args.table.clone().into()),
            ("limit".to_owned(), limit.into()),
        ]);
        if let Err(stop) =
            self.check_access(&ctx, "sample_rows", call, &Touches::default(), &touched)
        {
            return stop.into_result();
        }
        let sql = format!("SELECT * FROM {} LIMIT {limit}", name.quoted());
        match guard::check_read_only(&sql, self.engine.flavor()) {
            Ok(checked) => self.run_checked(checked, &self.run_for(&ctx), &ctx).await,
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "Run one read-only SQL statement (SELECT, EXPLAIN, SHOW, DESCRIBE) and return its rows, within the server's row, size and time limits. Statements that change data are refused.",
        annotations(title = "Run a query", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<QueryResult>()
    )]
    async fn run_query(
        &self,
        Parameters(args): Parameters<QueryArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let checked = match guard::check_read_only(&args.sql, self.engine.flavor()) {
            Ok(checked) => checked,
            Err(e) => return Ok(failure(e)),
        };
        let mut call = serde_json::Map::from_iter([("sql".to_owned(), args.sql.clone().into())]);
        if let Some(max) = args.max_rows {
            call.insert("max_rows".into(), max.into());
        }
        if let Err(stop) =
            self.check_access(&ctx, "run_query", call, &args.touches, &checked.tables)
        {
            return stop.into_result();
        }
        let mut run = self.run_for(&ctx);
        if let Some(max) = args.max_rows {
            if max == 0 {
                return Ok(failure("max_rows must be at least 1"));
            }
            run.limits.max_rows = run.limits.max_rows.min(max as usize);
        }
        self.run_checked(checked, &run, &ctx).await
    }

    #[tool(
        description = "Show how the engine would run a query, with its estimate of rows and bytes where the engine gives one. The query is not run.",
        annotations(title = "Explain a query", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Plan>()
    )]
    async fn explain_query(
        &self,
        Parameters(args): Parameters<ExplainArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let checked = match guard::check_read_only(&args.sql, self.engine.flavor()) {
            Ok(checked) if checked.explain => {
                return Ok(failure(
                    "send the query itself; explain_query adds the EXPLAIN",
                ));
            }
            Ok(checked) => checked,
            Err(e) => return Ok(failure(e)),
        };
        let call = serde_json::Map::from_iter([("sql".to_owned(), args.sql.clone().into())]);
        if let Err(stop) =
            self.check_access(&ctx, "explain_query", call, &args.touches, &checked.tables)
        {
            return stop.into_result();
        }
        match cancellable(&ctx, self.engine.explain(&checked.sql, &self.run_for(&ctx))).await {
            Ok(plan) => {
                let mut text = plan.plan.clone();
                if let Some(rows) = plan.estimated_rows {
                    text.push_str(&format!("\nestimated rows: {rows}"));
                }
                if let Some(bytes) = plan.estimated_bytes {
                    text.push_str(&format!("\nestimated bytes: {bytes}"));
                }
                answer(&plan, text)
            }
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "Write a table from a query: CREATE TABLE t AS SELECT ..., CREATE OR REPLACE TABLE t AS SELECT ..., INSERT INTO t SELECT ... or INSERT OVERWRITE t SELECT .... Every write needs approval by the data owners: the call first shows what would change (the table, its rows now, the rows the query would write), asks you to confirm where the client can, and becomes a proposal; it runs once approved.",
        annotations(title = "Write a table (needs approval)", read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<WriteResult>()
    )]
    async fn run_write(
        &self,
        Parameters(args): Parameters<WriteArgs>,
        Responses(responses): Responses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let write = match guard::check_write(&args.sql, self.engine.flavor()) {
            Ok(write) => write,
            Err(e) => return Ok(failure(e).into()),
        };
        let target = match self.target_name(&write.target) {
            Ok(target) => target,
            Err(e) => return Ok(failure(e).into()),
        };
        let mut touched = write.tables.clone();
        touched.push(format!("{}.{}", target.schema, target.table));
        let call = serde_json::Map::from_iter([("sql".to_owned(), args.sql.clone().into())]);
        if let Err(stop) = self.check_access(&ctx, "run_write", call, &args.touches, &touched) {
            return stop.into_result().map(Into::into);
        }
        let run = self.run_for(&ctx);
        let preview = match self.preview(&write, &target, &run, &ctx).await {
            Ok(preview) => preview,
            Err(e) => return Ok(failure(e).into()),
        };
        let summary = preview.summary();
        let details = serde_json::to_value(&preview)
            .map_err(|e| ErrorData::internal_error(format!("encode the preview: {e}"), None))?;
        if server_sdk::preview::requested(&ctx) {
            // The gateway asks before proposing: confirm with the caller where the client can
            // ask; where it cannot, the approvers, who see the same preview, decide alone.
            return server_sdk::preview::propose(&ctx, responses.as_ref(), &summary, details).await;
        }
        // Only an approved proposal runs: the gateway's assertion names it.
        let Some(proposal) = server_sdk::preview::approved(&ctx) else {
            return Ok(server_sdk::preview::unapproved("run_write", &summary).into());
        };
        let run = Run {
            // Writes rewrite whole tables: give them more time than a query.
            limits: Limits {
                timeout: run.limits.timeout * 4,
                ..run.limits
            },
            ..run
        };
        match cancellable(&ctx, self.engine.write(&write, &target, &run)).await {
            Ok(written) => {
                let text = format!(
                    "done: {} {} ({} rows written)",
                    write.kind.verb(),
                    target,
                    written
                        .rows
                        .map_or_else(|| "unknown".to_owned(), |r| r.to_string())
                );
                answer(
                    &WriteResult {
                        preview,
                        rows_written: written.rows,
                        proposal,
                    },
                    text,
                )
                .map(Into::into)
            }
            Err(e) => Ok(failure(e).into()),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SqlServer {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }
}
