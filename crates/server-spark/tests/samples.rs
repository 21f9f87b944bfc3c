//! The shipped sample event logs, written by real failing pyspark jobs, read by the embedded
//! source: every sample is diagnosed as the failure its job was made to have, with evidence quoted
//! from the log, and the model matches what the History Server reports for the same logs.

use server_spark::{EventLogs, SparkSource, diagnose, samples};

fn sample_logs() -> (tempfile::TempDir, EventLogs) {
    let dir = tempfile::tempdir().unwrap();
    samples::ensure(dir.path()).unwrap();
    let logs = EventLogs::new(dir.path());
    (dir, logs)
}

/// (how the job failed, a line the evidence must quote, words the next steps use)
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        "user_code",
        "ValueError: bad record id=4242: amount field is not numeric",
        "jobs.py:25 in parse_amount",
    ),
    (
        "ansi_sql",
        "[DIVIDE_BY_ZERO] Division by zero.",
        "DIVIDE_BY_ZERO",
    ),
    (
        "bad_data",
        "Malformed records are detected in record parsing",
        "PERMISSIVE",
    ),
    (
        "executor_lost",
        "Reason: Command exited with code 137",
        "SIGKILL",
    ),
    (
        "out_of_memory",
        "java.lang.OutOfMemoryError: Java heap space",
        "spark.executor.memory",
    ),
];

#[tokio::test]
async fn every_sample_is_diagnosed_as_the_failure_its_job_had() {
    let (_dir, logs) = sample_logs();
    let apps = logs.applications().await.unwrap();
    assert_eq!(apps.len(), samples::APPLICATIONS.len());
    assert!(apps.iter().all(|a| a.status == "failed"), "{apps:?}");
    for (app, kind, category) in samples::APPLICATIONS {
        let (_, quoted, step) = EXPECTED
            .iter()
            .find(|(k, ..)| k == kind)
            .unwrap_or_else(|| panic!("no expectation for {kind}"));
        let diagnosis = diagnose(&logs, app).await.unwrap();
        assert_eq!(diagnosis.category, *category, "{kind}: {diagnosis:#?}");
        assert!(
            diagnosis.evidence.iter().any(|e| e.line.contains(quoted)),
            "{kind}: no evidence line quotes {quoted:?}: {:#?}",
            diagnosis.evidence
        );
        assert!(
            diagnosis.next_steps.iter().any(|s| s.contains(step)),
            "{kind}: {:#?}",
            diagnosis.next_steps
        );
        let failing = diagnosis.failing.as_ref().unwrap();
        assert_eq!(failing.job_id, 3, "{kind}");
        assert_eq!(failing.stage_id, Some(6), "{kind}");
        assert!(failing.task_id.is_some(), "{kind}");
        assert!(
            diagnosis.summary.starts_with("Job 3 in stage 6"),
            "{}",
            diagnosis.summary
        );
    }
}

#[tokio::test]
async fn the_model_has_jobs_stages_tasks_and_executors() {
    let (_dir, logs) = sample_logs();
    let app = logs.application("app-20261122212347-0000").await.unwrap();
    assert_eq!(app.summary.name, "nightly-executor-lost");
    assert_eq!(app.summary.spark_version, "4.3.0");
    assert!(app.summary.duration_ms.unwrap() > 0);
    let failed: Vec<_> = app.jobs.iter().filter(|j| j.status == "FAILED").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].num_failed_stages, 1);
    let lost: Vec<_> = app
        .executors
        .iter()
        .filter(|e| e.remove_reason.is_some())
        .collect();
    assert_eq!(lost.len(), 2, "{:?}", app.executors);
    let tasks = logs
        .tasks("app-20261122212347-0000", 6, 0, Some("FAILED"))
        .await
        .unwrap();
    assert!(!tasks.is_empty());
    assert!(
        tasks[0].error_message.as_deref().unwrap().starts_with(
            "ExecutorLostFailure (executor 0 exited caused by one of the running tasks)"
        )
    );
    assert!(
        app.sql
            .iter()
            .any(|s| s.status == "FAILED" && s.failed_job_ids == [3])
    );
    match logs.application("local-0000").await {
        Err(server_spark::SourceError::NotFound(message)) => {
            assert!(message.contains("no application local-0000"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}
