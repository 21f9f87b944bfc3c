//! What the Airflow tools answer: DAGs, runs, task instances, structured task logs and import
//! errors, read from the Airflow 3 REST API's JSON (unknown fields ignored, missing ones empty)
//! and kept to what an engineer or agent needs.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A DAG as `list_dags` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Dag {
    pub dag_id: String,
    #[serde(default)]
    pub is_paused: bool,
    #[serde(default, deserialize_with = "tag_names")]
    pub tags: Vec<String>,
    #[serde(default)]
    pub owners: Vec<String>,
    /// When it runs, in words ("Never, external triggers only", "At 06:00").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timetable_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The DAG file, relative to its bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_fileloc: Option<String>,
    #[serde(default)]
    pub has_import_errors: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_dagrun_run_after: Option<String>,
}

/// `GET /dags`.
#[derive(Debug, Deserialize)]
pub(crate) struct DagCollection {
    #[serde(default)]
    pub dags: Vec<Dag>,
    #[serde(default)]
    pub total_entries: u64,
}

/// `GET /dags/{dag_id}/details`: a DAG with what only the details carry.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DagDetails {
    #[serde(flatten)]
    pub dag: Dag,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_md: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_active_runs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_runs_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup: Option<bool>,
}

/// A task of a DAG.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DagTask {
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_name: Option<String>,
    #[serde(default)]
    pub downstream_task_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_rule: Option<String>,
}

/// `GET /dags/{dag_id}/tasks`.
#[derive(Debug, Deserialize)]
pub(crate) struct TaskCollection {
    #[serde(default)]
    pub tasks: Vec<DagTask>,
}

/// A DAG run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DagRun {
    pub dag_id: String,
    pub dag_run_id: String,
    /// `queued`, `running`, `success` or `failed`.
    #[serde(default)]
    pub state: String,
    /// `manual`, `scheduled`, `backfill` or `asset_triggered`.
    #[serde(default)]
    pub run_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logical_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggering_user_name: Option<String>,
    #[serde(default, skip_serializing_if = "is_empty_conf")]
    pub conf: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn is_empty_conf(conf: &Option<Value>) -> bool {
    match conf {
        None | Some(Value::Null) => true,
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// `GET /dags/{dag_id}/dagRuns`.
#[derive(Debug, Deserialize)]
pub(crate) struct DagRunCollection {
    #[serde(default)]
    pub dag_runs: Vec<DagRun>,
    #[serde(default)]
    pub total_entries: u64,
}

/// A task instance: one task in one run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TaskInstance {
    pub task_id: String,
    #[serde(default)]
    pub dag_id: String,
    #[serde(default)]
    pub dag_run_id: String,
    /// -1 unless the task is mapped.
    #[serde(default = "unmapped")]
    pub map_index: i64,
    /// `success`, `failed`, `running`, `queued`, `up_for_retry`, `upstream_failed`, `skipped`,
    /// … or none yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default)]
    pub try_number: i64,
    #[serde(default)]
    pub max_tries: i64,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_name: Option<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub hostname: Option<String>,
}

fn unmapped() -> i64 {
    -1
}

fn empty(text: &Option<String>) -> bool {
    text.as_deref().is_none_or(str::is_empty)
}

/// `GET …/taskInstances`, and what `clearTaskInstances` clears.
#[derive(Debug, Deserialize)]
pub(crate) struct TaskInstanceCollection {
    #[serde(default)]
    pub task_instances: Vec<TaskInstance>,
}

/// One record of a task's structured log.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LogLine {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logger: Option<String>,
    pub message: String,
}

/// An exception a task's log records (Airflow's `error_detail`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LogError {
    /// `ValueError`, `AirflowTaskTimeout`, …
    pub exc_type: String,
    pub exc_value: String,
    /// The innermost frames, last one last: `file:line in function`.
    pub frames: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// A task try's log, as `get_task_log` answers it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TaskLog {
    pub dag_id: String,
    pub dag_run_id: String,
    pub task_id: String,
    pub try_number: i64,
    /// The exceptions the log records, newest last.
    pub errors: Vec<LogError>,
    /// The log's records (Airflow's own bookkeeping lines left out), the last ones when cut.
    pub lines: Vec<LogLine>,
    /// Records in the whole log.
    pub total_lines: usize,
    /// Whether `lines` is only the end of the log.
    pub truncated: bool,
}

/// Frames of an exception kept at most.
const MAX_FRAMES: usize = 6;
/// Characters of one log message kept at most.
const MAX_MESSAGE: usize = 2000;

impl TaskLog {
    /// Reads Airflow's structured log records (`{"content": [{event, level, …}]}`), keeping the
    /// last `limit` lines and every recorded exception.
    pub(crate) fn from_records(
        (dag_id, dag_run_id, task_id, try_number): (&str, &str, &str, i64),
        records: &[Value],
        limit: usize,
    ) -> TaskLog {
        let text = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut lines = Vec::new();
        let mut errors = Vec::new();
        for record in records {
            let message = match record.get("event") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => continue,
            };
            // Airflow's log-source bookkeeping (`::group::`, the log file's path) is noise.
            if record.get("level").is_none() && record.get("timestamp").is_none() {
                continue;
            }
            if message.starts_with("::group::") || message == "::endgroup::" {
                continue;
            }
            for detail in record
                .get("error_detail")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                errors.push(LogError {
                    exc_type: text(detail, "exc_type").unwrap_or_else(|| "Exception".into()),
                    exc_value: text(detail, "exc_value").unwrap_or_default(),
                    frames: frames(detail),
                    timestamp: text(record, "timestamp"),
                });
            }
            lines.push(LogLine {
                timestamp: text(record, "timestamp"),
                level: text(record, "level"),
                logger: text(record, "logger"),
                message: message.chars().take(MAX_MESSAGE).collect(),
            });
        }
        let total_lines = lines.len();
        let truncated = total_lines > limit;
        if truncated {
            lines.drain(..total_lines - limit);
        }
        TaskLog {
            dag_id: dag_id.to_owned(),
            dag_run_id: dag_run_id.to_owned(),
            task_id: task_id.to_owned(),
            try_number,
            errors,
            lines,
            total_lines,
            truncated,
        }
    }
}

/// The innermost frames of an `error_detail`, as `file:line in name`.
fn frames(detail: &Value) -> Vec<String> {
    let all: Vec<String> = detail
        .get("frames")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            format!(
                "{}:{} in {}",
                f.get("filename").and_then(Value::as_str).unwrap_or("?"),
                f.get("lineno").and_then(Value::as_i64).unwrap_or(0),
                f.get("name").and_then(Value::as_str).unwrap_or("?")
            )
        })
        .collect();
    all[all.len().saturating_sub(MAX_FRAMES)..].to_vec()
}

/// A DAG file that does not import.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ImportError {
    #[serde(default)]
    pub filename: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The exception, the trace's last line (`ModuleNotFoundError: No module named 'x'`).
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub stack_trace: String,
}

/// `GET /importErrors`.
#[derive(Debug, Deserialize)]
pub(crate) struct ImportErrorCollection {
    #[serde(default)]
    pub import_errors: Vec<ImportError>,
    #[serde(default)]
    pub total_entries: u64,
}

impl ImportError {
    /// Fills `error` from the trace's last line.
    pub(crate) fn summarised(mut self) -> ImportError {
        self.error = self
            .stack_trace
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned();
        self
    }
}

/// Airflow's tags are objects (`{"name": "demo", "dag_id": …}`); keep the names.
fn tag_names<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let tags = Option::<Vec<Value>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(tags
        .into_iter()
        .filter_map(|t| match t {
            Value::String(s) => Some(s),
            Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    //! Against JSON recorded from a real Airflow 3.3.2 (`tests/fixtures/`).
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn dags_runs_and_task_instances_are_read() {
        let dags: DagCollection = serde_json::from_value(fixture("dags.json")).unwrap();
        assert_eq!(dags.total_entries, 1);
        let dag = &dags.dags[0];
        assert_eq!(dag.dag_id, "demo_etl");
        assert_eq!(dag.tags, ["demo"]);
        assert_eq!(
            dag.timetable_description.as_deref(),
            Some("Never, external triggers only")
        );
        let details: DagDetails = serde_json::from_value(fixture("dag_details.json")).unwrap();
        assert_eq!(details.max_active_runs, Some(16));
        assert_eq!(details.dag.dag_id, "demo_etl");
        let tasks: TaskCollection = serde_json::from_value(fixture("tasks.json")).unwrap();
        assert_eq!(tasks.tasks[0].downstream_task_ids, ["transform"]);
        assert_eq!(
            tasks.tasks[0].operator_name.as_deref(),
            Some("BashOperator")
        );
        let runs: DagRunCollection = serde_json::from_value(fixture("dag_runs.json")).unwrap();
        let run = &runs.dag_runs[0];
        assert_eq!(
            (run.state.as_str(), run.run_type.as_str()),
            ("failed", "manual")
        );
        assert_eq!(run.conf, Some(serde_json::json!({"fail": true})));
        let instances: TaskInstanceCollection =
            serde_json::from_value(fixture("task_instances.json")).unwrap();
        let states: Vec<_> = instances
            .task_instances
            .iter()
            .map(|t| (t.task_id.as_str(), t.state.as_deref(), t.try_number))
            .collect();
        assert_eq!(
            states,
            [
                ("extract", Some("success"), 1),
                ("transform", Some("failed"), 1)
            ]
        );
        let cleared: TaskInstanceCollection =
            serde_json::from_value(fixture("clear_dry_run.json")).unwrap();
        assert_eq!(cleared.task_instances[0].task_id, "transform");
    }

    #[test]
    fn a_structured_log_yields_its_exception_and_its_lines_without_bookkeeping() {
        let content = fixture("task_log.json");
        let records = content["content"].as_array().unwrap();
        let log = TaskLog::from_records(("demo_etl", "mcp_fail_1", "transform", 1), records, 200);
        assert_eq!(log.errors.len(), 1);
        let error = &log.errors[0];
        assert_eq!(error.exc_type, "ValueError");
        assert_eq!(
            error.exc_value,
            "transform failed: upstream schema changed (column 'amount' missing)"
        );
        assert_eq!(error.frames.len(), MAX_FRAMES);
        assert_eq!(
            error.frames.last().unwrap(),
            "/opt/airflow/dags/demo_etl.py:10 in transform"
        );
        assert!(log.lines.iter().all(|l| !l.message.starts_with("::")));
        assert!(
            log.lines
                .iter()
                .any(|l| l.message == "Task failed with exception")
        );
        assert!(!log.truncated);
        let tail = TaskLog::from_records(("d", "r", "t", 1), records, 2);
        assert!(tail.truncated);
        assert_eq!(tail.lines.len(), 2);
        assert_eq!(tail.total_lines, log.total_lines);
        assert_eq!(
            tail.errors.len(),
            1,
            "exceptions are kept whatever the limit"
        );
    }

    #[test]
    fn import_errors_are_summarised_by_their_exception() {
        let errors: ImportErrorCollection =
            serde_json::from_value(fixture("import_errors.json")).unwrap();
        let error = errors.import_errors[0].clone().summarised();
        assert_eq!(error.filename, "broken.py");
        assert_eq!(
            error.error,
            "ModuleNotFoundError: No module named 'not_a_module_xyz'"
        );
    }
}
