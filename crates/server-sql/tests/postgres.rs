//! PostgreSQL as the engine, on a real server (a fresh database of the test's own): real
//! queries with every type read as JSON, metadata, limits, the read-only transaction as a second
//! wall behind the guard, and a statement past its time limit cancelled on the server.

use std::time::Duration;

use serde_json::json;
use server_sql::{Limits, Postgres, PostgresConfig, Run, SqlEngine, SqlError, TableName};
use sqlx::{AssertSqlSafe, Connection, Executor};

async fn database() -> Option<(registry_store::testing::TestDatabase, Postgres)> {
    let database = registry_store::testing::fresh_postgres("the PostgreSQL engine tests").await?;
    let mut admin = sqlx::PgConnection::connect(&database.url).await.unwrap();
    admin
        .execute(AssertSqlSafe(
            "CREATE SCHEMA ads;
             CREATE TABLE ads.campaigns (campaign_id bigint PRIMARY KEY, region text NOT NULL,
                 start_date date NOT NULL, daily_budget_usd numeric(12, 2) NOT NULL, tags jsonb);
             INSERT INTO ads.campaigns
                 SELECT n, (ARRAY['na-east', 'emea-north', 'apac-south'])[1 + n % 3],
                        DATE '2025-06-01' + n, 100 + n * 0.25, jsonb_build_object('n', n)
                 FROM generate_series(1, 500) AS n;
             CREATE SEQUENCE ads.ids;
             CREATE VIEW ads.big_budgets AS SELECT * FROM ads.campaigns WHERE daily_budget_usd > 200;",
        ))
        .await
        .unwrap();
    let engine = Postgres::connect(&PostgresConfig {
        url: database.url.clone(),
        set_role: false,
    })
    .await
    .unwrap();
    Some((database, engine))
}

fn run(limits: Limits) -> Run {
    Run {
        user: "alice".into(),
        limits,
    }
}

#[tokio::test]
async fn real_queries_and_metadata_on_postgresql() {
    let Some((database, engine)) = database().await else {
        return;
    };
    let rows = engine
        .query(
            "SELECT campaign_id, region, start_date, daily_budget_usd, tags FROM ads.campaigns ORDER BY campaign_id LIMIT 2",
            &run(Limits::default()),
        )
        .await
        .unwrap();
    assert_eq!(
        rows.rows[0],
        vec![
            json!(1),
            json!("emea-north"),
            json!("2025-06-02"),
            json!(100.25),
            json!({"n": 1})
        ]
    );
    assert_eq!(
        rows.columns
            .iter()
            .map(|c| c.data_type.as_str())
            .collect::<Vec<_>>(),
        ["int8", "text", "date", "numeric", "jsonb"]
    );
    let by_region = engine
        .query(
            "SELECT region, count(*) AS n FROM ads.campaigns GROUP BY region ORDER BY region",
            &run(Limits::default()),
        )
        .await
        .unwrap();
    assert_eq!(by_region.rows.len(), 3);

    let r = run(Limits::default());
    let name = database.url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(engine.catalogs(&r).await.unwrap(), vec![name.clone()]);
    assert!(
        engine
            .schemas(&name, &r)
            .await
            .unwrap()
            .contains(&"ads".to_owned())
    );
    let tables = engine.tables(&name, Some("ads"), &r).await.unwrap();
    assert_eq!(
        tables
            .iter()
            .map(|t| (t.name.as_str(), t.kind.as_str()))
            .collect::<Vec<_>>(),
        [("big_budgets", "view"), ("campaigns", "table")]
    );
    let columns = engine
        .columns(
            &TableName {
                catalog: name.clone(),
                schema: "ads".into(),
                table: "campaigns".into(),
            },
            &r,
        )
        .await
        .unwrap();
    assert_eq!(columns[3].data_type, "numeric");
    let plan = engine
        .explain("SELECT * FROM ads.campaigns", &r)
        .await
        .unwrap();
    assert!(plan.estimated_rows.unwrap() > 0, "{plan:?}");
    assert!(plan.estimated_bytes.is_some());

    let limited = engine
        .query(
            "SELECT * FROM ads.campaigns",
            &run(Limits {
                max_rows: 25,
                ..Limits::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(limited.rows.len(), 25);
    assert!(limited.truncated.is_some());
    match engine.query("SELECT nope FROM ads.campaigns", &r).await {
        Err(SqlError::Query(message)) => assert!(message.contains("nope"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_read_only_transaction_refuses_what_a_query_could_still_change() {
    let Some((_database, engine)) = database().await else {
        return;
    };
    // A plain SELECT that would write: the guard cannot see inside functions, PostgreSQL can.
    match engine
        .query("SELECT nextval('ads.ids')", &run(Limits::default()))
        .await
    {
        Err(SqlError::Query(message)) => {
            assert!(message.contains("read-only transaction"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_statement_past_its_time_limit_is_cancelled_on_the_server() {
    let Some((database, engine)) = database().await else {
        return;
    };
    let limits = Limits {
        timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let outcome = engine.query("SELECT pg_sleep(30)", &run(limits)).await;
    assert_eq!(outcome, Err(SqlError::Timeout(Duration::from_millis(500))));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing of it is still running on the server.
    let mut admin = sqlx::PgConnection::connect(&database.url).await.unwrap();
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(running, 0);
    let named: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'switchboard:%'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(named <= 8);
}

/// Approved writes commit as one transaction each: PostgreSQL has neither INSERT OVERWRITE nor
/// CREATE OR REPLACE TABLE, so they become a delete (or drop) and an insert (or create) that
/// succeed or fail together.
#[tokio::test]
async fn approved_writes_commit_whole_or_not_at_all() {
    let Some((_database, engine)) = database().await else {
        return;
    };
    let r = run(Limits::default());
    let target = |table: &str| TableName {
        catalog: engine.default_catalog().to_owned(),
        schema: "ads".into(),
        table: table.into(),
    };
    let write = |sql: &str| server_sql::check_write(sql, server_sql::Flavor::Postgres).unwrap();
    let count = |table: &'static str| {
        let (engine, r) = (&engine, &r);
        async move {
            engine
                .query(&format!("SELECT count(*) AS n FROM ads.{table}"), r)
                .await
                .unwrap()
                .rows[0][0]
                .as_u64()
                .unwrap()
        }
    };
    let created = engine
        .write(
            &write(
                "CREATE TABLE ads.emea AS SELECT * FROM ads.campaigns WHERE region = 'emea-north'",
            ),
            &target("emea"),
            &r,
        )
        .await
        .unwrap();
    assert_eq!(created.rows, Some(count("emea").await));
    let appended = engine
        .write(
            &write("INSERT INTO ads.emea (campaign_id, region, start_date, daily_budget_usd) SELECT 9000, 'x', DATE '2026-01-01', 1"),
            &target("emea"),
            &r,
        )
        .await
        .unwrap();
    assert_eq!(appended.rows, Some(1));
    let overwritten = engine
        .write(
            &write("INSERT OVERWRITE ads.emea SELECT * FROM ads.campaigns LIMIT 4"),
            &target("emea"),
            &r,
        )
        .await
        .unwrap();
    assert_eq!(overwritten.rows, Some(4));
    assert_eq!(count("emea").await, 4);
    engine
        .write(
            &write("CREATE OR REPLACE TABLE ads.emea AS SELECT region FROM ads.campaigns LIMIT 2"),
            &target("emea"),
            &r,
        )
        .await
        .unwrap();
    assert_eq!(count("emea").await, 2);

    // A failing insert undoes its delete: the overwrite leaves the table as it was.
    let failed = engine
        .write(
            &write("INSERT OVERWRITE ads.emea SELECT 1 / 0"),
            &target("emea"),
            &r,
        )
        .await;
    assert!(matches!(failed, Err(SqlError::Query(_))), "{failed:?}");
    assert_eq!(count("emea").await, 2);
}
