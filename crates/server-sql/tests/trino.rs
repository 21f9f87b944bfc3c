//! The Trino client end to end over HTTP: against the Trino-protocol front of the embedded engine
//! (paging, types, errors, the caller as `X-Trino-User`, cancellation with `DELETE` at the row and
//! time limits), the official `trino` Python client against the same front, and a real Trino
//! when `TRINO_URL` is set.

use std::{
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use async_trait::async_trait;
use serde_json::json;
use server_sql::{
    Column, Dialect, Embedded, Limits, Plan, Rows, Run, SqlEngine, SqlError, TableInfo, TableName,
    Trino, TrinoConfig,
    guard::Flavor,
    sample::{self, Scale},
    trino_front::{self, FrontConfig, FrontStats},
};

/// The embedded engine, remembering who ran what.
struct Recording {
    inner: Embedded,
    users: Mutex<Vec<String>>,
}

#[async_trait]
impl SqlEngine for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn flavor(&self) -> Flavor {
        self.inner.flavor()
    }
    fn default_catalog(&self) -> &str {
        self.inner.default_catalog()
    }
    async fn query(&self, sql: &str, run: &Run) -> Result<Rows, SqlError> {
        self.users.lock().unwrap().push(run.user.clone());
        self.inner.query(sql, run).await
    }
    async fn explain(&self, sql: &str, run: &Run) -> Result<Plan, SqlError> {
        self.inner.explain(sql, run).await
    }
    async fn catalogs(&self, run: &Run) -> Result<Vec<String>, SqlError> {
        self.inner.catalogs(run).await
    }
    async fn schemas(&self, catalog: &str, run: &Run) -> Result<Vec<String>, SqlError> {
        self.inner.schemas(catalog, run).await
    }
    async fn tables(
        &self,
        catalog: &str,
        schema: Option<&str>,
        run: &Run,
    ) -> Result<Vec<TableInfo>, SqlError> {
        self.inner.tables(catalog, schema, run).await
    }
    async fn columns(&self, table: &TableName, run: &Run) -> Result<Vec<Column>, SqlError> {
        self.inner.columns(table, run).await
    }
    async fn write(
        &self,
        write: &server_sql::WriteChecked,
        target: &TableName,
        run: &Run,
    ) -> Result<server_sql::Written, SqlError> {
        self.users.lock().unwrap().push(run.user.clone());
        self.inner.write(write, target, run).await
    }
}

struct Front {
    url: String,
    stats: Arc<FrontStats>,
    engine: Arc<Recording>,
    _dir: tempfile::TempDir,
}

async fn front() -> Front {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("warehouse");
    sample::ensure(&root, Scale::SMALL).unwrap();
    let engine = Arc::new(Recording {
        inner: Embedded::open(&root, "warehouse").await.unwrap(),
        users: Mutex::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (router, stats) = trino_front::router(
        engine.clone(),
        FrontConfig {
            public_url: url.clone(),
            page_rows: 7,
            limits: Limits {
                max_rows: 1_000_000,
                max_bytes: 512 * 1024 * 1024,
                timeout: Duration::from_secs(60),
            },
            allow_writes: true,
        },
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    Front {
        url,
        stats,
        engine,
        _dir: dir,
    }
}

fn client(url: &str) -> Trino {
    Trino::new(TrinoConfig {
        url: url.to_owned(),
        dialect: Dialect::Trino,
        catalog: "warehouse".into(),
        authorization: None,
    })
    .unwrap()
}

fn as_user(user: &str, limits: Limits) -> Run {
    Run {
        user: user.into(),
        limits,
    }
}

#[tokio::test]
async fn the_client_pages_through_results_as_the_caller() {
    let front = front().await;
    let trino = client(&front.url);
    let rows = trino
        .query(
            "SELECT campaign_id, region, start_date FROM ads.campaigns ORDER BY campaign_id",
            &as_user("alice", Limits::default()),
        )
        .await
        .unwrap();
    // 40 rows in pages of 7.
    assert_eq!(rows.rows.len(), 40);
    assert_eq!(rows.rows[0][0], json!(1));
    assert_eq!(
        rows.columns
            .iter()
            .map(|c| c.data_type.as_str())
            .collect::<Vec<_>>(),
        ["bigint", "varchar", "date"]
    );
    assert!(rows.truncated.is_none());
    assert_eq!(front.engine.users.lock().unwrap().as_slice(), ["alice"]);

    // Metadata through Trino's own statements and information_schema.
    let r = as_user("alice", Limits::default());
    assert!(
        trino
            .catalogs(&r)
            .await
            .unwrap()
            .contains(&"warehouse".to_owned())
    );
    assert!(
        trino
            .schemas("warehouse", &r)
            .await
            .unwrap()
            .contains(&"finance".to_owned())
    );
    let tables = trino.tables("warehouse", Some("ads"), &r).await.unwrap();
    assert_eq!(tables.len(), 3, "{tables:?}");
    let columns = trino
        .columns(
            &TableName {
                catalog: "warehouse".into(),
                schema: "ads".into(),
                table: "revenue_by_region".into(),
            },
            &r,
        )
        .await
        .unwrap();
    assert_eq!(
        columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["day", "region", "revenue_usd"]
    );
}

#[tokio::test]
async fn errors_arrive_with_trinos_names() {
    let front = front().await;
    let trino = client(&front.url);
    match trino
        .query(
            "SELECT nope FROM ads.campaigns",
            &as_user("alice", Limits::default()),
        )
        .await
    {
        Err(SqlError::Query(message)) => {
            assert!(
                message.starts_with("SYNTAX_ERROR: ") && message.contains("nope"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // The front's own guard: nothing but reads.
    match trino
        .query(
            "DELETE FROM ads.campaigns",
            &as_user("alice", Limits::default()),
        )
        .await
    {
        Err(SqlError::Query(message)) => {
            assert!(message.starts_with("PERMISSION_DENIED"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let unreachable = client("http://127.0.0.1:9");
    assert!(matches!(
        unreachable
            .query("SELECT 1", &as_user("alice", Limits::default()))
            .await,
        Err(SqlError::Unavailable(_))
    ));
}

#[tokio::test]
async fn statements_past_their_limits_are_cancelled_on_the_engine() {
    let front = front().await;
    let trino = client(&front.url);
    // Rows: the client stops after 10 and cancels the rest.
    let rows = trino
        .query(
            "SELECT * FROM ads.daily_spend",
            &as_user(
                "alice",
                Limits {
                    max_rows: 10,
                    ..Limits::default()
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(rows.rows.len(), 10);
    assert!(rows.truncated.is_some());
    assert_eq!(front.stats.cancelled.load(Ordering::SeqCst), 1);

    // Time: a statement still running at the deadline is cancelled.
    let slow = "SELECT count(*) FROM ads.daily_spend a, ads.daily_spend b, ads.daily_spend c \
                WHERE a.spend_usd + b.spend_usd > c.spend_usd";
    let limits = Limits {
        timeout: Duration::from_millis(800),
        ..Limits::default()
    };
    let outcome = trino.query(slow, &as_user("alice", limits)).await;
    assert_eq!(outcome, Err(SqlError::Timeout(Duration::from_millis(800))));
    assert_eq!(front.stats.cancelled.load(Ordering::SeqCst), 2);
}

/// The Python interpreter with the `trino` client: `SWITCHBOARD_PYTHON` or `.ci/run`'s venv.
fn python() -> Option<std::path::PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("SWITCHBOARD_PYTHON") {
        candidates.push(std::path::PathBuf::from(p));
    }
    if let Ok(home) = std::env::var("HOME") {
        candidates.push(std::path::PathBuf::from(home).join(".cache/switchboard-venv/bin/python"));
    }
    candidates.into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import trino"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_trino_python_client_passes_against_the_front() {
    let Some(python) = python() else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "the trino Python client is required under CI=true; .ci/run installs it"
        );
        eprintln!("SKIPPED: the trino Python client is not installed (run .ci/run to install it)");
        return;
    };
    let front = front().await;
    let (host, port) = front
        .url
        .trim_start_matches("http://")
        .split_once(':')
        .unwrap();
    let script = format!(
        r#"
import json, trino
from trino.exceptions import TrinoUserError
c = trino.dbapi.connect(host="{host}", port={port}, user="bob", catalog="warehouse", schema="ads")
cur = c.cursor()
cur.execute("SELECT campaign_id, region, start_date, daily_budget_usd FROM ads.campaigns ORDER BY campaign_id")
rows = cur.fetchall()
out = {{"rows": len(rows), "first": [rows[0][0], rows[0][1], rows[0][2].isoformat(), rows[0][3] > 0],
       "description": [d[0] + ":" + d[1] for d in cur.description]}}
try:
    cur.execute("SELECT nope FROM ads.campaigns")
    cur.fetchall()
except TrinoUserError as e:
    out["error"] = e.error_name
cur = c.cursor()
cur.execute("SELECT * FROM ads.daily_spend")
cur.fetchone()
cur.cancel()
print(json.dumps(out))
"#
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", &script])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["rows"], 40, "{result}");
    assert_eq!(result["first"][0], 1);
    assert_eq!(result["first"][3], true);
    assert_eq!(
        result["description"],
        json!([
            "campaign_id:bigint",
            "region:varchar",
            "start_date:date",
            "daily_budget_usd:double"
        ])
    );
    assert_eq!(result["error"], "SYNTAX_ERROR");
    assert_eq!(front.stats.cancelled.load(Ordering::SeqCst), 1);
    assert!(
        front
            .engine
            .users
            .lock()
            .unwrap()
            .iter()
            .all(|u| u == "bob")
    );
}

/// A real coordinator, where one is reachable (`TRINO_URL=http://host:8080`, catalog `TRINO_CATALOG`
/// or `system`).
#[tokio::test]
async fn a_real_trino_answers_when_one_is_configured() {
    let Ok(url) = std::env::var("TRINO_URL") else {
        eprintln!("SKIPPED: set TRINO_URL to run the Trino client against a real coordinator");
        return;
    };
    let trino = Trino::new(TrinoConfig {
        url,
        dialect: Dialect::Trino,
        catalog: std::env::var("TRINO_CATALOG").unwrap_or_else(|_| "system".into()),
        authorization: None,
    })
    .unwrap();
    let r = as_user("switchboard-test", Limits::default());
    let rows = trino.query("SELECT 1 AS one", &r).await.unwrap();
    assert_eq!(rows.rows, vec![vec![json!(1)]]);
    assert!(!trino.catalogs(&r).await.unwrap().is_empty());
    let limited = trino
        .query(
            "SELECT * FROM UNNEST(sequence(1, 100000))",
            &as_user(
                "switchboard-test",
                Limits {
                    max_rows: 10,
                    ..Limits::default()
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(limited.rows.len(), 10);
}

const SLOW: &str = "SELECT count(*) FROM ads.daily_spend a, ads.daily_spend b, ads.daily_spend c \
                    WHERE a.spend_usd + b.spend_usd > c.spend_usd";

async fn cancelled(stats: &FrontStats, expected: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stats.cancelled.load(Ordering::SeqCst) < expected {
        assert!(
            std::time::Instant::now() < deadline,
            "the coordinator never heard the cancel"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_statement_its_caller_abandons_is_cancelled_on_the_coordinator() {
    let front = front().await;
    let trino = client(&front.url);
    let patient = Limits {
        timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let abandoned = tokio::time::timeout(
        Duration::from_millis(500),
        trino.query(SLOW, &as_user("alice", patient)),
    )
    .await;
    assert!(abandoned.is_err());
    cancelled(&front.stats, 1).await;
}

/// The whole path: an MCP client cancels its `run_query` call, the SQL server drops the
/// statement, and the Trino client cancels it on the coordinator.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_cancelling_its_call_cancels_the_statement() {
    use rmcp::{
        ServiceExt,
        model::{CallToolRequest, CallToolRequestParams, ClientRequest},
        transport::StreamableHttpClientTransport,
    };
    use server_sdk::{Caller, Governance, HttpOptions, IdentityMode};
    let front = front().await;
    let engine: Arc<dyn SqlEngine> = Arc::new(client(&front.url));
    let manifest = catalog::Manifest::parse(server_sql::MANIFEST).unwrap();
    let governance = Governance::new(manifest.clone(), Caller::local()).unwrap();
    let limits = Limits {
        timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let app = server_sql::http_router(
        engine,
        limits,
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
    let params = CallToolRequestParams::new("run_query")
        .with_arguments(json!({"sql": SLOW}).as_object().cloned().unwrap());
    let handle = agent
        .send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(params)),
            Default::default(),
        )
        .await
        .unwrap();
    // Let it reach the coordinator, then give up on it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while front.engine.users.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the statement never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle
        .cancel(Some("the user changed their mind".into()))
        .await
        .unwrap();
    cancelled(&front.stats, 1).await;
    agent.cancel().await.unwrap();
}

/// An approved write goes to Trino as the caller and comes back with the rows written; Trino
/// has no INSERT OVERWRITE, which is refused before anything is sent.
#[tokio::test]
async fn writes_reach_trino_as_the_caller() {
    let front = front().await;
    let engine = client(&front.url);
    let run = Run {
        user: "wendy".into(),
        limits: Limits::default(),
    };
    let target = TableName {
        catalog: "warehouse".into(),
        schema: "ads".into(),
        table: "regions".into(),
    };
    let create = server_sql::check_write(
        "CREATE TABLE ads.regions AS SELECT DISTINCT region FROM ads.campaigns",
        Flavor::Generic,
    )
    .unwrap();
    let written = engine.write(&create, &target, &run).await.unwrap();
    assert!(written.rows.unwrap() > 0, "{written:?}");
    assert_eq!(front.engine.users.lock().unwrap().last().unwrap(), "wendy");
    let count = engine
        .query("SELECT count(*) FROM ads.regions", &run)
        .await
        .unwrap();
    assert_eq!(count.rows[0][0].as_u64(), written.rows);

    let overwrite =
        server_sql::check_write("INSERT OVERWRITE ads.regions SELECT 'x'", Flavor::Generic)
            .unwrap();
    match engine.write(&overwrite, &target, &run).await {
        Err(SqlError::Query(message)) => {
            assert!(message.contains("no INSERT OVERWRITE"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}
