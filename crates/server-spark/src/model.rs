//! What the Spark server knows about an application, whichever source it came from (the History
//! Server's REST API or an event log): the application, its jobs, stages, failed tasks, executors
//! and SQL executions, in the History Server's vocabulary, and the `SparkSource` trait both
//! sources implement.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;

/// One application (its latest attempt).
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct AppSummary {
    pub id: String,
    pub name: String,
    /// The user it ran as.
    pub user: String,
    /// `running`, `succeeded` or `failed` (a finished application with a failed job).
    pub status: String,
    /// Milliseconds since the epoch.
    pub start_time_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    pub spark_version: String,
    /// Jobs that failed.
    pub failed_jobs: u32,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Job {
    pub job_id: i64,
    pub name: String,
    /// `SUCCEEDED`, `FAILED`, `RUNNING` or `UNKNOWN`.
    pub status: String,
    pub stage_ids: Vec<i64>,
    pub num_tasks: u64,
    pub num_failed_tasks: u64,
    pub num_failed_stages: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Stage {
    pub stage_id: i64,
    pub attempt_id: i64,
    pub name: String,
    /// `COMPLETE`, `FAILED`, `ACTIVE`, `PENDING` or `SKIPPED`.
    pub status: String,
    pub num_tasks: u64,
    pub num_complete_tasks: u64,
    pub num_failed_tasks: u64,
    pub num_killed_tasks: u64,
    /// Why the stage failed, as Spark says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub executor_run_time_ms: u64,
    pub input_bytes: u64,
    pub shuffle_read_bytes: u64,
    pub shuffle_write_bytes: u64,
    pub memory_spilled_bytes: u64,
    pub disk_spilled_bytes: u64,
}

impl Stage {
    /// A stage with no tasks counted yet.
    pub fn new(
        stage_id: i64,
        attempt_id: i64,
        name: String,
        status: &str,
        num_tasks: u64,
    ) -> Stage {
        Stage {
            stage_id,
            attempt_id,
            name,
            status: status.into(),
            num_tasks,
            num_complete_tasks: 0,
            num_failed_tasks: 0,
            num_killed_tasks: 0,
            failure_reason: None,
            executor_run_time_ms: 0,
            input_bytes: 0,
            shuffle_read_bytes: 0,
            shuffle_write_bytes: 0,
            memory_spilled_bytes: 0,
            disk_spilled_bytes: 0,
        }
    }

    /// Its failure reason, labelled with where it was recorded.
    pub fn failure_text(&self) -> Option<(String, String)> {
        let reason = self.failure_reason.clone()?;
        Some((
            format!("stage {}.{} failure reason", self.stage_id, self.attempt_id),
            reason,
        ))
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Task {
    pub task_id: i64,
    pub index: i64,
    pub attempt: i64,
    /// `SUCCESS`, `FAILED`, `KILLED` or `RUNNING`.
    pub status: String,
    pub executor_id: String,
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// The exception (class, message and stack) or loss reason of a task that did not succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub shuffle_read_bytes: u64,
    pub memory_spilled_bytes: u64,
}

impl Task {
    /// Its error, labelled with where it was recorded.
    pub fn failure_text(&self) -> Option<(String, String)> {
        let error = self.error_message.clone()?;
        Some((
            format!(
                "task {} (attempt {}) on executor {}",
                self.task_id, self.attempt, self.executor_id
            ),
            error,
        ))
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Executor {
    pub id: String,
    pub host_port: String,
    pub is_active: bool,
    pub total_tasks: u64,
    pub failed_tasks: u64,
    pub max_memory_bytes: u64,
    /// Why it went away (`Command exited with code 137`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remove_reason: Option<String>,
}

impl Executor {
    /// Why it went away, labelled.
    pub fn failure_text(&self) -> Option<(String, String)> {
        let reason = self.remove_reason.clone()?;
        Some((format!("executor {} removed", self.id), reason))
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct SqlExecution {
    pub id: i64,
    pub description: String,
    /// `COMPLETED`, `FAILED` or `RUNNING`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub failed_job_ids: Vec<i64>,
}

impl SqlExecution {
    /// Its error, labelled.
    pub fn failure_text(&self) -> Option<(String, String)> {
        let error = self.error_message.clone()?;
        Some((format!("SQL execution {}", self.id), error))
    }
}

/// Everything the tools show about one application.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Application {
    pub summary: AppSummary,
    pub jobs: Vec<Job>,
    pub stages: Vec<Stage>,
    pub executors: Vec<Executor>,
    pub sql: Vec<SqlExecution>,
}

impl Application {
    /// The application's status from its jobs: failed when any job failed.
    pub(crate) fn settle_status(&mut self) {
        let failed = self.jobs.iter().filter(|j| j.status == "FAILED").count();
        self.summary.failed_jobs = failed as u32;
        if self.summary.end_time_ms.is_some() {
            self.summary.status = if failed > 0 { "failed" } else { "succeeded" }.into();
        } else {
            self.summary.status = "running".into();
        }
    }
}

/// Why a source could not answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    NotFound(String),
    #[error("the Spark source is unavailable: {0}")]
    Unavailable(String),
    #[error("the Spark source answered something unreadable: {0}")]
    Invalid(String),
}

/// Where the server reads Spark applications from.
#[async_trait]
pub trait SparkSource: Send + Sync + 'static {
    /// For messages: `history-server` or `event-logs`.
    fn name(&self) -> &'static str;
    /// Every application, newest first.
    async fn applications(&self) -> Result<Vec<AppSummary>, SourceError>;
    /// One application with its jobs, stages, executors and SQL executions.
    async fn application(&self, id: &str) -> Result<Application, SourceError>;
    /// The tasks of one stage attempt (only those in `status`, e.g. `FAILED`, when given).
    async fn tasks(
        &self,
        id: &str,
        stage: i64,
        attempt: i64,
        status: Option<&str>,
    ) -> Result<Vec<Task>, SourceError>;
}
