//! The Spark MCP server (Pinterest's Spark MCP, for Switchboard): engineers and agents find
//! Spark applications, read their jobs, stages and tasks, and get a structured root-cause analysis
//! of a failure with the evidence quoted from Spark's own records. It reads the Spark History
//! Server's REST API ([`HistoryServer`]) or, as the embedded default, a folder of Spark event logs
//! ([`EventLogs`]; `switchboard up` ships logs of real failing pyspark jobs).

pub mod diagnose;
pub mod eventlog;
pub mod history;
pub mod model;
pub mod record;
pub mod samples;

use std::sync::Arc;

use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{common::schema_for_output, router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ServerConfig},
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use server_sdk::answer::{answer, failure};

pub use diagnose::{Category, Diagnosis, Evidence, Failing, diagnose};
pub use eventlog::EventLogs;
pub use history::HistoryServer;
pub use model::{
    AppSummary, Application, Executor, Job, SourceError, SparkSource, SqlExecution, Stage, Task,
};

/// The bundled manifest.
pub const MANIFEST: &str = include_str!("../switchboard.toml");

/// The Spark server over `source` as an HTTP router (`/mcp`, `/metrics`, `/healthz`,
/// `/readyz`), its tools governed by `governance` (made from this server's manifest).
pub fn http_router(
    source: Arc<dyn SparkSource>,
    governance: server_sdk::Governance,
    options: server_sdk::HttpOptions,
) -> Result<axum::Router, Vec<catalog::Problem>> {
    let router = governance.govern(Spark::tools())?;
    let info = server_sdk::server_info(governance.manifest());
    Ok(server_sdk::http_router(
        move || Spark::new(source.clone(), info.clone(), router.clone()),
        governance,
        options,
    ))
}

/// Stages `get_application` shows at most (failed ones first, then the longest running).
const MAX_STAGES: usize = 40;
/// Tasks `get_stage` lists at most.
const MAX_TASKS: usize = 20;
/// Characters of a task's error `get_stage` keeps.
const MAX_ERROR: usize = 2000;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListArgs {
    /// Only applications in this state: `running`, `succeeded` or `failed`.
    #[serde(default)]
    pub status: Option<String>,
    /// Only applications run by this user.
    #[serde(default)]
    pub user: Option<String>,
    /// Only applications whose name contains this text (any case).
    #[serde(default)]
    pub name: Option<String>,
    /// How many to return, newest first: 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AppArgs {
    /// The application id, as `list_applications` gives it (for example "application_1700000000000_0042").
    pub app_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StageArgs {
    pub app_id: String,
    pub stage_id: i64,
    /// The stage attempt (default: the latest).
    #[serde(default)]
    pub attempt: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    pub app_id: String,
    /// Words that must all appear in a line (any case), for example "OutOfMemoryError executor".
    pub query: String,
    /// How many lines to return, 1 to 100 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Applications {
    pub applications: Vec<AppSummary>,
}

/// A stage and the tasks worth reading.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StageDetail {
    pub stage: Stage,
    /// Task durations in ms over the finished tasks: min, median, max.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_durations_ms: Option<[i64; 3]>,
    /// Failed tasks first, then the slowest.
    pub tasks: Vec<Task>,
}

/// One matching line of an application's failure records.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LogMatch {
    /// Where it was recorded: `task 6 (attempt 0) on executor 1`, `stage 6.0 failure reason`.
    pub source: String,
    pub line: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LogMatches {
    pub matches: Vec<LogMatch>,
    /// Lines searched.
    pub searched: usize,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RecordArgs {
    pub app_id: String,
    /// What the engineer found or did beyond the diagnosis (the fix, the ticket, the owner).
    #[serde(default)]
    pub note: Option<String>,
}

/// A recorded root-cause analysis.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Recorded {
    /// The record's file name among the Knowledge server's records (`<app>.md`).
    pub file: String,
    pub title: String,
    pub category: Category,
}

/// Characters of a note kept at most.
const MAX_NOTE: usize = 4000;

/// The server handler; cheap to clone.
#[derive(Clone)]
pub struct Spark {
    source: Arc<dyn SparkSource>,
    info: ServerConfig,
    tool_router: ToolRouter<Spark>,
    /// Where `record_rca` writes, when the server has a Knowledge records folder.
    records: Option<std::path::PathBuf>,
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}… (cut)", text.chars().take(max).collect::<String>())
    }
}

/// Every failure text of an application, with where it was recorded: failed stages and their
/// failed tasks, lost executors, failed SQL executions.
async fn failure_texts(
    source: &dyn SparkSource,
    app: &Application,
) -> Result<Vec<(String, String)>, SourceError> {
    let mut texts = Vec::new();
    for stage in app.stages.iter().filter(|s| s.status == "FAILED") {
        texts.extend(stage.failure_text());
        let failed = source
            .tasks(
                &app.summary.id,
                stage.stage_id,
                stage.attempt_id,
                Some("FAILED"),
            )
            .await?;
        texts.extend(failed.iter().filter_map(|t| t.failure_text()));
    }
    texts.extend(app.executors.iter().filter_map(|e| e.failure_text()));
    texts.extend(app.sql.iter().filter_map(|s| s.failure_text()));
    Ok(texts)
}

#[tool_router]
impl Spark {
    pub fn new(
        source: Arc<dyn SparkSource>,
        info: ServerConfig,
        tool_router: ToolRouter<Spark>,
    ) -> Spark {
        Spark {
            source,
            info,
            tool_router,
            records: None,
        }
    }

    /// Lets `record_rca` write root-cause analyses into `dir` (a Knowledge server's records
    /// folder, or a folder below it).
    pub fn with_records(mut self, dir: Option<std::path::PathBuf>) -> Spark {
        self.records = dir;
        self
    }

    /// The ungoverned tool router, to be wrapped by the SDK.
    pub fn tools() -> ToolRouter<Spark> {
        Self::tool_router()
    }

    #[tool(
        description = "List Spark applications, newest first: recent ones, failed ones, or those of a user or with a name.",
        annotations(title = "List Spark applications", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Applications>()
    )]
    async fn list_applications(
        &self,
        Parameters(args): Parameters<ListArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = args.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Ok(failure(format!(
                "limit must be between 1 and 100, got {limit}"
            )));
        }
        if let Some(status) = &args.status
            && !["running", "succeeded", "failed"].contains(&status.as_str())
        {
            return Ok(failure(format!(
                "status is running, succeeded or failed, not {status:?}"
            )));
        }
        let apps = match self.source.applications().await {
            Ok(apps) => apps,
            Err(e) => return Ok(failure(e)),
        };
        let name = args.name.as_deref().map(str::to_lowercase);
        let applications: Vec<AppSummary> = apps
            .into_iter()
            .filter(|a| args.status.as_ref().is_none_or(|s| &a.status == s))
            .filter(|a| args.user.as_ref().is_none_or(|u| &a.user == u))
            .filter(|a| {
                name.as_ref()
                    .is_none_or(|n| a.name.to_lowercase().contains(n))
            })
            .take(limit as usize)
            .collect();
        let text = if applications.is_empty() {
            "no applications match".to_owned()
        } else {
            applications
                .iter()
                .map(|a| {
                    format!(
                        "{} {} [{}] by {}{}",
                        a.id,
                        a.name,
                        a.status,
                        a.user,
                        a.duration_ms
                            .map(|d| format!(", {} s", d / 1000))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        answer(&Applications { applications }, text)
    }

    #[tool(
        description = "Show a Spark application: its status, jobs, stages (failed ones first), executors and SQL executions.",
        annotations(title = "Get a Spark application", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Application>()
    )]
    async fn get_application(
        &self,
        Parameters(args): Parameters<AppArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mut app = match self.source.application(&args.app_id).await {
            Ok(app) => app,
            Err(e) => return Ok(failure(e)),
        };
        app.stages.sort_by(|a, b| {
            (b.status == "FAILED", b.executor_run_time_ms)
                .cmp(&(a.status == "FAILED", a.executor_run_time_ms))
        });
        app.stages.truncate(MAX_STAGES);
        for stage in &mut app.stages {
            if let Some(reason) = &mut stage.failure_reason {
                *reason = cut(reason, MAX_ERROR);
            }
        }
        let s = &app.summary;
        let mut text = format!(
            "{} {} [{}] by {}, Spark {}\njobs: {} ({} failed)",
            s.id,
            s.name,
            s.status,
            s.user,
            s.spark_version,
            app.jobs.len(),
            s.failed_jobs
        );
        for job in app.jobs.iter().filter(|j| j.status == "FAILED") {
            text.push_str(&format!(
                "\nfailed job {} ({}): stages {:?}, {} failed tasks",
                job.job_id, job.name, job.stage_ids, job.num_failed_tasks
            ));
        }
        for stage in app.stages.iter().filter(|s| s.status == "FAILED") {
            let reason = stage.failure_reason.as_deref().unwrap_or_default();
            text.push_str(&format!(
                "\nfailed stage {}.{} ({}): {}",
                stage.stage_id,
                stage.attempt_id,
                stage.name,
                cut(reason.lines().next().unwrap_or_default(), 300)
            ));
        }
        answer(&app, text)
    }

    #[tool(
        description = "Show one stage of a Spark application: its metrics, task duration spread, failed tasks with their errors, and the slowest tasks.",
        annotations(title = "Get a Spark stage", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<StageDetail>()
    )]
    async fn get_stage(
        &self,
        Parameters(args): Parameters<StageArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let app = match self.source.application(&args.app_id).await {
            Ok(app) => app,
            Err(e) => return Ok(failure(e)),
        };
        let stage = app
            .stages
            .iter()
            .filter(|s| s.stage_id == args.stage_id)
            .filter(|s| args.attempt.is_none_or(|a| s.attempt_id == a))
            .max_by_key(|s| s.attempt_id)
            .cloned();
        let Some(mut stage) = stage else {
            return Ok(failure(format!(
                "application {} has no stage {}{}",
                args.app_id,
                args.stage_id,
                args.attempt
                    .map(|a| format!(" attempt {a}"))
                    .unwrap_or_default()
            )));
        };
        let mut tasks = match self
            .source
            .tasks(&args.app_id, stage.stage_id, stage.attempt_id, None)
            .await
        {
            Ok(tasks) => tasks,
            Err(SourceError::NotFound(_)) => Vec::new(),
            Err(e) => return Ok(failure(e)),
        };
        let mut durations: Vec<i64> = tasks.iter().filter_map(|t| t.duration_ms).collect();
        durations.sort_unstable();
        let task_durations_ms = (!durations.is_empty()).then(|| {
            [
                durations[0],
                durations[durations.len() / 2],
                durations[durations.len() - 1],
            ]
        });
        tasks.sort_by(|a, b| {
            (b.status == "FAILED", b.duration_ms).cmp(&(a.status == "FAILED", a.duration_ms))
        });
        tasks.truncate(MAX_TASKS);
        for task in &mut tasks {
            if let Some(error) = &mut task.error_message {
                *error = cut(error, MAX_ERROR);
            }
        }
        if let Some(reason) = &mut stage.failure_reason {
            *reason = cut(reason, MAX_ERROR);
        }
        let mut text = format!(
            "stage {}.{} ({}) [{}]: {} tasks, {} failed, {} killed",
            stage.stage_id,
            stage.attempt_id,
            stage.name,
            stage.status,
            stage.num_tasks,
            stage.num_failed_tasks,
            stage.num_killed_tasks
        );
        if let Some([min, median, max]) = task_durations_ms {
            text.push_str(&format!(
                "\ntask durations: min {min} ms, median {median} ms, max {max} ms"
            ));
        }
        for task in tasks.iter().filter(|t| t.status == "FAILED") {
            let error = task.error_message.as_deref().unwrap_or_default();
            text.push_str(&format!(
                "\nfailed task {} (attempt {}) on executor {}: {}",
                task.task_id,
                task.attempt,
                task.executor_id,
                cut(error.lines().next().unwrap_or_default(), 300)
            ));
        }
        answer(
            &StageDetail {
                stage,
                task_durations_ms,
                tasks,
            },
            text,
        )
    }

    #[tool(
        description = "Diagnose why a Spark application failed: a structured root-cause analysis with a category (out of memory, shuffle fetch failure, executor lost, bad data, ANSI/SQL error, user code exception, skew), the failing job, stage and task, evidence lines quoted from Spark's records, and next steps.",
        annotations(title = "Diagnose a Spark failure", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Diagnosis>()
    )]
    async fn diagnose_failure(
        &self,
        Parameters(args): Parameters<AppArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let diagnosis = match diagnose(self.source.as_ref(), &args.app_id).await {
            Ok(d) => d,
            Err(e) => return Ok(failure(e)),
        };
        let mut text = format!(
            "{}\ncategory: {}",
            diagnosis.summary,
            diagnosis.category.as_str()
        );
        if !diagnosis.evidence.is_empty() {
            text.push_str("\nevidence:");
            for e in &diagnosis.evidence {
                text.push_str(&format!("\n  [{}] {}", e.source, e.line));
            }
        }
        for note in &diagnosis.contributing {
            text.push_str(&format!("\nalso: {note}"));
        }
        if !diagnosis.next_steps.is_empty() {
            text.push_str("\nnext steps:");
            for step in &diagnosis.next_steps {
                text.push_str(&format!("\n  - {step}"));
            }
        }
        answer(&diagnosis, text)
    }

    #[tool(
        description = "Search a Spark application's failure records (failed stages and tasks, lost executors, failed SQL) for lines containing all the given words.",
        annotations(title = "Search Spark logs", read_only_hint = true, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<LogMatches>()
    )]
    async fn search_logs(
        &self,
        Parameters(args): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let limit = args.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return Ok(failure(format!(
                "limit must be between 1 and 100, got {limit}"
            )));
        }
        let words: Vec<String> = args
            .query
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        if words.is_empty() {
            return Ok(failure("the query holds no words to look for"));
        }
        let app = match self.source.application(&args.app_id).await {
            Ok(app) => app,
            Err(e) => return Ok(failure(e)),
        };
        let texts = match failure_texts(self.source.as_ref(), &app).await {
            Ok(texts) => texts,
            Err(e) => return Ok(failure(e)),
        };
        let mut searched = 0;
        let mut matches = Vec::new();
        for (source, text) in &texts {
            for line in text.lines() {
                searched += 1;
                let lower = line.to_lowercase();
                if words.iter().all(|w| lower.contains(w.as_str()))
                    && matches.len() < limit as usize
                {
                    matches.push(LogMatch {
                        source: source.clone(),
                        line: cut(line.trim(), 500),
                    });
                }
            }
        }
        let text = if matches.is_empty() {
            format!("no line of {searched} matches {:?}", args.query)
        } else {
            matches
                .iter()
                .map(|m| format!("[{}] {}", m.source, m.line))
                .collect::<Vec<_>>()
                .join("\n")
        };
        answer(&LogMatches { matches, searched }, text)
    }

    #[tool(
        description = "Record a Spark application's root-cause analysis in the Knowledge server, so the next engineer who meets a similar failure finds it with search_docs: the diagnosis (category, failing job/stage/task, evidence, next steps) plus your note on the fix.",
        annotations(title = "Record a root-cause analysis", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = false),
        output_schema = schema_for_output::<Recorded>()
    )]
    async fn record_rca(
        &self,
        Parameters(args): Parameters<RecordArgs>,
        ctx: rmcp::service::RequestContext<rmcp::RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(dir) = &self.records else {
            return Ok(failure(
                "this Spark server has no Knowledge records folder to write to (switchboard server spark --rca-dir)",
            ));
        };
        if args
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTE)
        {
            return Ok(failure(format!(
                "the note is longer than {MAX_NOTE} characters"
            )));
        }
        let diagnosis = match diagnose(self.source.as_ref(), &args.app_id).await {
            Ok(d) => d,
            Err(e) => return Ok(failure(e)),
        };
        if diagnosis.category == Category::NoFailure {
            return Ok(failure(format!(
                "{} did not fail: there is no root cause to record",
                args.app_id
            )));
        }
        let by = server_sdk::caller_of(&ctx)
            .map(|c| c.user)
            .unwrap_or_else(|| "anonymous".into());
        let (file, text) = record::markdown(&diagnosis, args.note.as_deref(), &by);
        let title = record::title(&diagnosis);
        let written = tokio::task::spawn_blocking({
            let (dir, file) = (dir.clone(), file.clone());
            move || record::write(&dir, &file, &text)
        })
        .await
        .map_err(|e| ErrorData::internal_error(format!("write the record: {e}"), None))?;
        if let Err(e) = written {
            return Ok(failure(format!("could not write the record: {e}")));
        }
        answer(
            &Recorded {
                file: file.clone(),
                title: title.clone(),
                category: diagnosis.category,
            },
            format!(
                "recorded \"{title}\" ({file}) in the Knowledge server's records; search_docs finds it within seconds"
            ),
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Spark {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }
}
