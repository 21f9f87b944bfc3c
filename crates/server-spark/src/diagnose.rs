//! Root-cause analysis of a failed Spark application, by rules over what Spark itself recorded:
//! the first failed job, its failed stage and tasks, lost executors and SQL errors. The result
//! names a category (out of memory, shuffle fetch failure, executor lost, bad data, ANSI/SQL error,
//! user code exception, skew), the failing job/stage/task, the log lines that show it (quoted as
//! Spark wrote them) and next steps for that category.

use schemars::JsonSchema;
use serde::Serialize;

use crate::model::{Application, SourceError, SparkSource, Task};

/// What kind of failure it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    OutOfMemory,
    ShuffleFetchFailure,
    ExecutorLost,
    BadData,
    AnsiSqlError,
    UserCodeException,
    Skew,
    Unknown,
    /// Nothing failed.
    NoFailure,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::OutOfMemory => "out_of_memory",
            Category::ShuffleFetchFailure => "shuffle_fetch_failure",
            Category::ExecutorLost => "executor_lost",
            Category::BadData => "bad_data",
            Category::AnsiSqlError => "ansi_sql_error",
            Category::UserCodeException => "user_code_exception",
            Category::Skew => "skew",
            Category::Unknown => "unknown",
            Category::NoFailure => "no_failure",
        }
    }
}

/// The rules, strongest signal first: the first category with a pattern in any failure text wins.
const RULES: &[(Category, &[&str])] = &[
    (
        Category::OutOfMemory,
        &[
            "OutOfMemoryError",
            "Java heap space",
            "GC overhead limit exceeded",
            "exceeding memory limits",
            "OOMKilled",
            "Command exited with code 52",
            "exit code 52",
            "Unable to acquire",
        ],
    ),
    (
        Category::ShuffleFetchFailure,
        &[
            "FetchFailed",
            "MetadataFetchFailedException",
            "Missing an output location for shuffle",
        ],
    ),
    (
        Category::ExecutorLost,
        &[
            "ExecutorLostFailure",
            "Executor heartbeat timed out",
            "Lost executor",
            "Command exited with code",
        ],
    ),
    (
        Category::BadData,
        &[
            "MALFORMED_RECORD_IN_PARSING",
            "Malformed records are detected",
            "[CAST_INVALID_INPUT]",
            "NumberFormatException",
            "JsonParseException",
            "JsonEOFException",
            "UnicodeDecodeError",
            "[FAILED_READ_FILE",
            "CANNOT_PARSE",
        ],
    ),
    (
        Category::AnsiSqlError,
        &[
            "[DIVIDE_BY_ZERO]",
            "[ARITHMETIC_OVERFLOW]",
            "[CAST_OVERFLOW]",
            "[NUMERIC_VALUE_OUT_OF_RANGE]",
            "[INVALID_ARRAY_INDEX",
            "SparkArithmeticException",
            "SparkDateTimeException",
            "SQLSTATE: 22",
        ],
    ),
    (
        Category::UserCodeException,
        &[
            "[PYTHON_EXCEPTION]",
            "PythonException",
            "Traceback (most recent call last)",
            "Exception",
            "Error:",
        ],
    ),
];

/// Where a failure happened.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Failing {
    pub job_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_attempt: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_attempt: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<String>,
}

/// One line of a log that shows the failure, and where it was written.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Evidence {
    /// `task 6 (attempt 0) on executor driver`, `stage 6.0 failure reason`, `executor 1 removed`.
    pub source: String,
    pub line: String,
}

/// A root-cause analysis.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct Diagnosis {
    pub application: String,
    pub name: String,
    pub status: String,
    pub category: Category,
    /// One sentence: what failed and why.
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<Failing>,
    /// Lines quoted from Spark's own records.
    pub evidence: Vec<Evidence>,
    /// What else was wrong (skew, spills, lost executors) beside the cause.
    pub contributing: Vec<String>,
    pub next_steps: Vec<String>,
}

/// Evidence lines kept at most.
const MAX_EVIDENCE: usize = 8;
/// Characters of one evidence line kept at most.
const MAX_LINE: usize = 400;

/// Diagnoses application `id` from `source`.
pub async fn diagnose(source: &dyn SparkSource, id: &str) -> Result<Diagnosis, SourceError> {
    let app = source.application(id).await?;
    // The first job that failed, and in it the last stage attempt that failed.
    let mut failed_jobs: Vec<_> = app.jobs.iter().filter(|j| j.status == "FAILED").collect();
    failed_jobs.sort_by_key(|j| j.job_id);
    let Some(job) = failed_jobs.first() else {
        return Ok(no_failure(&app, source).await);
    };
    let stage = app
        .stages
        .iter()
        .filter(|s| job.stage_ids.contains(&s.stage_id) && s.status == "FAILED")
        .max_by_key(|s| (s.attempt_id, s.stage_id));
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut failing = Failing {
        job_id: job.job_id,
        stage_id: None,
        stage_attempt: None,
        stage_name: None,
        task_id: None,
        task_attempt: None,
        executor_id: None,
    };
    let mut all_tasks: Vec<Task> = Vec::new();
    if let Some(stage) = stage {
        failing.stage_id = Some(stage.stage_id);
        failing.stage_attempt = Some(stage.attempt_id);
        failing.stage_name = Some(stage.name.clone());
        all_tasks = source
            .tasks(id, stage.stage_id, stage.attempt_id, None)
            .await
            .unwrap_or_default();
        let mut failed: Vec<&Task> = all_tasks.iter().filter(|t| t.status == "FAILED").collect();
        failed.sort_by_key(|t| t.task_id);
        if let Some(first) = failed.first() {
            failing.task_id = Some(first.task_id);
            failing.task_attempt = Some(first.attempt);
            failing.executor_id = Some(first.executor_id.clone());
        }
        texts.extend(failed.iter().filter_map(|t| t.failure_text()));
        texts.extend(stage.failure_text());
    }
    texts.extend(app.executors.iter().filter_map(|e| e.failure_text()));
    texts.extend(
        app.sql
            .iter()
            .filter(|s| s.failed_job_ids.contains(&job.job_id))
            .filter_map(|s| s.failure_text()),
    );

    let (category, pattern) = classify(&texts);
    let evidence = evidence(&texts, pattern);
    let contributing = contributing(&app, &all_tasks, stage.map(|s| s.stage_id));
    let cause = evidence
        .iter()
        .map(|e| e.line.as_str())
        .find(|l| exception_line(l))
        .or_else(|| evidence.first().map(|e| e.line.as_str()))
        .unwrap_or("no failure text was recorded")
        .to_owned();
    let place = match (failing.stage_id, failing.task_id) {
        (Some(s), Some(t)) => format!(" in stage {s}, task {t}"),
        (Some(s), None) => format!(" in stage {s}"),
        _ => String::new(),
    };
    let summary = format!(
        "Job {}{place} failed ({}): {}",
        job.job_id,
        category.as_str().replace('_', " "),
        truncate(&cause, 300)
    );
    let next_steps = next_steps(category, &texts, failing.executor_id.as_deref());
    Ok(Diagnosis {
        application: app.summary.id.clone(),
        name: app.summary.name.clone(),
        status: app.summary.status.clone(),
        category,
        summary,
        failing: Some(failing),
        evidence,
        contributing,
        next_steps,
    })
}

/// An application without a failed job: skew in its slowest stage, if any, else nothing.
async fn no_failure(app: &Application, source: &dyn SparkSource) -> Diagnosis {
    let slowest = app
        .stages
        .iter()
        .filter(|s| s.status == "COMPLETE")
        .max_by_key(|s| s.executor_run_time_ms);
    let mut contributing = Vec::new();
    if let Some(stage) = slowest {
        let tasks = source
            .tasks(&app.summary.id, stage.stage_id, stage.attempt_id, None)
            .await
            .unwrap_or_default();
        contributing = contributing_of_tasks(&tasks, stage.stage_id);
    }
    let (category, summary) = if contributing.is_empty() {
        (
            Category::NoFailure,
            format!(
                "No job of {} failed ({} so far)",
                app.summary.id, app.summary.status
            ),
        )
    } else {
        (
            Category::Skew,
            format!(
                "No job of {} failed, but its slowest stage is skewed: {}",
                app.summary.id, contributing[0]
            ),
        )
    };
    Diagnosis {
        application: app.summary.id.clone(),
        name: app.summary.name.clone(),
        status: app.summary.status.clone(),
        category,
        summary,
        failing: None,
        evidence: Vec::new(),
        next_steps: next_steps(category, &[], None),
        contributing,
    }
}

/// The first rule with a pattern in any text, and the pattern.
fn classify(texts: &[(String, String)]) -> (Category, Option<&'static str>) {
    for (category, patterns) in RULES {
        for pattern in *patterns {
            if texts.iter().any(|(_, text)| text.contains(pattern)) {
                return (*category, Some(pattern));
            }
        }
    }
    (Category::Unknown, None)
}

/// Whether `line` reads like an exception: `ValueError: ...`, `java.lang.OutOfMemoryError: ...`,
/// `[DIVIDE_BY_ZERO] ...`.
fn exception_line(line: &str) -> bool {
    let line = line.trim_start();
    if line.starts_with('[') && line.contains(']') {
        return true;
    }
    let head = line.split(':').next().unwrap_or_default();
    !head.contains(' ')
        && (head.ends_with("Error") || head.ends_with("Exception") || head.ends_with("Failure"))
        && line.len() > head.len()
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

/// The lines that show the failure: those with the deciding pattern, exception lines, and the
/// last frame of a Python traceback (the user's code); stack frames of the JVM are left out.
fn evidence(texts: &[(String, String)], pattern: Option<&str>) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = Vec::new();
    let push = |source: &str, line: &str, out: &mut Vec<Evidence>| {
        let line = truncate(line.trim(), MAX_LINE);
        if !line.is_empty() && !out.iter().any(|e| e.line == line) && out.len() < MAX_EVIDENCE {
            out.push(Evidence {
                source: source.to_owned(),
                line,
            });
        }
    };
    for (source, text) in texts {
        let lines: Vec<&str> = text.lines().collect();
        let last_frame = lines
            .iter()
            .rposition(|l| l.trim_start().starts_with("File \"") && l.contains(", line "));
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("at ") || trimmed.starts_with("...") {
                continue;
            }
            let deciding = pattern.is_some_and(|p| line.contains(p));
            if deciding || exception_line(line) || Some(i) == last_frame {
                push(source, line, &mut out);
                // The code line under the user's frame.
                if Some(i) == last_frame
                    && let Some(code) = lines.get(i + 1)
                {
                    push(source, code, &mut out);
                }
            }
        }
    }
    out
}

/// Skew and spills in the failing stage, and executors that were lost.
fn contributing(app: &Application, tasks: &[Task], stage: Option<i64>) -> Vec<String> {
    let mut notes = stage
        .map(|s| contributing_of_tasks(tasks, s))
        .unwrap_or_default();
    let lost: Vec<String> = app
        .executors
        .iter()
        .filter(|e| e.remove_reason.is_some() && e.id != "driver")
        .map(|e| {
            format!(
                "executor {} was lost ({})",
                e.id,
                e.remove_reason.as_deref().unwrap_or_default()
            )
        })
        .collect();
    notes.extend(lost);
    notes
}

/// Skew (the slowest task, or the largest shuffle read, far above the median) and spills.
fn contributing_of_tasks(tasks: &[Task], stage: i64) -> Vec<String> {
    let mut notes = Vec::new();
    let mut durations: Vec<i64> = tasks
        .iter()
        .filter(|t| t.status == "SUCCESS")
        .filter_map(|t| t.duration_ms)
        .collect();
    durations.sort_unstable();
    if durations.len() >= 4 {
        let median = durations[durations.len() / 2].max(1);
        let max = *durations.last().unwrap_or(&0);
        if max >= 5 * median && max >= 10_000 {
            notes.push(format!(
                "stage {stage} is skewed: its slowest task took {} s, the median {} s",
                max / 1000,
                median / 1000
            ));
        }
    }
    let mut reads: Vec<u64> = tasks.iter().map(|t| t.shuffle_read_bytes).collect();
    reads.sort_unstable();
    if reads.len() >= 4 {
        let median = reads[reads.len() / 2].max(1);
        let max = *reads.last().unwrap_or(&0);
        if max >= 5 * median && max >= 64 * 1024 * 1024 {
            notes.push(format!(
                "stage {stage} is skewed: one task reads {} MiB of shuffle data, the median {} MiB",
                max / (1024 * 1024),
                median / (1024 * 1024)
            ));
        }
    }
    let spilled: u64 = tasks.iter().map(|t| t.memory_spilled_bytes).sum();
    if spilled >= 256 * 1024 * 1024 {
        notes.push(format!(
            "stage {stage} spilled {} MiB from memory to disk",
            spilled / (1024 * 1024)
        ));
    }
    notes
}

/// The user's frame of a Python traceback: `file:line in function`.
fn python_frame(texts: &[(String, String)]) -> Option<String> {
    texts.iter().find_map(|(_, text)| {
        let line = text
            .lines()
            .rfind(|l| l.trim_start().starts_with("File \"") && !l.contains("/pyspark/"))?;
        let file = line.split('"').nth(1)?;
        let rest = line.split(", line ").nth(1)?;
        let (number, function) = rest.split_once(", in ").unwrap_or((rest, "?"));
        Some(format!("{file}:{number} in {}", function.trim()))
    })
}

/// The error class of a Spark error (`[DIVIDE_BY_ZERO] ...` gives `DIVIDE_BY_ZERO`).
fn error_class(texts: &[(String, String)]) -> Option<String> {
    texts.iter().find_map(|(_, text)| {
        let start = text.find('[')?;
        let end = start + text[start..].find(']')?;
        let class = &text[start + 1..end];
        (!class.is_empty()
            && class
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c == '.'))
        .then(|| class.to_owned())
    })
}

/// The exit code in `Command exited with code N`.
fn exit_code(texts: &[(String, String)]) -> Option<u32> {
    texts.iter().find_map(|(_, text)| {
        let after = text.split("exited with code ").nth(1)?;
        after
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()
    })
}

fn next_steps(
    category: Category,
    texts: &[(String, String)],
    executor: Option<&str>,
) -> Vec<String> {
    let executor = executor
        .map(|e| format!("executor {e}"))
        .unwrap_or_else(|| "the executor".into());
    match category {
        Category::OutOfMemory => vec![
            format!(
                "{executor} ran out of JVM heap{}: raise spark.executor.memory (and spark.executor.memoryOverhead for Python workers), or give each task less data",
                if exit_code(texts) == Some(52) {
                    " and exited with code 52, Spark's code for an OutOfMemoryError"
                } else {
                    ""
                }
            ),
            "Spread the data over more partitions (spark.sql.shuffle.partitions, repartition) and avoid building very large values in one row (collect_list, huge strings, wide UDF results)".into(),
            "Look for skew: one key or partition far larger than the rest".into(),
        ],
        Category::ShuffleFetchFailure => vec![
            "A task could not fetch shuffle data, usually because the executor that wrote it died: look for lost executors and why (memory, preemption)".into(),
            "Keep shuffle files available when executors go away: the external shuffle service or graceful decommissioning (spark.decommission.enabled)".into(),
            "Raise spark.shuffle.io.maxRetries and spark.shuffle.io.retryWait for flaky networks".into(),
        ],
        Category::ExecutorLost => {
            let mut steps = Vec::new();
            match exit_code(texts) {
                Some(137) => steps.push(format!(
                    "{executor}'s process was killed with SIGKILL (exit code 137): most often the cluster's or the OS's out-of-memory killer; check the container's memory limit and raise spark.executor.memoryOverhead"
                )),
                Some(143) => steps.push(format!(
                    "{executor} was terminated with SIGTERM (exit code 143): preemption, a node going away or the cluster manager's memory enforcement; check the cluster manager's events for it"
                )),
                Some(code) => steps.push(format!(
                    "{executor} exited with code {code}: read its stderr in the cluster manager's logs"
                )),
                None => steps.push(format!(
                    "{executor} stopped answering (lost heartbeat): check the node's health and GC pauses"
                )),
            }
            steps.push("If the same task keeps killing its executor, run it alone with more memory to see whether the task itself is the cause".into());
            steps
        }
        Category::BadData => vec![
            "Find the record that broke the read: the quoted lines name the file and the parser's complaint".into(),
            "Quarantine bad rows instead of failing: read with mode PERMISSIVE and a columnNameOfCorruptRecord column (or DROPMALFORMED), then inspect them".into(),
            "Tell the producer of the input: the file does not match its declared schema or format".into(),
        ],
        Category::AnsiSqlError => {
            let class = error_class(texts).unwrap_or_else(|| "an ANSI error".into());
            vec![
                format!(
                    "The query hit {class} under ANSI SQL mode on a value in the data: the quoted SQL context shows the expression"
                ),
                "Make the expression tolerate the value (try_divide, try_cast, try_add, or a CASE/NULLIF guard) or filter the rows that cause it".into(),
                "Turning off spark.sql.ansi.enabled hides the problem as NULLs; prefer fixing the expression".into(),
            ]
        }
        Category::UserCodeException => {
            let mut steps = Vec::new();
            match python_frame(texts) {
                Some(frame) => steps.push(format!(
                    "The job's own code raised it at {frame}: fix that function, or make it handle the value it rejects"
                )),
                None => steps.push(
                    "The job's own code threw it: the quoted exception and its first frame point at the function".into(),
                ),
            }
            steps.push("Reproduce on the failing input: the quoted message names the value or record".into());
            steps
        }
        Category::Skew => vec![
            "Find the hot key: count rows per join or grouping key in the skewed stage's input".into(),
            "Let adaptive execution split skewed partitions (spark.sql.adaptive.skewJoin.enabled) or salt the hot key".into(),
        ],
        Category::Unknown => vec![
            "No rule matched: read the quoted failure reason and the failed task's stack trace".into(),
        ],
        Category::NoFailure => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(items: &[&str]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|t| {
                (
                    "task 1 (attempt 0) on executor 1".to_owned(),
                    (*t).to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn the_strongest_signal_decides() {
        let cases: &[(&[&str], Category)] = &[
            (
                &[
                    "java.lang.OutOfMemoryError: Java heap space",
                    "ExecutorLostFailure (executor 1 exited caused by one of the running tasks) Reason: Command exited with code 52",
                ],
                Category::OutOfMemory,
            ),
            (
                &[
                    "ExecutorLostFailure (executor 1 exited caused by one of the running tasks) Reason: Container killed by YARN for exceeding memory limits. 9.0 GB of 9 GB physical memory used.",
                ],
                Category::OutOfMemory,
            ),
            (
                &[
                    "FetchFailed(BlockManagerId(3, host, 7337), shuffleId=2, mapIndex=5, reduceId=7, message=org.apache.spark.shuffle.FetchFailedException: Failed to connect to host:7337)",
                ],
                Category::ShuffleFetchFailure,
            ),
            (
                &[
                    "ExecutorLostFailure (executor 0 exited caused by one of the running tasks) Reason: Command exited with code 137",
                ],
                Category::ExecutorLost,
            ),
            (
                &[
                    "[CAST_INVALID_INPUT] The value 'abc' of the type \"STRING\" cannot be cast to \"INT\" because it is malformed. SQLSTATE: 22018",
                ],
                Category::BadData,
            ),
            (
                &[
                    "org.apache.spark.SparkArithmeticException: [ARITHMETIC_OVERFLOW] long overflow. SQLSTATE: 22003",
                ],
                Category::AnsiSqlError,
            ),
            (
                &["java.lang.IllegalStateException: state is bad"],
                Category::UserCodeException,
            ),
            (&["something odd"], Category::Unknown),
        ];
        for (items, expected) in cases {
            assert_eq!(classify(&texts(items)).0, *expected, "{items:?}");
        }
    }

    #[test]
    fn evidence_quotes_the_exception_and_the_users_frame_not_jvm_frames() {
        let text = "org.apache.spark.api.python.PythonException: [PYTHON_EXCEPTION] An exception was thrown from the Python worker: Traceback (most recent call last):\n  File \"/opt/jobs/etl.py\", line 25, in parse_amount\n    raise ValueError(\"bad record\")\nValueError: bad record\n\tat org.apache.spark.api.python.BasePythonRunner.handle(PythonRunner.scala:1097)";
        let texts = texts(&[text]);
        let (category, pattern) = classify(&texts);
        assert_eq!(category, Category::UserCodeException);
        let lines: Vec<String> = evidence(&texts, pattern)
            .into_iter()
            .map(|e| e.line)
            .collect();
        assert!(
            lines.iter().any(|l| l == "ValueError: bad record"),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("etl.py\", line 25")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l == "raise ValueError(\"bad record\")"),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.starts_with("at ")), "{lines:?}");
        assert_eq!(
            python_frame(&texts).as_deref(),
            Some("/opt/jobs/etl.py:25 in parse_amount")
        );
    }
}
