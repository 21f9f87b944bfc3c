//! The SQL MCP server (Pinterest's Presto MCP, for Switchboard): engineers and agents query the
//! warehouse with SQL through one engine trait ([`SqlEngine`]) over embedded DataFusion (the
//! default, over a generated sample warehouse), Trino/Presto and PostgreSQL. Every statement is
//! parsed and must only read ([`guard`]); results stay within row, byte and time limits and come
//! back both structured and as a compact text table for the model.

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
    handler::server::{common::schema_for_output, router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock, ServerConfig},
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use embedded::Embedded;
pub use engine::{Column, Limits, Plan, Rows, Run, SqlEngine, SqlError, TableInfo, TableName};
pub use guard::{Checked, Flavor, Refused, check_read_only};
pub use postgres::{Postgres, PostgresConfig};
pub use trino::{Dialect, Trino, TrinoConfig};

/// The bundled manifest.
pub const MANIFEST: &str = include_str!("../switchboard.toml");

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

#[derive(Debug, Deserialize, JsonSchema)]
pub struct QueryArgs {
    /// One SQL statement that reads: SELECT (with WITH, JOIN, UNION, ...), EXPLAIN, SHOW or
    /// DESCRIBE. Statements that change anything are refused.
    pub sql: String,
    /// Return at most this many rows (default and maximum: the server's row limit).
    #[serde(default)]
    pub max_rows: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExplainArgs {
    /// The query to plan (it is not run).
    pub sql: String,
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

/// A tool's failure, as the result the model reads.
fn failure(message: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}

/// A structured result with `text` as what the model reads.
fn answer<T: Serialize>(value: &T, text: String) -> Result<CallToolResult, ErrorData> {
    let value = serde_json::to_value(value)
        .map_err(|e| ErrorData::internal_error(format!("encode the result: {e}"), None))?;
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
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
    ) -> SqlServer {
        SqlServer {
            engine,
            limits,
            info,
            tool_router,
        }
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

    /// `schema.table` or `catalog.schema.table` as a full name.
    fn table_name(&self, text: &str) -> Result<TableName, String> {
        let parts = guard::split_name(text, self.engine.flavor()).map_err(|e| e.to_string())?;
        match parts.as_slice() {
            [schema, table] => Ok(TableName {
                catalog: self.engine.default_catalog().to_owned(),
                schema: schema.clone(),
                table: table.clone(),
            }),
            [catalog, schema, table] => Ok(TableName {
                catalog: catalog.clone(),
                schema: schema.clone(),
                table: table.clone(),
            }),
            _ => Err(format!(
                "name the table as schema.table or catalog.schema.table, not {text:?}"
            )),
        }
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
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for SqlServer {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }
}
