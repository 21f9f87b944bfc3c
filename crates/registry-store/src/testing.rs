//! Test support (feature `testing`): a fresh PostgreSQL database per test on the server at
//! `SWITCHBOARD_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432/test`), dropped when
//! the guard is. Without a reachable server it returns `None` after saying what is skipped, except
//! under `CI=true`, where it panics.

use sqlx::{Connection, Executor};

/// A database created for one test; dropping it drops the database.
pub struct TestDatabase {
    pub url: String,
    name: String,
}

fn base() -> String {
    std::env::var("SWITCHBOARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh database, or `None` (skipped, with a message naming `what`) when no server answers
/// outside CI.
pub async fn fresh_postgres(what: &str) -> Option<TestDatabase> {
    let base = base();
    sqlx::any::install_default_drivers();
    let mut admin = match sqlx::AnyConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("PostgreSQL at {base} is required under CI=true: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: {what} on PostgreSQL: no server at {base} ({e})");
            return None;
        }
    };
    let name = format!("switchboard_test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create a test database");
    let (server, _) = base
        .rsplit_once('/')
        .expect("a PostgreSQL URL names a database");
    Some(TestDatabase {
        url: format!("{server}/{name}"),
        name,
    })
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropping runs outside any runtime the test may be ending: use a thread of our own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(mut admin) = sqlx::AnyConnection::connect(&base()).await {
                        let _ = admin
                            .execute(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .await;
                    }
                });
            }
        })
        .join();
    }
}
