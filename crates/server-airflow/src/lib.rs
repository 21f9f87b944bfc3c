//! The Airflow MCP server (Pinterest's Airflow MCP, for Switchboard): engineers and agents find
//! DAGs and their runs, read task instances and structured task logs with the exceptions they
//! record, and see the DAG files that do not import, from an Airflow 3 deployment's REST API
//! ([`AirflowClient`]). The actions that change pipelines (`trigger_dag_run`,
//! `clear_task_instances`, `pause_dag`, `unpause_dag`) run only as approved proposals: each is
//! previewed first (for a clear, Airflow's own dry run lists what would run again) and the
//! approvers see that preview. Without a configured Airflow the server still serves, answering
//! every call, and its readiness, with how to connect one: there is no imitation Airflow.

pub mod client;
pub mod model;

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
use serde_json::{Value, json};
use server_sdk::{
    answer::{answer, failure},
    preview,
};

pub use client::{AirflowClient, AirflowError, Auth};
pub use model::{
    Dag, DagDetails, DagRun, DagTask, ImportError, LogError, LogLine, TaskInstance, TaskLog,
};

/// The bundled manifest.
pub const MANIFEST: &str = include_str!("../switchboard.toml");

/// What every call answers, and `/readyz` says, while no Airflow is configured.
pub const NOT_CONNECTED: &str = "no Airflow is connected to this server. Connect one with --airflow-url http://airflow:8080 and either --airflow-token (SWITCHBOARD_AIRFLOW_TOKEN) or --airflow-user with --airflow-password (SWITCHBOARD_AIRFLOW_PASSWORD), on `switchboard up` or `switchboard server airflow`";

/// Runs listed at most by one call.
const MAX_LIST: u32 = 100;
/// Log lines `get_task_log` returns at most.
const MAX_LOG_LINES: u32 = 1000;
/// Characters of a note kept at most (Airflow stores 1000 for a clear's note).
const MAX_NOTE: usize = 600;

/// The Airflow server over `airflow` (`None`: not connected) as an HTTP router (`/mcp`,
/// `/metrics`, `/healthz`, `/readyz`), its tools governed by `governance` (made from this
/// server's manifest).
pub fn http_router(
    airflow: Option<Arc<AirflowClient>>,
    governance: server_sdk::Governance,
    mut options: server_sdk::HttpOptions,
) -> Result<axum::Router, Vec<catalog::Problem>> {
    let router = governance.govern(Airflow::tools())?;
    let info = server_sdk::server_info(governance.manifest());
    options.ready = Some(readiness(airflow.clone()));
    Ok(server_sdk::http_router(
        move || Airflow::new(airflow.clone(), info.clone(), router.clone()),
        governance,
        options,
    ))
}

/// The server's readiness: not ready while no Airflow is connected, or while the connected one
/// reports its metadata database or scheduler unhealthy.
pub fn readiness(airflow: Option<Arc<AirflowClient>>) -> server_sdk::ReadyCheck {
    Arc::new(move || {
        let airflow = airflow.clone();
        Box::pin(async move {
            match airflow {
                None => Err(NOT_CONNECTED.to_owned()),
                Some(airflow) => airflow.health().await,
            }
        })
    })
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListDagsArgs {
    /// Only paused (`true`) or only active (`false`) DAGs.
    #[serde(default)]
    pub paused: Option<bool>,
    /// Only DAGs with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Only DAGs whose id contains this text (as in Airflow, `_` matches any one character and
    /// `%` any text).
    #[serde(default)]
    pub search: Option<String>,
    /// How many to return: 1 to 100 (default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DagArgs {
    /// The DAG's id, as `list_dags` gives it.
    pub dag_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListRunsArgs {
    /// Only this DAG's runs; without it, runs of every DAG.
    #[serde(default)]
    pub dag_id: Option<String>,
    /// Only runs in this state: `queued`, `running`, `success` or `failed`.
    #[serde(default)]
    pub state: Option<String>,
    /// How many to return, newest first: 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RunArgs {
    pub dag_id: String,
    /// The run's id, as `list_dag_runs` gives it.
    pub dag_run_id: String,
    /// Only task instances in this state (`failed`, `success`, `running`, `upstream_failed`, …).
    #[serde(default)]
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LogArgs {
    pub dag_id: String,
    pub dag_run_id: String,
    pub task_id: String,
    /// The try to read (default: the latest).
    #[serde(default)]
    pub try_number: Option<i64>,
    /// The mapped instance's index, for a mapped task.
    #[serde(default)]
    pub map_index: Option<i64>,
    /// Lines to return at most, the last ones: 1 to 1000 (default 200). Exceptions are always
    /// returned in full.
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ImportErrorArgs {
    /// Only errors of DAG files whose name contains this text.
    #[serde(default)]
    pub filename: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TriggerArgs {
    pub dag_id: String,
    /// The run's configuration (`dag_run.conf`), a JSON object.
    #[serde(default)]
    pub conf: Option<serde_json::Map<String, Value>>,
    /// The new run's id (default: Airflow's `manual__<time>`).
    #[serde(default)]
    pub dag_run_id: Option<String>,
    /// Why the run is needed; kept as the run's note with who asked and who approved.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ClearArgs {
    pub dag_id: String,
    /// The run whose task instances run again.
    pub dag_run_id: String,
    /// Only these tasks (default: every task of the run that matches `only_failed`).
    #[serde(default)]
    pub task_ids: Option<Vec<String>>,
    /// Only failed (and upstream-failed) task instances (default true).
    #[serde(default)]
    pub only_failed: Option<bool>,
    /// Also the tasks downstream of the chosen ones (default false).
    #[serde(default)]
    pub include_downstream: Option<bool>,
    /// Why; kept as the note of the cleared task instances with who asked and who approved.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Dags {
    pub dags: Vec<Dag>,
    /// DAGs that match, in all.
    pub total: u64,
}

/// A DAG with its tasks and latest runs.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DagView {
    pub dag: DagDetails,
    pub tasks: Vec<DagTask>,
    /// The latest runs, newest first.
    pub recent_runs: Vec<DagRun>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DagRuns {
    pub dag_runs: Vec<DagRun>,
    /// Runs that match, in all.
    pub total: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TaskInstances {
    pub task_instances: Vec<TaskInstance>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ImportErrors {
    pub import_errors: Vec<ImportError>,
    /// Errors that match, in all.
    pub total: u64,
}

/// What an approved trigger did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Triggered {
    pub dag_run: DagRun,
    /// The approved proposal it ran under.
    pub proposal: String,
}

/// What an approved clear did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Cleared {
    /// The task instances that will run again.
    pub task_instances: Vec<TaskInstance>,
    pub proposal: String,
}

/// What an approved pause or unpause did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PauseChanged {
    pub dag: Dag,
    pub proposal: String,
}

/// The server handler; cheap to clone.
#[derive(Clone)]
pub struct Airflow {
    airflow: Option<Arc<AirflowClient>>,
    info: ServerConfig,
    tool_router: ToolRouter<Airflow>,
}

/// A DAG or task id as Airflow allows them (letters, digits, `_`, `.`, `-`; at most 250).
fn check_key(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > 250 {
        return Err(format!("{what} must be 1 to 250 characters"));
    }
    match value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        Some(c) => Err(format!(
            "{what} {value:?} holds {c:?}: Airflow ids are letters, digits, '_', '.' and '-'"
        )),
        None => Ok(()),
    }
}

/// A run id: any printable text Airflow accepts, at most 250 characters.
fn check_run_id(value: &str) -> Result<(), String> {
    if value.trim().is_empty() || value.len() > 250 {
        return Err("dag_run_id must be 1 to 250 characters".into());
    }
    if value.chars().any(char::is_control) {
        return Err("dag_run_id holds a control character".into());
    }
    Ok(())
}

/// What every call answers while no Airflow is connected.
fn not_connected() -> CallToolResult {
    failure(format!("Airflow is not connected: {NOT_CONNECTED}"))
}

fn check_limit(limit: Option<u32>, default: u32, max: u32) -> Result<u32, String> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(format!("limit must be between 1 and {max}, got {limit}"))
    }
}

fn state_word(state: &Option<String>) -> &str {
    state.as_deref().unwrap_or("no state yet")
}

fn runs_text(runs: &[DagRun]) -> String {
    if runs.is_empty() {
        return "no runs match".to_owned();
    }
    runs.iter()
        .map(|r| {
            format!(
                "{} {} [{}] {} run after {}{}",
                r.dag_id,
                r.dag_run_id,
                r.state,
                r.run_type,
                r.run_after.as_deref().unwrap_or("?"),
                r.duration
                    .map(|d| format!(", {d:.0} s"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn instances_text(instances: &[TaskInstance]) -> String {
    instances
        .iter()
        .map(|t| {
            format!(
                "{}{} [{}] try {}{}",
                t.task_id,
                if t.map_index >= 0 {
                    format!("[{}]", t.map_index)
                } else {
                    String::new()
                },
                state_word(&t.state),
                t.try_number,
                t.duration
                    .map(|d| format!(", {d:.1} s"))
                    .unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Who asked for an action and under which approval, with the caller's own words.
fn provenance(ctx: &RequestContext<RoleServer>, proposal: &str, note: Option<&str>) -> String {
    let user = server_sdk::caller_of(&ctx.clone())
        .map(|c| c.user)
        .unwrap_or_else(|| "unknown".into());
    let asked =
        format!("Requested by {user} through Switchboard; approved as proposal {proposal}.");
    match note.map(str::trim).filter(|n| !n.is_empty()) {
        Some(note) => format!(
            "{} ({asked})",
            note.chars().take(MAX_NOTE).collect::<String>()
        ),
        None => asked,
    }
}

#[tool_router]
impl Airflow {
    pub fn new(
        airflow: Option<Arc<AirflowClient>>,
        info: ServerConfig,
        tool_router: ToolRouter<Airflow>,
    ) -> Airflow {
        Airflow {
            airflow,
            info,
            tool_router,
        }
    }

    /// The ungoverned tool router, to be wrapped by the SDK.
    pub fn tools() -> ToolRouter<Airflow> {
        Self::tool_router()
    }

    #[tool(
        description = "List Airflow DAGs: all of them, paused or active ones, those with a tag, or those whose id contains a text.",
        annotations(title = "List DAGs", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Dags>()
    )]
    async fn list_dags(
        &self,
        Parameters(args): Parameters<ListDagsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(airflow) = self.airflow.as_deref() else {
            return Ok(not_connected());
        };
        let limit = match check_limit(args.limit, 50, MAX_LIST) {
            Ok(l) => l,
            Err(e) => return Ok(failure(e)),
        };
        let mut query = vec![("limit", limit.to_string()), ("order_by", "dag_id".into())];
        if let Some(paused) = args.paused {
            query.push(("paused", paused.to_string()));
        }
        if let Some(tag) = args.tag.filter(|t| !t.is_empty()) {
            query.push(("tags", tag));
        }
        if let Some(search) = args.search.filter(|s| !s.is_empty()) {
            query.push(("dag_id_pattern", search));
        }
        let listed: model::DagCollection = match airflow.get(&["dags"], &query).await {
            Ok(l) => l,
            Err(e) => return Ok(failure(e)),
        };
        let text = if listed.dags.is_empty() {
            "no DAGs match".to_owned()
        } else {
            listed
                .dags
                .iter()
                .map(|d| {
                    format!(
                        "{} [{}]{}{}",
                        d.dag_id,
                        if d.is_paused { "paused" } else { "active" },
                        if d.tags.is_empty() {
                            String::new()
                        } else {
                            format!(" tags: {}", d.tags.join(", "))
                        },
                        if d.has_import_errors {
                            " (its file has import errors)"
                        } else {
                            ""
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        answer(
            &Dags {
                total: listed.total_entries,
                dags: listed.dags,
            },
            text,
        )
    }

    #[tool(
        description = "Show an Airflow DAG: its schedule, owners, whether it is paused, its tasks and how they depend on each other, and its latest runs.",
        annotations(title = "Get a DAG", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<DagView>()
    )]
    async fn get_dag(
        &self,
        Parameters(args): Parameters<DagArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(airflow) = self.airflow.as_deref() else {
            return Ok(not_connected());
        };
        if let Err(e) = check_key("dag_id", &args.dag_id) {
            return Ok(failure(e));
        }
        let id = args.dag_id.as_str();
        let runs_query = [("limit", "5".to_owned()), ("order_by", "-run_after".into())];
        let (details_path, tasks_path, runs_path) = (
            ["dags", id, "details"],
            ["dags", id, "tasks"],
            ["dags", id, "dagRuns"],
        );
        let (details, tasks, runs) = tokio::join!(
            airflow.get::<DagDetails>(&details_path, &[]),
            airflow.get::<model::TaskCollection>(&tasks_path, &[]),
            airflow.get::<model::DagRunCollection>(&runs_path, &runs_query),
        );
        let view = match (details, tasks, runs) {
            (Ok(dag), Ok(tasks), Ok(runs)) => DagView {
                dag,
                tasks: tasks.tasks,
                recent_runs: runs.dag_runs,
            },
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Ok(failure(e)),
        };
        let d = &view.dag.dag;
        let mut text = format!(
            "{} [{}] owners: {}; schedule: {}",
            d.dag_id,
            if d.is_paused { "paused" } else { "active" },
            d.owners.join(", "),
            d.timetable_description.as_deref().unwrap_or("none")
        );
        for task in &view.tasks {
            text.push_str(&format!(
                "\ntask {} ({}){}",
                task.task_id,
                task.operator_name.as_deref().unwrap_or("?"),
                if task.downstream_task_ids.is_empty() {
                    String::new()
                } else {
                    format!(" -> {}", task.downstream_task_ids.join(", "))
                }
            ));
        }
        if !view.recent_runs.is_empty() {
            text.push_str(&format!("\nlatest runs:\n{}", runs_text(&view.recent_runs)));
        }
        answer(&view, text)
    }

    #[tool(
        description = "List DAG runs, newest first: of one DAG or of every DAG, optionally only those in a state (for example every failed run across all DAGs).",
        annotations(title = "List DAG runs", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<DagRuns>()
    )]
    async fn list_dag_runs(
        &self,
        Parameters(args): Parameters<ListRunsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(airflow) = self.airflow.as_deref() else {
            return Ok(not_connected());
        };
        let limit = match check_limit(args.limit, 20, MAX_LIST) {
            Ok(l) => l,
            Err(e) => return Ok(failure(e)),
        };
        if let Some(state) = &args.state
            && !["queued", "running", "success", "failed"].contains(&state.as_str())
        {
            return Ok(failure(format!(
                "state is queued, running, success or failed, not {state:?}"
            )));
        }
        let dag = args.dag_id.as_deref().unwrap_or("~");
        if dag != "~"
            && let Err(e) = check_key("dag_id", dag)
        {
            return Ok(failure(e));
        }
        let mut query = vec![
            ("limit", limit.to_string()),
            ("order_by", "-run_after".into()),
        ];
        if let Some(state) = args.state {
            query.push(("state", state));
        }
        match airflow
            .get::<model::DagRunCollection>(&["dags", dag, "dagRuns"], &query)
            .await
        {
            Ok(runs) => {
                let text = runs_text(&runs.dag_runs);
                answer(
                    &DagRuns {
                        total: runs.total_entries,
                        dag_runs: runs.dag_runs,
                    },
                    text,
                )
            }
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "List the task instances of a DAG run: each task's state, try number and duration (optionally only those in a state, such as failed).",
        annotations(title = "Get task instances", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<TaskInstances>()
    )]
    async fn get_task_instances(
        &self,
        Parameters(args): Parameters<RunArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(airflow) = self.airflow.as_deref() else {
            return Ok(not_connected());
        };
        if let Err(e) =
            check_key("dag_id", &args.dag_id).and_then(|()| check_run_id(&args.dag_run_id))
        {
            return Ok(failure(e));
        }
        let mut query = vec![("limit", "1000".to_owned())];
        if let Some(state) = args.state.filter(|s| !s.is_empty()) {
            query.push(("state", state));
        }
        let path = [
            "dags",
            &args.dag_id,
            "dagRuns",
            &args.dag_run_id,
            "taskInstances",
        ];
        match airflow
            .get::<model::TaskInstanceCollection>(&path, &query)
            .await
        {
            Ok(listed) => {
                let text = if listed.task_instances.is_empty() {
                    "no task instances match".to_owned()
                } else {
                    instances_text(&listed.task_instances)
                };
                answer(
                    &TaskInstances {
                        task_instances: listed.task_instances,
                    },
                    text,
                )
            }
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "Read a task's log from Airflow's structured task logs: the exceptions it recorded (type, message, innermost frames) and its last lines. Defaults to the task's latest try.",
        annotations(title = "Get a task log", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<TaskLog>()
    )]
    async fn get_task_log(
        &self,
        Parameters(args): Parameters<LogArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(airflow) = self.airflow.as_deref() else {
            return Ok(not_connected());
        };
        let checked = check_key("dag_id", &args.dag_id)
            .and_then(|()| check_key("task_id", &args.task_id))
            .and_then(|()| check_run_id(&args.dag_run_id))
            .and_then(|()| check_limit(args.limit, 200, MAX_LOG_LINES));
        let limit = match checked {
            Ok(l) => l,
            Err(e) => return Ok(failure(e)),
        };
        let map_index = args.map_index.unwrap_or(-1).to_string();
        let run = [
            "dags",
            args.dag_id.as_str(),
            "dagRuns",
            args.dag_run_id.as_str(),
            "taskInstances",
            args.task_id.as_str(),
        ];
        let try_number = match args.try_number {
            Some(n) if n >= 1 => n,
            Some(n) => return Ok(failure(format!("try_number starts at 1, got {n}"))),
            None => {
                let mut path = run.to_vec();
                if args.map_index.is_some_and(|i| i >= 0) {
                    path.push(&map_index);
                }
                let instance: TaskInstance = match airflow.get(&path, &[]).await {
                    Ok(t) => t,
                    Err(e) => return Ok(failure(e)),
                };
                if instance.try_number < 1 {
                    return Ok(failure(format!(
                        "task {} of run {} has not run yet ({}): there is no log",
                        args.task_id,
                        args.dag_run_id,
                        state_word(&instance.state)
                    )));
                }
                instance.try_number
            }
        };
        let try_text = try_number.to_string();
        let mut path = run.to_vec();
        path.extend(["logs", try_text.as_str()]);
        let query = [
            ("full_content", "true".to_owned()),
            ("map_index", map_index),
        ];
        let content: Value = match airflow.get(&path, &query).await {
            Ok(c) => c,
            Err(e) => return Ok(failure(e)),
        };
        let records = match content.get("content") {
            Some(Value::Array(records)) => records.clone(),
            // Older log handlers answer the text itself; keep it, a line per record.
            Some(Value::String(text)) => text
                .lines()
                .map(|l| json!({"event": l, "level": null, "timestamp": null}))
                .collect(),
            _ => Vec::new(),
        };
        let log = TaskLog::from_records(
            (&args.dag_id, &args.dag_run_id, &args.task_id, try_number),
            &records,
            limit as usize,
        );
        let mut text = format!(
            "{} {} {} try {}: {} lines{}",
            log.dag_id,
            log.dag_run_id,
            log.task_id,
            log.try_number,
            log.total_lines,
            if log.truncated {
                format!(" (the last {} shown)", log.lines.len())
            } else {
                String::new()
            }
        );
        for error in &log.errors {
            text.push_str(&format!(
                "\nerror: {}: {}{}",
                error.exc_type,
                error.exc_value,
                error
                    .frames
                    .last()
                    .map(|f| format!(" (at {f})"))
                    .unwrap_or_default()
            ));
        }
        for line in &log.lines {
            text.push_str(&format!(
                "\n{} {} {}",
                line.timestamp.as_deref().unwrap_or("-"),
                line.level.as_deref().unwrap_or("-"),
                line.message
            ));
        }
        answer(&log, text)
    }

    #[tool(
        description = "List the DAG files Airflow could not import, with the exception and stack trace of each.",
        annotations(title = "Get DAG import errors", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<ImportErrors>()
    )]
    async fn get_import_errors(
        &self,
        Parameters(args): Parameters<ImportErrorArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(airflow) = self.airflow.as_deref() else {
            return Ok(not_connected());
        };
        let mut query = vec![("limit", "100".to_owned())];
        if let Some(filename) = args.filename.filter(|f| !f.is_empty()) {
            query.push(("filename_pattern", filename));
        }
        match airflow
            .get::<model::ImportErrorCollection>(&["importErrors"], &query)
            .await
        {
            Ok(listed) => {
                let errors: Vec<ImportError> = listed
                    .import_errors
                    .into_iter()
                    .map(ImportError::summarised)
                    .collect();
                let text = if errors.is_empty() {
                    "every DAG file imports".to_owned()
                } else {
                    errors
                        .iter()
                        .map(|e| format!("{}: {}", e.filename, e.error))
                        .collect::<Vec<_>>()
                        .join("\n")
                };
                answer(
                    &ImportErrors {
                        total: listed.total_entries,
                        import_errors: errors,
                    },
                    text,
                )
            }
            Err(e) => Ok(failure(e)),
        }
    }

    #[tool(
        description = "Trigger a new run of an Airflow DAG, optionally with a run configuration. Every trigger needs approval by the pipeline owners: the call first shows what would happen (whether the DAG is paused, its active runs), asks you to confirm where the client can, and becomes a proposal; it runs once approved.",
        annotations(title = "Trigger a DAG run (needs approval)", read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<Triggered>()
    )]
    async fn trigger_dag_run(
        &self,
        Parameters(args): Parameters<TriggerArgs>,
        Responses(responses): Responses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(airflow) = self.airflow.as_deref() else {
            return Ok(not_connected().into());
        };
        let checked = check_key("dag_id", &args.dag_id)
            .and_then(|()| args.dag_run_id.as_deref().map_or(Ok(()), check_run_id));
        if let Err(e) = checked {
            return Ok(failure(e).into());
        }
        let conf = Value::Object(args.conf.clone().unwrap_or_default());
        if let Some(proposal) = preview::approved(&ctx) {
            let body = json!({
                "logical_date": null,
                "dag_run_id": args.dag_run_id,
                "conf": conf,
                "note": provenance(&ctx, &proposal, args.note.as_deref()),
            });
            return match airflow
                .post::<DagRun>(&["dags", &args.dag_id, "dagRuns"], &body)
                .await
            {
                Ok(run) => {
                    let text = format!(
                        "triggered {} run {} [{}]",
                        run.dag_id, run.dag_run_id, run.state
                    );
                    answer(
                        &Triggered {
                            dag_run: run,
                            proposal,
                        },
                        text,
                    )
                    .map(Into::into)
                }
                Err(e) => Ok(failure(e).into()),
            };
        }
        let dag: DagDetails = match airflow.get(&["dags", &args.dag_id, "details"], &[]).await {
            Ok(d) => d,
            Err(e) => return Ok(failure(e).into()),
        };
        let mut summary = format!("Trigger a run of {}", args.dag_id);
        if let Some(id) = &args.dag_run_id {
            summary.push_str(&format!(" named {id}"));
        }
        if conf.as_object().is_some_and(|c| !c.is_empty()) {
            summary.push_str(&format!(" with conf {conf}"));
        }
        if dag.dag.is_paused {
            summary.push_str(": the DAG is paused, so the run waits until it is unpaused");
        } else {
            summary.push_str(&format!(
                ": the DAG is active, {} of at most {} runs active now",
                dag.active_runs_count.unwrap_or(0),
                dag.max_active_runs
                    .map_or_else(|| "?".to_owned(), |m| m.to_string())
            ));
        }
        if dag.dag.has_import_errors {
            summary.push_str("; warning: its DAG file has import errors");
        }
        let details = json!({
            "dag_id": args.dag_id,
            "dag_run_id": args.dag_run_id,
            "conf": conf,
            "is_paused": dag.dag.is_paused,
            "active_runs": dag.active_runs_count,
        });
        self.propose_or_refuse(
            &ctx,
            responses.as_ref(),
            "trigger_dag_run",
            &summary,
            details,
        )
        .await
    }

    #[tool(
        description = "Clear task instances of a DAG run so that they run again (by default its failed ones; optionally only some tasks, and their downstream tasks). Every clear needs approval by the pipeline owners: the call first runs Airflow's dry run, which lists exactly the task instances that would run again, asks you to confirm where the client can, and becomes a proposal with that list; it runs once approved.",
        annotations(title = "Clear task instances (needs approval)", read_only_hint = false, destructive_hint = true, idempotent_hint = false, open_world_hint = false),
        output_schema = schema_for_output::<Cleared>()
    )]
    async fn clear_task_instances(
        &self,
        Parameters(args): Parameters<ClearArgs>,
        Responses(responses): Responses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(airflow) = self.airflow.as_deref() else {
            return Ok(not_connected().into());
        };
        let mut checked =
            check_key("dag_id", &args.dag_id).and_then(|()| check_run_id(&args.dag_run_id));
        for task in args.task_ids.iter().flatten() {
            checked = checked.and_then(|()| check_key("task_id", task));
        }
        if let Err(e) = checked {
            return Ok(failure(e).into());
        }
        let only_failed = args.only_failed.unwrap_or(true);
        let body = |dry_run: bool, note: Option<String>| {
            let mut body = json!({
                "dry_run": dry_run,
                "dag_run_id": args.dag_run_id,
                "only_failed": only_failed,
                "include_downstream": args.include_downstream.unwrap_or(false),
                "reset_dag_runs": true,
            });
            if let Some(tasks) = &args.task_ids {
                body["task_ids"] = json!(tasks);
            }
            if let Some(note) = note {
                body["note"] = note.into();
            }
            body
        };
        let path = ["dags", args.dag_id.as_str(), "clearTaskInstances"];
        if let Some(proposal) = preview::approved(&ctx) {
            let note = provenance(&ctx, &proposal, args.note.as_deref());
            return match airflow
                .post::<model::TaskInstanceCollection>(&path, &body(false, Some(note)))
                .await
            {
                Ok(cleared) => {
                    let text = format!(
                        "cleared {} task instance(s) of {} run {}; they run again:\n{}",
                        cleared.task_instances.len(),
                        args.dag_id,
                        args.dag_run_id,
                        instances_text(&cleared.task_instances)
                    );
                    answer(
                        &Cleared {
                            task_instances: cleared.task_instances,
                            proposal,
                        },
                        text,
                    )
                    .map(Into::into)
                }
                Err(e) => Ok(failure(e).into()),
            };
        }
        // Airflow's own dry run: exactly what the approved clear will reset.
        let would = match airflow
            .post::<model::TaskInstanceCollection>(&path, &body(true, None))
            .await
        {
            Ok(w) => w.task_instances,
            Err(e) => return Ok(failure(e).into()),
        };
        if would.is_empty() {
            return Ok(failure(format!(
                "nothing to clear: no {}task instances of {} run {} match{}",
                if only_failed { "failed " } else { "" },
                args.dag_id,
                args.dag_run_id,
                if only_failed {
                    " (only_failed=false clears successful ones too)"
                } else {
                    ""
                }
            ))
            .into());
        }
        let summary = format!(
            "Clear {} task instance(s) of {} run {} so they run again: {}",
            would.len(),
            args.dag_id,
            args.dag_run_id,
            would
                .iter()
                .map(|t| format!(
                    "{} ({}, try {})",
                    t.task_id,
                    state_word(&t.state),
                    t.try_number
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let details = json!({
            "dag_id": args.dag_id,
            "dag_run_id": args.dag_run_id,
            "dry_run": would,
        });
        self.propose_or_refuse(
            &ctx,
            responses.as_ref(),
            "clear_task_instances",
            &summary,
            details,
        )
        .await
    }

    #[tool(
        description = "Pause an Airflow DAG: the scheduler starts no new runs of it until it is unpaused (runs in progress finish). Needs approval by the pipeline owners; the call becomes a proposal and runs once approved.",
        annotations(title = "Pause a DAG (needs approval)", read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<PauseChanged>()
    )]
    async fn pause_dag(
        &self,
        Parameters(args): Parameters<DagArgs>,
        Responses(responses): Responses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.set_paused(args, true, responses, ctx).await
    }

    #[tool(
        description = "Unpause an Airflow DAG: the scheduler starts its scheduled runs again, and queued runs start. Needs approval by the pipeline owners; the call becomes a proposal and runs once approved.",
        annotations(title = "Unpause a DAG (needs approval)", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<PauseChanged>()
    )]
    async fn unpause_dag(
        &self,
        Parameters(args): Parameters<DagArgs>,
        Responses(responses): Responses,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.set_paused(args, false, responses, ctx).await
    }
}

impl Airflow {
    /// A preview request gets the proposal's preview (after a confirmation where the client can
    /// ask); any other unapproved call changes nothing.
    async fn propose_or_refuse(
        &self,
        ctx: &RequestContext<RoleServer>,
        responses: Option<&rmcp::model::InputResponses>,
        tool: &str,
        summary: &str,
        details: Value,
    ) -> Result<CallToolResponse, ErrorData> {
        if preview::requested(ctx) {
            return preview::propose(ctx, responses, summary, details).await;
        }
        Ok(preview::unapproved(tool, summary).into())
    }

    async fn set_paused(
        &self,
        args: DagArgs,
        paused: bool,
        responses: Option<rmcp::model::InputResponses>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (tool, verb) = if paused {
            ("pause_dag", "Pause")
        } else {
            ("unpause_dag", "Unpause")
        };
        let Some(airflow) = self.airflow.as_deref() else {
            return Ok(not_connected().into());
        };
        if let Err(e) = check_key("dag_id", &args.dag_id) {
            return Ok(failure(e).into());
        }
        let path = ["dags", args.dag_id.as_str()];
        if let Some(proposal) = preview::approved(&ctx) {
            let query = [("update_mask", "is_paused".to_owned())];
            return match airflow
                .patch::<Dag>(&path, &query, &json!({ "is_paused": paused }))
                .await
            {
                Ok(dag) => {
                    let text = format!(
                        "{} is now {}",
                        dag.dag_id,
                        if dag.is_paused { "paused" } else { "active" }
                    );
                    answer(&PauseChanged { dag, proposal }, text).map(Into::into)
                }
                Err(e) => Ok(failure(e).into()),
            };
        }
        let dag: DagDetails = match airflow.get(&["dags", &args.dag_id, "details"], &[]).await {
            Ok(d) => d,
            Err(e) => return Ok(failure(e).into()),
        };
        if dag.dag.is_paused == paused {
            return Ok(failure(format!(
                "{} is already {}: nothing to do",
                args.dag_id,
                if paused { "paused" } else { "active" }
            ))
            .into());
        }
        let summary = if paused {
            format!(
                "{verb} {} (active now, {} run(s) active; schedule: {}): the scheduler starts no new runs until it is unpaused",
                args.dag_id,
                dag.active_runs_count.unwrap_or(0),
                dag.dag.timetable_description.as_deref().unwrap_or("none")
            )
        } else {
            format!(
                "{verb} {} (paused now; schedule: {}): its scheduled and queued runs start",
                args.dag_id,
                dag.dag.timetable_description.as_deref().unwrap_or("none")
            )
        };
        let details =
            json!({ "dag_id": args.dag_id, "is_paused": dag.dag.is_paused, "to": paused });
        self.propose_or_refuse(&ctx, responses.as_ref(), tool, &summary, details)
            .await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Airflow {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_they_reach_airflow() {
        assert!(check_key("dag_id", "demo_etl").is_ok());
        assert!(check_key("task_id", "group.task-1").is_ok());
        for bad in ["", "../etc", "a b", "x/y", "é"] {
            assert!(check_key("dag_id", bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_key("dag_id", &"a".repeat(251)).is_err());
        assert!(check_run_id("manual__2026-11-22T23:09:10.681726+00:00").is_ok());
        assert!(check_run_id(" ").is_err());
        assert!(check_run_id("a\nb").is_err());
        assert_eq!(check_limit(None, 20, 100), Ok(20));
        assert!(check_limit(Some(0), 20, 100).is_err());
        assert!(check_limit(Some(101), 20, 100).is_err());
    }
}
