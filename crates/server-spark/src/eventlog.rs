//! The embedded source: Spark event logs read directly from a folder, as Spark writes them
//! (`spark.eventLog.dir`): rolling logs (`eventlog_v2_<app>/events_<n>_<app>[.zstd]`, Spark's
//! default) and single files (`<app>`, `<app>.zstd`, `<app>.inprogress`). Each log is replayed into
//! the same model the History Server's REST API gives, and kept until the file changes.

use std::{
    collections::{BTreeMap, HashMap},
    io::Read,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use async_trait::async_trait;
use serde_json::Value;

use crate::model::{
    AppSummary, Application, Executor, Job, SourceError, SparkSource, SqlExecution, Stage, Task,
};

/// Longest event log read, uncompressed.
const MAX_LOG_BYTES: u64 = 512 * 1024 * 1024;

/// A folder of Spark event logs.
pub struct EventLogs {
    root: PathBuf,
    /// Replayed logs by path, with the modification time and size they were read at.
    cache: Mutex<HashMap<PathBuf, Cached>>,
}

/// A replayed log, and the modification time and size of its files when it was read.
type Cached = (SystemTime, u64, Arc<Replayed>);

/// One replayed log: the application and its tasks by stage attempt.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) app: Application,
    pub(crate) tasks: BTreeMap<(i64, i64), Vec<Task>>,
}

impl EventLogs {
    pub fn new(root: &Path) -> EventLogs {
        EventLogs {
            root: root.to_owned(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The logs in the folder: one path per application (a rolling log's folder, or a file).
    fn logs(&self) -> Result<Vec<PathBuf>, SourceError> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| SourceError::Unavailable(format!("read {}: {e}", self.root.display())))?;
        let mut logs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                !name.starts_with('.')
                    && (name.starts_with("eventlog_v2_") && p.is_dir()
                        || p.is_file() && !name.ends_with(".md") && !name.ends_with(".py"))
            })
            .collect();
        logs.sort();
        Ok(logs)
    }

    /// The replayed log at `path`, from the cache while the file is unchanged.
    fn replay(&self, path: &Path) -> Result<Arc<Replayed>, SourceError> {
        let files = log_files(path)?;
        let (modified, size) =
            files
                .iter()
                .try_fold((SystemTime::UNIX_EPOCH, 0u64), |(latest, total), file| {
                    let meta = std::fs::metadata(file).map_err(|e| {
                        SourceError::Unavailable(format!("{}: {e}", file.display()))
                    })?;
                    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    Ok::<_, SourceError>((latest.max(modified), total + meta.len()))
                })?;
        if let Some((at, len, replayed)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
            && *at == modified
            && *len == size
        {
            return Ok(replayed.clone());
        }
        let mut replay = Replay::default();
        for file in &files {
            for line in read_lines(file)? {
                if line.trim().is_empty() {
                    continue;
                }
                // A log still being written may end in half a line.
                if let Ok(event) = serde_json::from_str::<Value>(&line) {
                    replay.apply(&event);
                }
            }
        }
        let replayed = Arc::new(replay.finish(path)?);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.to_owned(), (modified, size, replayed.clone()));
        Ok(replayed)
    }

    pub(crate) fn find(&self, id: &str) -> Result<Arc<Replayed>, SourceError> {
        for path in self.logs()? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.contains(id) {
                let replayed = self.replay(&path)?;
                if replayed.app.summary.id == id {
                    return Ok(replayed);
                }
            }
        }
        Err(SourceError::NotFound(format!(
            "no application {id} in {}",
            self.root.display()
        )))
    }
}

/// The files of one log, in order: a rolling log's `events_<n>_*` parts by `n`, or the file.
fn log_files(path: &Path) -> Result<Vec<PathBuf>, SourceError> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut parts: Vec<(u64, PathBuf)> = std::fs::read_dir(path)
        .map_err(|e| SourceError::Unavailable(format!("read {}: {e}", path.display())))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name
                .strip_prefix("events_")?
                .split('_')
                .next()?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    parts.sort();
    if parts.is_empty() {
        return Err(SourceError::Invalid(format!(
            "{} holds no events_<n>_<app> files",
            path.display()
        )));
    }
    Ok(parts.into_iter().map(|(_, p)| p).collect())
}

/// The lines of one log file, decompressed by its extension.
fn read_lines(file: &Path) -> Result<Vec<String>, SourceError> {
    let name = file.to_string_lossy();
    let opened = std::fs::File::open(file)
        .map_err(|e| SourceError::Unavailable(format!("open {name}: {e}")))?;
    let mut text = String::new();
    let read = if name.ends_with(".zstd") || name.ends_with(".zst") {
        zstd::stream::read::Decoder::new(opened)
            .map_err(|e| SourceError::Invalid(format!("{name}: {e}")))?
            .take(MAX_LOG_BYTES)
            .read_to_string(&mut text)
    } else if [".lz4", ".lzf", ".snappy"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        return Err(SourceError::Invalid(format!(
            "{name} is compressed with a codec this reader does not take; write event logs with spark.eventLog.compression.codec=zstd (Spark's default) or uncompressed"
        )));
    } else {
        opened.take(MAX_LOG_BYTES).read_to_string(&mut text)
    };
    read.map_err(|e| SourceError::Invalid(format!("read {name}: {e}")))?;
    Ok(text.lines().map(str::to_owned).collect())
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn int(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn uint(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or(0)
}

/// The state of a replay.
#[derive(Default)]
struct Replay {
    app: Option<AppSummary>,
    spark_version: String,
    end: Option<i64>,
    jobs: BTreeMap<i64, Job>,
    stages: BTreeMap<(i64, i64), Stage>,
    /// Stage names and task counts from job starts, for stages never submitted.
    stage_names: HashMap<i64, (String, u64)>,
    tasks: BTreeMap<(i64, i64), Vec<Task>>,
    executors: BTreeMap<String, Executor>,
    sql: BTreeMap<i64, SqlExecution>,
    /// Which SQL execution started each job.
    job_sql: HashMap<i64, i64>,
}

impl Replay {
    fn apply(&mut self, e: &Value) {
        let event = e.get("Event").and_then(Value::as_str).unwrap_or_default();
        match event.rsplit('.').next().unwrap_or(event) {
            "SparkListenerLogStart" => self.spark_version = text(e, "Spark Version"),
            "SparkListenerApplicationStart" => {
                self.app = Some(AppSummary {
                    id: text(e, "App ID"),
                    name: text(e, "App Name"),
                    user: text(e, "User"),
                    status: "running".into(),
                    start_time_ms: int(e, "Timestamp"),
                    end_time_ms: None,
                    duration_ms: None,
                    spark_version: String::new(),
                    failed_jobs: 0,
                });
            }
            "SparkListenerApplicationEnd" => self.end = Some(int(e, "Timestamp")),
            "SparkListenerJobStart" => self.job_start(e),
            "SparkListenerJobEnd" => {
                if let Some(job) = self.jobs.get_mut(&int(e, "Job ID")) {
                    job.status = match e.pointer("/Job Result/Result").and_then(Value::as_str) {
                        Some("JobSucceeded") => "SUCCEEDED",
                        _ => "FAILED",
                    }
                    .into();
                }
            }
            "SparkListenerStageSubmitted" | "SparkListenerStageCompleted" => {
                self.stage(e, event.ends_with("Completed"));
            }
            "SparkListenerTaskEnd" => self.task_end(e),
            "SparkListenerExecutorAdded" => {
                let id = text(e, "Executor ID");
                let host = e
                    .pointer("/Executor Info/Host")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                self.executor(&id).host_port = host;
            }
            "SparkListenerBlockManagerAdded" => {
                let id = e
                    .pointer("/Block Manager ID/Executor ID")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let port = uint(e, "/Block Manager ID/Port");
                let executor = self.executor(&id);
                executor.max_memory_bytes = uint(e, "/Maximum Memory");
                if !executor.host_port.contains(':') && !executor.host_port.is_empty() {
                    executor.host_port = format!("{}:{port}", executor.host_port);
                }
            }
            "SparkListenerExecutorRemoved" => {
                let id = text(e, "Executor ID");
                let executor = self.executor(&id);
                executor.is_active = false;
                executor.remove_reason = Some(text(e, "Removed Reason"));
            }
            "SparkListenerSQLExecutionStart" => {
                let id = int(e, "executionId");
                self.sql.insert(
                    id,
                    SqlExecution {
                        id,
                        description: text(e, "description"),
                        status: "RUNNING".into(),
                        error_message: None,
                        failed_job_ids: Vec::new(),
                    },
                );
            }
            "SparkListenerSQLExecutionEnd" => {
                if let Some(sql) = self.sql.get_mut(&int(e, "executionId")) {
                    let error = text(e, "errorMessage");
                    sql.status = if error.is_empty() {
                        "COMPLETED"
                    } else {
                        "FAILED"
                    }
                    .into();
                    sql.error_message = (!error.is_empty()).then_some(error);
                }
            }
            _ => {}
        }
    }

    fn executor(&mut self, id: &str) -> &mut Executor {
        self.executors
            .entry(id.to_owned())
            .or_insert_with(|| Executor {
                id: id.to_owned(),
                host_port: String::new(),
                is_active: true,
                total_tasks: 0,
                failed_tasks: 0,
                max_memory_bytes: 0,
                remove_reason: None,
            })
    }

    fn job_start(&mut self, e: &Value) {
        let job_id = int(e, "Job ID");
        let infos = e
            .get("Stage Infos")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for info in &infos {
            self.stage_names.insert(
                int(info, "Stage ID"),
                (text(info, "Stage Name"), uint(info, "/Number of Tasks")),
            );
        }
        // The History Server names a job after its last stage.
        let last = infos.iter().max_by_key(|i| int(i, "Stage ID"));
        let name = last.map(|i| text(i, "Stage Name")).unwrap_or_default();
        let stage_ids = e
            .get("Stage IDs")
            .and_then(Value::as_array)
            .map(|ids| ids.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        if let Some(sql) = e
            .pointer("/Properties/spark.sql.execution.id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        {
            self.job_sql.insert(job_id, sql);
        }
        self.jobs.insert(
            job_id,
            Job {
                job_id,
                name,
                status: "RUNNING".into(),
                stage_ids,
                num_tasks: infos.iter().map(|i| uint(i, "/Number of Tasks")).sum(),
                num_failed_tasks: 0,
                num_failed_stages: 0,
            },
        );
    }

    fn stage(&mut self, e: &Value, completed: bool) {
        let Some(info) = e.get("Stage Info") else {
            return;
        };
        let key = (int(info, "Stage ID"), int(info, "Stage Attempt ID"));
        let stage = self.stages.entry(key).or_insert_with(|| {
            Stage::new(
                key.0,
                key.1,
                text(info, "Stage Name"),
                "ACTIVE",
                uint(info, "/Number of Tasks"),
            )
        });
        if completed {
            let failure = info.get("Failure Reason").and_then(Value::as_str);
            stage.status = if failure.is_some() {
                "FAILED"
            } else {
                "COMPLETE"
            }
            .into();
            stage.failure_reason = failure.map(str::to_owned);
        }
    }

    fn task_end(&mut self, e: &Value) {
        let key = (int(e, "Stage ID"), int(e, "Stage Attempt ID"));
        let info = e.get("Task Info").cloned().unwrap_or(Value::Null);
        let reason = e.get("Task End Reason").cloned().unwrap_or(Value::Null);
        let kind = text(&reason, "Reason");
        let status = match kind.as_str() {
            "Success" => "SUCCESS",
            "TaskKilled" => "KILLED",
            "Resubmitted" => "RESUBMITTED",
            _ => "FAILED",
        };
        let error_message = match kind.as_str() {
            "Success" => None,
            "ExceptionFailure" => Some({
                let full = text(&reason, "Full Stack Trace");
                if full.is_empty() {
                    format!(
                        "{}: {}",
                        text(&reason, "Class Name"),
                        text(&reason, "Description")
                    )
                } else {
                    full
                }
            }),
            "ExecutorLostFailure" => Some(format!(
                "ExecutorLostFailure (executor {} exited {}) Reason: {}",
                text(&reason, "Executor ID"),
                if reason.get("Exit Caused By App").and_then(Value::as_bool) == Some(true) {
                    "caused by one of the running tasks"
                } else {
                    "unrelated to the running tasks"
                },
                text(&reason, "Loss Reason")
            )),
            "FetchFailed" => Some(format!(
                "FetchFailed(shuffleId={}, mapIndex={}, reduceId={}, message={})",
                text(&reason, "Shuffle ID"),
                text(&reason, "Map Index"),
                text(&reason, "Reduce ID"),
                text(&reason, "Message")
            )),
            "TaskKilled" => Some(format!("TaskKilled ({})", text(&reason, "Kill Reason"))),
            "Resubmitted" => {
                Some("Resubmitted (the output of this task was lost with its executor)".into())
            }
            other => Some(
                [other.to_owned(), text(&reason, "Description")]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(": "),
            ),
        };
        let launch = int(&info, "Launch Time");
        let finish = int(&info, "Finish Time");
        let metrics = e.get("Task Metrics").cloned().unwrap_or(Value::Null);
        let shuffle_read = uint(&metrics, "/Shuffle Read Metrics/Remote Bytes Read")
            + uint(&metrics, "/Shuffle Read Metrics/Local Bytes Read");
        let task = Task {
            task_id: int(&info, "Task ID"),
            index: int(&info, "Index"),
            attempt: int(&info, "Attempt"),
            status: status.into(),
            executor_id: text(&info, "Executor ID"),
            host: text(&info, "Host"),
            duration_ms: (finish > 0 && launch > 0).then_some(finish - launch),
            error_message,
            shuffle_read_bytes: shuffle_read,
            memory_spilled_bytes: uint(&metrics, "/Memory Bytes Spilled"),
        };
        if let Some(stage) = self.stages.get_mut(&key) {
            match status {
                "SUCCESS" => stage.num_complete_tasks += 1,
                "FAILED" => stage.num_failed_tasks += 1,
                "KILLED" => stage.num_killed_tasks += 1,
                _ => {}
            }
            stage.executor_run_time_ms += uint(&metrics, "/Executor Run Time");
            stage.input_bytes += uint(&metrics, "/Input Metrics/Bytes Read");
            stage.shuffle_read_bytes += shuffle_read;
            stage.shuffle_write_bytes +=
                uint(&metrics, "/Shuffle Write Metrics/Shuffle Bytes Written");
            stage.memory_spilled_bytes += task.memory_spilled_bytes;
            stage.disk_spilled_bytes += uint(&metrics, "/Disk Bytes Spilled");
        }
        let executor = self.executor(&task.executor_id.clone());
        executor.total_tasks += 1;
        if status == "FAILED" {
            executor.failed_tasks += 1;
        }
        self.tasks.entry(key).or_default().push(task);
    }

    fn finish(mut self, path: &Path) -> Result<Replayed, SourceError> {
        let Some(mut summary) = self.app.take() else {
            return Err(SourceError::Invalid(format!(
                "{} has no SparkListenerApplicationStart event",
                path.display()
            )));
        };
        summary.spark_version = self.spark_version.clone();
        summary.end_time_ms = self.end;
        summary.duration_ms = self.end.map(|end| end - summary.start_time_ms);
        // Per job: failed tasks and stages of its stages; stages never run are skipped.
        for job in self.jobs.values_mut() {
            for stage_id in &job.stage_ids {
                let attempts: Vec<&Stage> = self
                    .stages
                    .values()
                    .filter(|s| s.stage_id == *stage_id)
                    .collect();
                job.num_failed_tasks += attempts.iter().map(|s| s.num_failed_tasks).sum::<u64>();
                job.num_failed_stages +=
                    attempts.iter().filter(|s| s.status == "FAILED").count() as u64;
            }
            if job.status == "FAILED"
                && let Some(sql) = self.job_sql.get(&job.job_id)
                && let Some(execution) = self.sql.get_mut(sql)
            {
                execution.failed_job_ids.push(job.job_id);
            }
        }
        let mut skipped = Vec::new();
        for job in self.jobs.values() {
            for stage_id in &job.stage_ids {
                if !self.stages.keys().any(|(id, _)| id == stage_id) && job.status != "RUNNING" {
                    let (name, tasks) = self.stage_names.get(stage_id).cloned().unwrap_or_default();
                    skipped.push((*stage_id, name, tasks));
                }
            }
        }
        for (stage_id, name, num_tasks) in skipped {
            self.stages.insert(
                (stage_id, 0),
                Stage::new(stage_id, 0, name, "SKIPPED", num_tasks),
            );
        }
        let mut app = Application {
            summary,
            jobs: self.jobs.into_values().rev().collect(),
            stages: self.stages.into_values().rev().collect(),
            executors: self.executors.into_values().collect(),
            sql: self.sql.into_values().rev().collect(),
        };
        app.settle_status();
        Ok(Replayed {
            app,
            tasks: self.tasks,
        })
    }
}

#[async_trait]
impl SparkSource for EventLogs {
    fn name(&self) -> &'static str {
        "event-logs"
    }

    async fn applications(&self) -> Result<Vec<AppSummary>, SourceError> {
        let mut apps = Vec::new();
        for path in self.logs()? {
            match self.replay(&path) {
                Ok(replayed) => apps.push(replayed.app.summary.clone()),
                Err(e) => tracing::warn!(log = %path.display(), error = %e, "skipped an event log"),
            }
        }
        apps.sort_by_key(|a| std::cmp::Reverse(a.start_time_ms));
        Ok(apps)
    }

    async fn application(&self, id: &str) -> Result<Application, SourceError> {
        Ok(self.find(id)?.app.clone())
    }

    async fn tasks(
        &self,
        id: &str,
        stage: i64,
        attempt: i64,
        status: Option<&str>,
    ) -> Result<Vec<Task>, SourceError> {
        let replayed = self.find(id)?;
        let tasks = replayed.tasks.get(&(stage, attempt)).ok_or_else(|| {
            SourceError::NotFound(format!(
                "application {id} has no stage {stage} attempt {attempt}"
            ))
        })?;
        Ok(tasks
            .iter()
            .filter(|t| status.is_none_or(|s| t.status.eq_ignore_ascii_case(s)))
            .cloned()
            .collect())
    }
}
