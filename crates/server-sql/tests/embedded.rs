//! The embedded engine on the generated sample warehouse: real DataFusion queries over real
//! Parquet files, the metadata the tools list, limits, plans with estimates, and cancellation at
//! the time limit.

use std::time::{Duration, Instant};

use serde_json::json;
use server_sql::{
    Embedded, Flavor, Limits, Run, SqlEngine, SqlError, TableName, check_read_only,
    sample::{self, Scale},
};

async fn warehouse() -> (tempfile::TempDir, Embedded) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("warehouse");
    sample::ensure(&root, Scale::SMALL).unwrap();
    let engine = Embedded::open(&root, "warehouse").await.unwrap();
    (dir, engine)
}

fn run(limits: Limits) -> Run {
    Run {
        user: "alice".into(),
        limits,
    }
}

async fn query(engine: &Embedded, sql: &str) -> server_sql::Rows {
    let checked = check_read_only(sql, Flavor::Generic).unwrap();
    engine
        .query(&checked.sql, &run(Limits::default()))
        .await
        .unwrap()
}

#[tokio::test]
async fn real_queries_run_on_the_sample_warehouse() {
    let (_dir, engine) = warehouse().await;
    let count = query(&engine, "SELECT count(*) AS n FROM ads.daily_spend").await;
    let small = Scale::SMALL;
    assert_eq!(count.rows, vec![vec![json!(small.campaigns * small.days)]]);
    assert_eq!(count.columns[0].name, "n");

    let by_region = query(
        &engine,
        "SELECT c.region, round(sum(s.spend_usd), 2) AS spend FROM ads.daily_spend s \
         JOIN ads.campaigns c ON c.campaign_id = s.campaign_id GROUP BY c.region ORDER BY spend DESC",
    )
    .await;
    assert!(!by_region.rows.is_empty() && by_region.rows.len() <= 8);
    assert!(by_region.rows[0][1].as_f64().unwrap() > 0.0);

    // Dates come back as ISO dates, nulls as null.
    let ledger = query(
        &engine,
        "SELECT booked_on, memo FROM finance.ledger WHERE memo IS NULL ORDER BY entry_id LIMIT 1",
    )
    .await;
    assert!(
        ledger.rows[0][0].as_str().unwrap().starts_with("2025-"),
        "{ledger:?}"
    );
    assert_eq!(ledger.rows[0][1], json!(null));

    // The engine's own unknowns are the caller's errors, named.
    let checked = check_read_only("SELECT nope FROM ads.campaigns", Flavor::Generic).unwrap();
    match engine.query(&checked.sql, &run(Limits::default())).await {
        Err(SqlError::Query(message)) => assert!(message.contains("nope"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn metadata_lists_what_is_there() {
    let (_dir, engine) = warehouse().await;
    let r = run(Limits::default());
    assert!(
        engine
            .catalogs(&r)
            .await
            .unwrap()
            .contains(&"warehouse".to_owned())
    );
    let schemas = engine.schemas("warehouse", &r).await.unwrap();
    assert!(
        schemas.contains(&"ads".to_owned()) && schemas.contains(&"finance".to_owned()),
        "{schemas:?}"
    );
    let tables: Vec<String> = engine
        .tables("warehouse", Some("ads"), &r)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(tables, ["campaigns", "daily_spend", "revenue_by_region"]);
    let columns = engine
        .columns(
            &TableName {
                catalog: "warehouse".into(),
                schema: "finance".into(),
                table: "ledger".into(),
            },
            &r,
        )
        .await
        .unwrap();
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "entry_id",
            "booked_on",
            "account",
            "cost_center",
            "amount_usd",
            "memo"
        ]
    );
    assert!(engine.tables("warehouse", Some("nope"), &r).await.is_err());
}

#[tokio::test]
async fn results_stop_at_the_limits_and_say_so() {
    let (_dir, engine) = warehouse().await;
    let limits = Limits {
        max_rows: 5,
        ..Limits::default()
    };
    let rows = engine
        .query("SELECT * FROM ads.daily_spend", &run(limits))
        .await
        .unwrap();
    assert_eq!(rows.rows.len(), 5);
    assert!(rows.truncated.unwrap().contains("more than 5 rows"));
    let limits = Limits {
        max_bytes: 200,
        ..Limits::default()
    };
    let rows = engine
        .query("SELECT * FROM finance.ledger", &run(limits))
        .await
        .unwrap();
    assert!(!rows.rows.is_empty() && rows.rows.len() < 10);
    assert!(rows.truncated.unwrap().contains("larger than 200 bytes"));
}

#[tokio::test]
async fn plans_carry_the_engines_estimates() {
    let (_dir, engine) = warehouse().await;
    let plan = engine
        .explain("SELECT * FROM ads.campaigns", &run(Limits::default()))
        .await
        .unwrap();
    assert!(plan.plan.contains("physical plan"), "{}", plan.plan);
    assert_eq!(plan.estimated_rows, Some(Scale::SMALL.campaigns as u64));
}

#[tokio::test]
async fn a_query_past_its_time_limit_is_cancelled() {
    let (_dir, engine) = warehouse().await;
    let limits = Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let started = Instant::now();
    let slow = "SELECT count(*) FROM ads.daily_spend a, ads.daily_spend b, ads.daily_spend c \
                WHERE a.spend_usd + b.spend_usd > c.spend_usd";
    let outcome = engine.query(slow, &run(limits)).await;
    assert_eq!(outcome, Err(SqlError::Timeout(Duration::from_millis(300))));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn writes_are_refused_by_the_engine_too() {
    // The guard refuses these first; the engine's own read-only options are the second wall.
    let (_dir, engine) = warehouse().await;
    for sql in [
        "CREATE TABLE warehouse.ads.x AS SELECT 1",
        "INSERT INTO warehouse.ads.campaigns SELECT * FROM warehouse.ads.campaigns",
        "SET datafusion.execution.batch_size = 1",
    ] {
        assert!(
            matches!(
                engine.query(sql, &run(Limits::default())).await,
                Err(SqlError::Query(_))
            ),
            "{sql}"
        );
    }
}

fn target(schema: &str, table: &str) -> TableName {
    TableName {
        catalog: "warehouse".into(),
        schema: schema.into(),
        table: table.into(),
    }
}

async fn write(engine: &Embedded, sql: &str, schema: &str, table: &str) -> Result<u64, SqlError> {
    let checked = server_sql::check_write(sql, Flavor::Generic).unwrap();
    engine
        .write(&checked, &target(schema, table), &run(Limits::default()))
        .await
        .map(|w| w.rows.unwrap())
}

/// Approved writes create, append to, overwrite and replace Parquet tables that later queries
/// (and a fresh engine over the same folder) read; a write that cannot be done changes nothing.
#[tokio::test]
async fn approved_writes_change_parquet_tables_in_place() {
    let (dir, engine) = warehouse().await;
    let created = write(
        &engine,
        "CREATE TABLE ads.big_budgets AS SELECT campaign_id, daily_budget_usd FROM ads.campaigns WHERE daily_budget_usd > 0",
        "ads",
        "big_budgets",
    )
    .await
    .unwrap();
    let campaigns = Scale::SMALL.campaigns as u64;
    assert_eq!(created, campaigns);
    let count = |sql: &'static str| {
        let engine = &engine;
        async move { query(engine, sql).await.rows[0][0].as_u64().unwrap() }
    };
    assert_eq!(
        count("SELECT count(*) FROM ads.big_budgets").await,
        campaigns
    );

    let appended = write(
        &engine,
        "INSERT INTO ads.big_budgets SELECT campaign_id, daily_budget_usd FROM ads.campaigns LIMIT 5",
        "ads",
        "big_budgets",
    )
    .await
    .unwrap();
    assert_eq!(appended, 5);
    assert_eq!(
        count("SELECT count(*) FROM ads.big_budgets").await,
        campaigns + 5
    );

    // An overwrite keeps the table's columns and types, whatever the query calls them.
    let overwritten = write(
        &engine,
        "INSERT OVERWRITE ads.big_budgets SELECT 7 AS id, 1.5 AS b",
        "ads",
        "big_budgets",
    )
    .await
    .unwrap();
    assert_eq!(overwritten, 1);
    let row = query(
        &engine,
        "SELECT campaign_id, daily_budget_usd FROM ads.big_budgets",
    )
    .await;
    assert_eq!(row.rows, vec![vec![json!(7), json!(1.5)]]);

    let replaced = write(
        &engine,
        "CREATE OR REPLACE TABLE ads.big_budgets AS SELECT region FROM ads.campaigns",
        "ads",
        "big_budgets",
    )
    .await
    .unwrap();
    assert_eq!(replaced, campaigns);
    let described = engine
        .columns(&target("ads", "big_budgets"), &run(Limits::default()))
        .await
        .unwrap();
    assert_eq!(described.len(), 1);
    assert_eq!(described[0].name, "region");

    // What cannot be done is refused, and nothing changes.
    for (sql, schema, table, reason) in [
        (
            "CREATE TABLE ads.big_budgets AS SELECT 1",
            "ads",
            "big_budgets",
            "exists already",
        ),
        (
            "INSERT INTO ads.missing SELECT 1",
            "ads",
            "missing",
            "there is no table",
        ),
        (
            "INSERT INTO ads.big_budgets SELECT 1, 2, 3",
            "ads",
            "big_budgets",
            "",
        ),
        (
            "CREATE TABLE \"../../escape\".x AS SELECT 1",
            "../../escape",
            "x",
            "lower-case letters, digits and _ only",
        ),
        (
            "INSERT INTO ads.big_budgets (region) SELECT 'x'",
            "ads",
            "big_budgets",
            "without a column list",
        ),
    ] {
        match write(&engine, sql, schema, table).await {
            Err(SqlError::Query(message)) => assert!(message.contains(reason), "{sql}: {message}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert_eq!(
        count("SELECT count(*) FROM ads.big_budgets").await,
        campaigns
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("warehouse/ads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(!dir.path().join("escape").exists());

    // A new schema, and a fresh engine over the same folder, see the tables written.
    write(
        &engine,
        "CREATE TABLE scratch.regions AS SELECT DISTINCT region FROM ads.campaigns",
        "scratch",
        "regions",
    )
    .await
    .unwrap();
    let reopened = Embedded::open(&dir.path().join("warehouse"), "warehouse")
        .await
        .unwrap();
    let regions = query(&reopened, "SELECT count(*) FROM scratch.regions").await;
    assert!(regions.rows[0][0].as_u64().unwrap() > 0);
    assert_eq!(
        query(&reopened, "SELECT count(*) FROM ads.big_budgets")
            .await
            .rows[0][0],
        json!(campaigns)
    );
}
