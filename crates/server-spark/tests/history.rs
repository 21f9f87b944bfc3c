//! Against a real Spark: a real failing pyspark job (Spark 4.3 from PyPI, on Java 17) writes its
//! event log beside the shipped samples, a real Spark History Server serves them all, and every
//! tool runs over MCP against it; the History Server source and the event-log source agree on the
//! diagnosis of every application. Skipped, with the reason printed, where Python with pyspark or
//! Java is missing; never under `CI=true`, where `.ci/run` installs both.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::{ServiceExt, model::CallToolRequestParams, transport::StreamableHttpClientTransport};
use serde_json::{Value, json};
use server_sdk::{Caller, Governance, HttpOptions, IdentityMode};
use server_spark::{Category, EventLogs, HistoryServer, SparkSource, diagnose, samples};

/// Python with pyspark, and `JAVA_HOME`, or why not.
fn spark() -> Option<(PathBuf, PathBuf)> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("SWITCHBOARD_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(home) = std::env::var("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/switchboard-venv/bin/python"));
    }
    let python = candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import pyspark"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let java = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v java)\""])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .and_then(|bin| Some(bin.parent()?.parent()?.to_owned()))
        .filter(|home| home.join("bin/java").exists());
    let present = python.is_some() && java.is_some();
    if !present {
        let what = "Python with pyspark (pip install pyspark==4.3.0) and Java 17";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{what} is required under CI=true; .ci/run installs it");
        }
        eprintln!("SKIPPED: {what} is not installed (run .ci/run to install it)");
        return None;
    }
    python.zip(java)
}

fn spark_home(python: &Path) -> PathBuf {
    let out = Command::new(python)
        .args([
            "-c",
            "import os, pyspark; print(os.path.dirname(pyspark.__file__))",
        ])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A History Server process (its whole process group is stopped on drop).
struct History {
    child: Child,
    url: String,
}

impl Drop for History {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_history(python: &Path, java_home: &Path, logs: &Path, out: &Path) -> History {
    use std::os::unix::process::CommandExt;
    let port = free_port();
    let home = spark_home(python);
    let log = std::fs::File::create(out.join("history.log")).unwrap();
    let child = Command::new(home.join("bin/spark-class"))
        .arg("org.apache.spark.deploy.history.HistoryServer")
        .env("JAVA_HOME", java_home)
        .env("SPARK_HOME", &home)
        .env(
            "SPARK_HISTORY_OPTS",
            format!(
                "-Dspark.history.fs.logDirectory=file://{} -Dspark.history.ui.port={port} \
                 -Dspark.history.fs.update.interval=1s -Dspark.ui.bindAddress=127.0.0.1",
                logs.display()
            ),
        )
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    History {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Runs `samples/jobs.py` for `kind`, writing its event log into `logs`.
fn run_failing_job(python: &Path, java_home: &Path, kind: &str, logs: &Path, out: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/jobs.py");
    let result = Command::new(python)
        .args([script, kind, &format!("file://{}", logs.display())])
        .env("JAVA_HOME", java_home)
        .env("SPARK_HOME", spark_home(python))
        .env("SPARK_LOCAL_IP", "127.0.0.1")
        .current_dir(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success() && stdout.contains("job failed:"),
        "the job did not fail as planned: {stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Waits until the History Server lists `count` applications.
async fn wait_for_applications(source: &HistoryServer, count: usize, out: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(apps) = source.applications().await
            && apps.len() >= count
            && apps.iter().all(|a| a.status != "running")
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the History Server did not list {count} finished applications: {}",
            std::fs::read_to_string(out.join("history.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_failing_job_is_diagnosed_through_the_history_server() {
    let Some((python, java_home)) = spark() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("events");
    samples::ensure(&logs).unwrap();
    // A fresh failure of its own, beside the shipped ones.
    run_failing_job(&python, &java_home, "user_code", &logs, dir.path());
    let history = start_history(&python, &java_home, &logs, dir.path());
    let source = HistoryServer::new(&history.url).unwrap();
    let expected = samples::APPLICATIONS.len() + 1;
    wait_for_applications(&source, expected, dir.path()).await;

    // The two sources agree on every application.
    let embedded = EventLogs::new(&logs);
    let apps = source.applications().await.unwrap();
    assert_eq!(apps.len(), expected);
    for app in &apps {
        assert_eq!(app.status, "failed", "{app:?}");
        let through_history = diagnose(&source, &app.id).await.unwrap();
        let from_log = diagnose(&embedded, &app.id).await.unwrap();
        assert_eq!(
            through_history.category, from_log.category,
            "{}: {through_history:#?}",
            app.id
        );
        assert_eq!(through_history.failing, from_log.failing, "{}", app.id);
    }
    let fresh = apps
        .iter()
        .find(|a| !samples::APPLICATIONS.iter().any(|(id, ..)| *id == a.id))
        .unwrap();
    let diagnosis = diagnose(&source, &fresh.id).await.unwrap();
    assert_eq!(diagnosis.category, Category::UserCodeException);
    assert!(
        diagnosis
            .evidence
            .iter()
            .any(|e| e.line.contains("ValueError: bad record id=4242")),
        "{diagnosis:#?}"
    );

    // Every tool, over MCP, against the History Server.
    let manifest = catalog::Manifest::parse(server_spark::MANIFEST).unwrap();
    let governance = Governance::new(manifest, Caller::anonymous()).unwrap();
    let app = server_spark::http_router(
        Arc::new(source) as Arc<dyn SparkSource>,
        governance,
        HttpOptions {
            identity: IdentityMode::Open(None),
            allowed_hosts: Vec::new(),
            ready: None,
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let agent = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();
    let call = |tool: &'static str, args: Value| {
        let agent = &agent;
        async move {
            let result = agent
                .call_tool(
                    CallToolRequestParams::new(tool)
                        .with_arguments(args.as_object().cloned().unwrap()),
                )
                .await
                .unwrap();
            assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
            result.structured_content.unwrap()
        }
    };
    let listed = call(
        "list_applications",
        json!({"status": "failed", "name": "user-code"}),
    )
    .await;
    assert_eq!(
        listed["applications"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    let shown = call("get_application", json!({"app_id": fresh.id})).await;
    assert_eq!(shown["summary"]["failed_jobs"], 1, "{shown}");
    assert_eq!(shown["stages"][0]["status"], "FAILED", "{shown}");
    let stage = call("get_stage", json!({"app_id": fresh.id, "stage_id": 6})).await;
    assert_eq!(stage["tasks"][0]["status"], "FAILED", "{stage}");
    assert!(
        stage["tasks"][0]["error_message"]
            .as_str()
            .unwrap()
            .contains("ValueError"),
        "{stage}"
    );
    let diagnosed = call("diagnose_failure", json!({"app_id": fresh.id})).await;
    assert_eq!(diagnosed["category"], "user_code_exception", "{diagnosed}");
    let found = call(
        "search_logs",
        json!({"app_id": fresh.id, "query": "valueerror 4242"}),
    )
    .await;
    assert!(!found["matches"].as_array().unwrap().is_empty(), "{found}");
    agent.cancel().await.unwrap();
}
