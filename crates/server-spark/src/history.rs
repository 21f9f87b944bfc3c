//! The Spark History Server's REST API (`/api/v1`) as a source: applications, jobs, stages with
//! their failure reasons, task lists, executors (removed ones included) and SQL executions.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;

use crate::model::{
    AppSummary, Application, Executor, Job, SourceError, SparkSource, SqlExecution, Stage, Task,
};

/// Applications listed at most.
const MAX_APPLICATIONS: usize = 200;
/// Job lookups in flight at once while listing applications.
const JOB_LOOKUPS: usize = 8;
/// Tasks read per stage attempt at most.
const MAX_TASKS: usize = 5000;

/// A History Server at `base` (`http://history:18080`).
pub struct HistoryServer {
    api: String,
    http: reqwest::Client,
}

impl HistoryServer {
    pub fn new(base: &str) -> anyhow::Result<HistoryServer> {
        let base = base.trim_end_matches('/');
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "the History Server URL must start with http:// or https://, not {base:?}"
        );
        Ok(HistoryServer {
            api: format!("{base}/api/v1"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    async fn get(&self, path: &str) -> Result<Value, SourceError> {
        let url = format!("{}{path}", self.api);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| SourceError::Unavailable(format!("GET {url}: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            let body = response.text().await.unwrap_or_default();
            return Err(SourceError::NotFound(
                body.lines()
                    .next()
                    .filter(|l| !l.is_empty())
                    .unwrap_or("not found")
                    .chars()
                    .take(300)
                    .collect(),
            ));
        }
        if !status.is_success() {
            return Err(SourceError::Unavailable(format!(
                "GET {url}: HTTP {status}"
            )));
        }
        response
            .json()
            .await
            .map_err(|e| SourceError::Invalid(format!("GET {url}: {e}")))
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, SourceError> {
        match self.get(path).await? {
            Value::Array(items) => Ok(items),
            other => Err(SourceError::Invalid(format!(
                "{path} answered {} instead of a list",
                kind(&other)
            ))),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "a list",
        _ => "a scalar",
    }
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn uint(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

/// An `ApplicationInfo`, by its latest attempt.
fn summary(app: &Value) -> AppSummary {
    let attempt = app
        .get("attempts")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or(Value::Null);
    let completed = attempt.get("completed").and_then(Value::as_bool) == Some(true);
    let end = attempt
        .get("endTimeEpoch")
        .and_then(Value::as_i64)
        .filter(|e| *e > 0 && completed);
    AppSummary {
        id: text(app, "id"),
        name: text(app, "name"),
        user: text(&attempt, "sparkUser"),
        status: if completed { "succeeded" } else { "running" }.into(),
        start_time_ms: int(&attempt, "startTimeEpoch"),
        end_time_ms: end,
        duration_ms: end.map(|_| int(&attempt, "duration")),
        spark_version: text(&attempt, "appSparkVersion"),
        failed_jobs: 0,
    }
}

fn ids(v: &Value, key: &str) -> Vec<i64> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

fn job(v: &Value) -> Job {
    Job {
        job_id: int(v, "jobId"),
        name: text(v, "name"),
        status: text(v, "status"),
        stage_ids: ids(v, "stageIds"),
        num_tasks: uint(v, "/numTasks"),
        num_failed_tasks: uint(v, "/numFailedTasks"),
        num_failed_stages: uint(v, "/numFailedStages"),
    }
}

fn stage(v: &Value) -> Stage {
    Stage {
        stage_id: int(v, "stageId"),
        attempt_id: int(v, "attemptId"),
        name: text(v, "name"),
        status: text(v, "status"),
        num_tasks: uint(v, "/numTasks"),
        num_complete_tasks: uint(v, "/numCompleteTasks"),
        num_failed_tasks: uint(v, "/numFailedTasks"),
        num_killed_tasks: uint(v, "/numKilledTasks"),
        failure_reason: v
            .get("failureReason")
            .and_then(Value::as_str)
            .map(str::to_owned),
        executor_run_time_ms: uint(v, "/executorRunTime"),
        input_bytes: uint(v, "/inputBytes"),
        shuffle_read_bytes: uint(v, "/shuffleReadBytes"),
        shuffle_write_bytes: uint(v, "/shuffleWriteBytes"),
        memory_spilled_bytes: uint(v, "/memoryBytesSpilled"),
        disk_spilled_bytes: uint(v, "/diskBytesSpilled"),
    }
}

fn task(v: &Value) -> Task {
    Task {
        task_id: int(v, "taskId"),
        index: int(v, "index"),
        attempt: int(v, "attempt"),
        status: text(v, "status"),
        executor_id: text(v, "executorId"),
        host: text(v, "host"),
        duration_ms: v.get("duration").and_then(Value::as_i64),
        error_message: v
            .get("errorMessage")
            .and_then(Value::as_str)
            .map(str::to_owned),
        shuffle_read_bytes: uint(v, "/taskMetrics/shuffleReadMetrics/remoteBytesRead")
            + uint(v, "/taskMetrics/shuffleReadMetrics/localBytesRead"),
        memory_spilled_bytes: uint(v, "/taskMetrics/memoryBytesSpilled"),
    }
}

fn executor(v: &Value) -> Executor {
    Executor {
        id: text(v, "id"),
        host_port: text(v, "hostPort"),
        is_active: v.get("isActive").and_then(Value::as_bool).unwrap_or(false),
        total_tasks: uint(v, "/totalTasks"),
        failed_tasks: uint(v, "/failedTasks"),
        max_memory_bytes: uint(v, "/maxMemory"),
        remove_reason: v
            .get("removeReason")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

fn sql(v: &Value) -> SqlExecution {
    SqlExecution {
        id: int(v, "id"),
        description: text(v, "description"),
        status: text(v, "status"),
        error_message: v
            .get("errorMessage")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        failed_job_ids: ids(v, "failedJobIds"),
    }
}

/// An application id as one path segment.
fn segment(id: &str) -> Result<&str, SourceError> {
    if !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(id)
    } else {
        Err(SourceError::NotFound(format!(
            "{id:?} is not a Spark application id (letters, digits, '-', '_' and '.')"
        )))
    }
}

#[async_trait]
impl SparkSource for HistoryServer {
    fn name(&self) -> &'static str {
        "history-server"
    }

    async fn applications(&self) -> Result<Vec<AppSummary>, SourceError> {
        let apps = self
            .list(&format!("/applications?limit={MAX_APPLICATIONS}"))
            .await?;
        // Whether a finished application failed is in its jobs: ask for them a few at a time.
        let mut summaries: Vec<AppSummary> = futures::stream::iter(apps.iter().map(summary))
            .map(|mut s| async move {
                if s.end_time_ms.is_some()
                    && let Ok(id) = segment(&s.id)
                {
                    let failed = self
                        .list(&format!("/applications/{id}/jobs?status=failed"))
                        .await
                        .map(|jobs| jobs.len())
                        .unwrap_or(0);
                    s.failed_jobs = failed as u32;
                    if failed > 0 {
                        s.status = "failed".into();
                    }
                }
                s
            })
            .buffered(JOB_LOOKUPS)
            .collect()
            .await;
        summaries.sort_by_key(|a| std::cmp::Reverse(a.start_time_ms));
        Ok(summaries)
    }

    async fn application(&self, id: &str) -> Result<Application, SourceError> {
        let id = segment(id)?;
        let base = format!("/applications/{id}");
        let info = self.get(&base).await?;
        let (jobs_path, stages_path, executors_path, sql_path) = (
            format!("{base}/jobs"),
            format!("{base}/stages"),
            format!("{base}/allexecutors"),
            format!("{base}/sql"),
        );
        let (jobs, stages, executors, sql_list) = tokio::try_join!(
            self.list(&jobs_path),
            self.list(&stages_path),
            self.list(&executors_path),
            async {
                // Applications without Spark SQL have no SQL tab.
                match self.list(&sql_path).await {
                    Err(SourceError::NotFound(_)) => Ok(Vec::new()),
                    other => other,
                }
            },
        )?;
        let mut app = Application {
            summary: summary(&info),
            jobs: jobs.iter().map(job).collect(),
            stages: stages.iter().map(stage).collect(),
            executors: executors.iter().map(executor).collect(),
            sql: sql_list.iter().map(sql).collect(),
        };
        app.settle_status();
        Ok(app)
    }

    async fn tasks(
        &self,
        id: &str,
        stage: i64,
        attempt: i64,
        status: Option<&str>,
    ) -> Result<Vec<Task>, SourceError> {
        let id = segment(id)?;
        let mut path =
            format!("/applications/{id}/stages/{stage}/{attempt}/taskList?length={MAX_TASKS}");
        if let Some(status) = status {
            path.push_str(&format!("&status={}", status.to_ascii_uppercase()));
        }
        Ok(self.list(&path).await?.iter().map(task).collect())
    }
}
