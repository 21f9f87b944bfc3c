//! The Airflow server that `switchboard up` ships, through the gateway. Without an Airflow it is
//! listed as not connected, and says how to connect one, in its live status and on every call.
//! Against a real Airflow 3 (`airflow standalone` from PyPI, on loopback) an agent drives every
//! tool: it finds DAGs, the DAG file that does not import, runs across DAGs, task instances and
//! the failing task's structured log; and every action (unpause, trigger, clear with Airflow's
//! dry run as its preview, pause) becomes a proposal that runs only once a pipeline owner
//! approves it. Skipped, with the reason printed, where Airflow is not installed; never under
//! `CI=true`, where `.ci/run` installs it.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use crate::harness::{Platform, blocking_get, call, connect, python_agent, python_output};

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn structured(result: &CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn without_an_airflow_the_server_is_listed_as_not_connected_with_how_to_connect_one() {
    let platform = Platform::start_with(&["--probe-every-secs", "1"]);
    let servers = blocking_get(
        &format!("{}/v1/servers", platform.registry_url),
        &platform.token,
    );
    assert!(
        servers["servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "airflow"),
        "{servers}"
    );
    // The live status says it is not connected, and how to connect one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let statuses = blocking_get(
            &format!("{}/v1/status", platform.registry_url),
            &platform.token,
        );
        if let Some(status) = statuses["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["server"] == "airflow" && s["not_ready"].is_string())
        {
            break status.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no readiness reported: {statuses}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let reason = status["not_ready"].as_str().unwrap();
    assert!(
        reason.contains("no Airflow is connected") && reason.contains("--airflow-url"),
        "{status}"
    );
    // The other servers are ready.
    let statuses = blocking_get(
        &format!("{}/v1/status", platform.registry_url),
        &platform.token,
    );
    assert!(
        statuses["statuses"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["server"] != "airflow")
            .all(|s| s["not_ready"].is_null()),
        "{statuses}"
    );
    // Every call says the same.
    let agent = connect(
        &format!("{}/servers/airflow/mcp", platform.gateway_url),
        &platform.token,
        true,
    )
    .await;
    let listed = call(&agent, "list_dags", json!({})).await.unwrap();
    assert_eq!(listed.is_error, Some(true));
    assert!(
        text(&listed).contains("Airflow is not connected")
            && text(&listed).contains("--airflow-url"),
        "{}",
        text(&listed)
    );
    agent.cancel().await.unwrap();
}

/// The Airflow 3 virtual environment `.ci/run` makes, or why not.
fn airflow_venv() -> Option<PathBuf> {
    let venv = match std::env::var("SWITCHBOARD_AIRFLOW_VENV") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => {
            PathBuf::from(std::env::var("HOME").ok()?).join(".cache/switchboard-airflow-venv")
        }
    };
    let present = venv.join("bin/airflow").exists();
    crate::harness::available(
        "Apache Airflow 3 (pip install apache-airflow==3.3.2 into ~/.cache/switchboard-airflow-venv)",
        present,
    )
    .then_some(venv)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `airflow standalone` in its own process group (stopped, with every worker, on drop).
struct Airflow {
    child: Child,
    url: String,
    home: PathBuf,
}

impl Drop for Airflow {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

impl Airflow {
    fn start(venv: &Path, dir: &Path) -> Airflow {
        use std::os::unix::process::CommandExt;
        let home = dir.join("airflow");
        std::fs::create_dir_all(&home).unwrap();
        let dags = concat!(env!("CARGO_MANIFEST_DIR"), "/../server-airflow/tests/dags");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("airflow.log")).unwrap();
        let path = format!(
            "{}:{}",
            venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(venv.join("bin/airflow"))
            .arg("standalone")
            .env("PATH", path)
            .env("AIRFLOW_HOME", &home)
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            .env("AIRFLOW__CORE__DAGS_FOLDER", dags)
            .env("AIRFLOW__CORE__PARALLELISM", "4")
            .env("AIRFLOW__API__HOST", "127.0.0.1")
            .env("AIRFLOW__API__PORT", port.to_string())
            .env(
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                format!("{url}/execution/"),
            )
            // The log servers' default ports (8793, 8794) may be taken on a shared machine.
            .env(
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
                free_port().to_string(),
            )
            .env(
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT",
                free_port().to_string(),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        Airflow { child, url, home }
    }

    /// The generated admin password, once Airflow has written it.
    fn password(&self) -> Option<String> {
        let file = self
            .home
            .join("simple_auth_manager_passwords.json.generated");
        let passwords: Value = serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
        passwords["admin"].as_str().map(str::to_owned)
    }

    /// Waits until the API answers and the DAG processor has parsed both DAG files; returns the
    /// admin password.
    async fn wait_until_parsed(&mut self, dir: &Path) -> String {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(240);
        let log = || std::fs::read_to_string(dir.join("airflow.log")).unwrap_or_default();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("airflow standalone exited ({status}):\n{}", log());
            }
            assert!(
                Instant::now() < deadline,
                "Airflow did not parse the DAGs in time:\n{}",
                log()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
            let Some(password) = self.password() else {
                continue;
            };
            let token = http
                .post(format!("{}/auth/token", self.url))
                .json(&json!({"username": "admin", "password": password}))
                .send()
                .await;
            let Ok(token) = token else { continue };
            let Ok(token) = token.json::<Value>().await else {
                continue;
            };
            let Some(token) = token["access_token"].as_str() else {
                continue;
            };
            let mut parsed = true;
            for (path, field) in [("dags", "total_entries"), ("importErrors", "total_entries")] {
                let found = match http
                    .get(format!("{}/api/v2/{path}", self.url))
                    .bearer_auth(token)
                    .send()
                    .await
                {
                    Ok(r) => r.json::<Value>().await.unwrap_or_default(),
                    Err(_) => Value::Null,
                };
                parsed &= found[field].as_u64().unwrap_or(0) > 0;
            }
            if parsed {
                return password;
            }
        }
    }
}

/// The pending proposals of the Airflow server, as `token` sees them.
fn pending(platform: &Platform, token: &str) -> Vec<Value> {
    let list = blocking_get(
        &format!(
            "{}/v1/proposals?server=airflow&state=pending",
            platform.registry_url
        ),
        token,
    );
    list["proposals"].as_array().cloned().unwrap_or_default()
}

/// Calls an action: it becomes a proposal with a preview, which `owner` approves; the
/// requester's follow-up runs it. Returns the proposal and what the run answered.
async fn approved(
    platform: &Platform,
    agent: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    owner: &str,
    tool: &str,
    args: Value,
) -> (Value, CallToolResult) {
    let asked = call(agent, tool, args).await.unwrap();
    assert!(
        text(&asked).contains("needs approval by owners"),
        "{tool}: {}",
        text(&asked)
    );
    let proposals = pending(platform, owner);
    let proposal = proposals
        .iter()
        .find(|p| p["tool"] == tool)
        .unwrap_or_else(|| panic!("no pending {tool} proposal: {proposals:?}"))
        .clone();
    let id = proposal["id"].as_str().unwrap();
    let (code, out) = platform.cli(&["approvals", "approve", id, "--token", owner]);
    assert_eq!(code, 0, "{out}");
    let ran = call(agent, "switchboard_proposal", json!({"id": id}))
        .await
        .unwrap();
    assert_ne!(ran.is_error, Some(true), "{tool}: {}", text(&ran));
    (proposal, ran)
}

/// Polls `tool` until `done` holds for its structured answer.
async fn until(
    agent: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tool: &str,
    args: Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let result = call(agent, tool, args.clone()).await.unwrap();
        let value = structured(&result);
        if result.is_error != Some(true) && done(&value) {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: {}", text(&result));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_drive_a_real_airflow_through_the_gateway_with_approved_actions() {
    let Some(venv) = airflow_venv() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut airflow = Airflow::start(&venv, dir.path());
    let password = airflow.wait_until_parsed(dir.path()).await;
    let platform = Platform::start_with(&[
        "--approval-wait-secs",
        "0",
        "--probe-every-secs",
        "1",
        "--airflow-url",
        &airflow.url,
        "--airflow-user",
        "admin",
        "--airflow-password",
        &password,
    ]);
    let url = format!("{}/servers/airflow/mcp", platform.gateway_url);
    let developer = platform.token("dev", &["employees"]);
    let owner = platform.token("olga", &["employees", "data-eng"]);
    let agent = connect(&url, &developer, true).await;

    // Reads.
    let dags = call(&agent, "list_dags", json!({"tag": "demo"}))
        .await
        .unwrap();
    let listed = structured(&dags);
    assert_eq!(listed["dags"][0]["dag_id"], "demo_etl", "{listed}");
    assert_eq!(listed["dags"][0]["is_paused"], true, "{listed}");
    assert_eq!(listed["dags"][0]["owners"], json!(["data-eng"]));
    let dag = call(&agent, "get_dag", json!({"dag_id": "demo_etl"}))
        .await
        .unwrap();
    assert!(
        text(&dag).contains("task extract (BashOperator) -> transform"),
        "{}",
        text(&dag)
    );
    assert!(
        structured(&dag)["dag"]["doc_md"]
            .as_str()
            .unwrap()
            .contains("daily ad spend")
    );
    let missing = call(&agent, "get_dag", json!({"dag_id": "no_such_dag"}))
        .await
        .unwrap();
    assert_eq!(missing.is_error, Some(true));
    assert!(
        text(&missing).contains("not found in Airflow"),
        "{}",
        text(&missing)
    );
    let refused = call(&agent, "get_dag", json!({"dag_id": "../admin"}))
        .await
        .unwrap();
    assert!(
        text(&refused).contains("Airflow ids are"),
        "{}",
        text(&refused)
    );
    let errors = call(&agent, "get_import_errors", json!({})).await.unwrap();
    let errors = structured(&errors);
    assert_eq!(
        errors["import_errors"][0]["filename"], "broken_report.py",
        "{errors}"
    );
    assert_eq!(
        errors["import_errors"][0]["error"],
        "ModuleNotFoundError: No module named 'reporting_lib_that_is_not_installed'"
    );

    // An agent whose user declines the confirmation proposes nothing (2026-07-28, the official
    // Python SDK answering the `input_required` round).
    if let Some(python) = crate::harness::python() {
        let declined = python_output(
            python_agent(
                &python,
                &url,
                "2026-07-28",
                &developer,
                "trigger_dag_run",
                &json!({"dag_id": "demo_etl"}),
                Some("decline"),
            )
            .output()
            .unwrap(),
        );
        assert!(
            declined["asked"][0]
                .as_str()
                .unwrap_or_default()
                .starts_with("Trigger a run of demo_etl: the DAG is paused"),
            "{declined}"
        );
        assert!(
            declined["text"][0]
                .as_str()
                .unwrap()
                .contains("you declined"),
            "{declined}"
        );
        assert!(pending(&platform, &owner).is_empty());
    }

    // Actions run only once a pipeline owner approves them. A trigger needs no unpause to be
    // proposed; its preview says the DAG is paused.
    let (proposal, _) = approved(
        &platform,
        &agent,
        &owner,
        "unpause_dag",
        json!({"dag_id": "demo_etl"}),
    )
    .await;
    assert!(
        proposal["preview"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Unpause demo_etl (paused now"),
        "{proposal}"
    );
    let (proposal, ran) = approved(
        &platform,
        &agent,
        &owner,
        "trigger_dag_run",
        json!({"dag_id": "demo_etl", "dag_run_id": "switchboard_fail_1", "conf": {"fail": true}, "note": "reproduce the schema break"}),
    )
    .await;
    assert!(
        proposal["preview"]["summary"].as_str().unwrap().contains(
            "Trigger a run of demo_etl named switchboard_fail_1 with conf {\"fail\":true}"
        ),
        "{proposal}"
    );
    let run = structured(&ran);
    assert_eq!(run["dag_run"]["dag_run_id"], "switchboard_fail_1", "{run}");
    let note = run["dag_run"]["note"].as_str().unwrap();
    assert!(
        note.starts_with("reproduce the schema break (Requested by dev through Switchboard"),
        "{note}"
    );

    // The failure, found across every DAG, and its cause from the structured log.
    let failed = until(
        &agent,
        "list_dag_runs",
        json!({"state": "failed"}),
        "the run did not fail",
        |v| v["dag_runs"].as_array().is_some_and(|r| !r.is_empty()),
    )
    .await;
    assert_eq!(failed["dag_runs"][0]["dag_run_id"], "switchboard_fail_1");
    let instances = call(
        &agent,
        "get_task_instances",
        json!({"dag_id": "demo_etl", "dag_run_id": "switchboard_fail_1", "state": "failed"}),
    )
    .await
    .unwrap();
    let instances = structured(&instances);
    assert_eq!(
        instances["task_instances"][0]["task_id"], "transform",
        "{instances}"
    );
    assert_eq!(instances["task_instances"].as_array().unwrap().len(), 1);
    let log = call(
        &agent,
        "get_task_log",
        json!({"dag_id": "demo_etl", "dag_run_id": "switchboard_fail_1", "task_id": "transform"}),
    )
    .await
    .unwrap();
    let log = structured(&log);
    assert_eq!(log["try_number"], 1);
    assert_eq!(log["errors"][0]["exc_type"], "ValueError", "{log}");
    assert_eq!(
        log["errors"][0]["exc_value"],
        "transform failed: upstream schema changed (column 'amount' missing)"
    );
    assert!(
        log["errors"][0]["frames"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .ends_with("demo_etl.py:24 in transform"),
        "{log}"
    );
    // The same, as the official Python SDK sees it in the 2025-11-25 era.
    if let Some(python) = crate::harness::python() {
        let out = python_output(
            python_agent(
                &python,
                &url,
                "legacy",
                &developer,
                "get_task_log",
                &json!({"dag_id": "demo_etl", "dag_run_id": "switchboard_fail_1", "task_id": "extract"}),
                None,
            )
            .output()
            .unwrap(),
        );
        assert!(
            out["text"][0].as_str().unwrap().contains("42 rows"),
            "{out}"
        );
    }

    // A clear's preview is Airflow's own dry run: exactly what runs again.
    let (proposal, ran) = approved(
        &platform,
        &agent,
        &owner,
        "clear_task_instances",
        json!({"dag_id": "demo_etl", "dag_run_id": "switchboard_fail_1"}),
    )
    .await;
    let dry_run = proposal["preview"]["details"]["dry_run"]
        .as_array()
        .unwrap();
    assert_eq!(dry_run.len(), 1, "{proposal}");
    assert_eq!(dry_run[0]["task_id"], "transform");
    assert_eq!(
        structured(&ran)["task_instances"][0]["task_id"],
        "transform"
    );
    until(
        &agent,
        "get_task_instances",
        json!({"dag_id": "demo_etl", "dag_run_id": "switchboard_fail_1", "state": "failed"}),
        "the cleared task did not run again",
        |v| v["task_instances"][0]["try_number"] == 2,
    )
    .await;
    // A clear that would reset nothing (extract succeeded; only failed ones are cleared) is
    // refused before anyone is asked.
    let nothing = call(
        &agent,
        "clear_task_instances",
        json!({"dag_id": "demo_etl", "dag_run_id": "switchboard_fail_1", "task_ids": ["extract"]}),
    )
    .await
    .unwrap();
    assert!(
        text(&nothing).contains("nothing to clear"),
        "{}",
        text(&nothing)
    );

    // Pausing, approved; pausing again is refused as pointless.
    approved(
        &platform,
        &agent,
        &owner,
        "pause_dag",
        json!({"dag_id": "demo_etl"}),
    )
    .await;
    let paused = call(&agent, "list_dags", json!({"paused": true}))
        .await
        .unwrap();
    assert_eq!(structured(&paused)["dags"][0]["dag_id"], "demo_etl");
    let again = call(&agent, "pause_dag", json!({"dag_id": "demo_etl"}))
        .await
        .unwrap();
    assert!(text(&again).contains("already paused"), "{}", text(&again));
    assert!(pending(&platform, &owner).is_empty());

    // The server is ready: Airflow is connected and healthy.
    let statuses = blocking_get(
        &format!("{}/v1/status", platform.registry_url),
        &platform.token,
    );
    let status = statuses["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == "airflow")
        .cloned()
        .unwrap();
    assert!(
        status["ok"] == true && status["not_ready"].is_null(),
        "{status}"
    );
    assert!(platform.audit("airflow").len() >= 15);
    agent.cancel().await.unwrap();
}
