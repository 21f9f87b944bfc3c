//! `switchboard up --demo-traffic`: a month of realistic traffic through the real gateway, so the
//! dashboard and `switchboard report` show meaningful figures on a laptop. Hundreds of users, a
//! few very active and most occasional, call the bundled servers' tools on working days and hours;
//! some calls fail, some are refused by policy, some writes become proposals that an owner
//! approves or rejects, and some answers are rated. Every call is a real MCP call through the
//! gateway to the real servers, audited as any other; only its recorded time is laid out over
//! the last 30 days (the gateway's demo clock, which only `--demo-traffic` turns on).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use identity::SigningKey;
use registry_api::{NewFeedback, Rating};
use registry_client::{Credentials, RegistryClient};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

/// How much traffic to generate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) calls: usize,
    pub(crate) users: usize,
    /// Calls in flight at once.
    pub(crate) parallel: usize,
    /// Seed of the pseudo-random choices (the same seed gives the same month).
    pub(crate) seed: u64,
}

/// What the generator did.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) calls: usize,
    pub(crate) answered: usize,
    pub(crate) proposals_approved: usize,
    pub(crate) proposals_rejected: usize,
    pub(crate) ratings: usize,
}

const FIRST: [&str; 24] = [
    "alex", "sam", "priya", "wei", "maria", "omar", "lena", "kofi", "yuki", "diego", "nina",
    "arjun", "chloe", "ivan", "fatima", "tom", "mei", "lucas", "sofia", "raj", "emma", "noah",
    "ana", "ben",
];

const SEARCHES: [&str; 10] = [
    "spark executor out of memory",
    "presto access request",
    "airflow dag failed retry",
    "how to request a finance table",
    "on-call escalation policy",
    "data retention policy",
    "shuffle fetch failed",
    "trino query too slow",
    "new service onboarding",
    "incident postmortem template",
];

const QUERIES: [&str; 6] = [
    "SELECT region, sum(revenue_usd) AS revenue FROM ads.revenue_by_region GROUP BY region ORDER BY revenue DESC",
    "SELECT campaign_id, daily_budget_usd FROM ads.campaigns ORDER BY daily_budget_usd DESC LIMIT 20",
    "SELECT day, sum(spend_usd) AS spend FROM ads.daily_spend GROUP BY day ORDER BY day DESC LIMIT 14",
    "SELECT count(*) AS campaigns FROM ads.campaigns",
    "SELECT advertiser, count(*) AS n FROM ads.campaigns GROUP BY advertiser ORDER BY n DESC LIMIT 10",
    "SELECT region, count(*) AS n FROM ads.revenue_by_region GROUP BY region",
];

/// One call to make: who, when, what.
struct Job {
    user: usize,
    time_ms: i64,
    server: &'static str,
    tool: &'static str,
    arguments: Value,
}

/// A user of the demo company.
struct User {
    name: String,
    groups: Vec<String>,
}

fn users(n: usize) -> Vec<User> {
    (0..n)
        .map(|i| {
            let mut groups = vec!["employees".to_owned()];
            if i % 3 == 0 {
                groups.push("ads-eng".into());
            }
            if i % 7 == 0 {
                groups.push("finance".into());
            }
            if i % 11 == 0 {
                groups.push("data-eng".into());
            }
            User {
                name: format!("{}.{:03}", FIRST[i % FIRST.len()], i),
                groups,
            }
        })
        .collect()
}

/// Picks an index with probability proportional to `weights`.
fn pick(rng: &mut fastrand::Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.f64() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// The calls of the month, in time order.
fn jobs(plan: &Plan, now_ms: i64) -> Vec<Job> {
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    // A few people do most of the calling (Zipf-like).
    let activity: Vec<f64> = (0..plan.users)
        .map(|rank| 1.0 / (rank as f64 + 1.0).powf(0.7))
        .collect();
    let day_ms = 86_400_000_i64;
    let start = now_ms - 30 * day_ms;
    // Working days weigh more than weekends (1970-01-01 was a Thursday).
    let days: Vec<f64> = (0..30)
        .map(|d| {
            let weekday = ((start / day_ms + d) + 3).rem_euclid(7); // 0 = Monday
            if weekday >= 5 { 0.15 } else { 1.0 }
        })
        .collect();
    let mut jobs: Vec<Job> = (0..plan.calls)
        .map(|_| {
            let user = pick(&mut rng, &activity);
            let day = pick(&mut rng, &days) as i64;
            let hour = 8 + pick(&mut rng, &[1.0, 2.0, 3.0, 3.0, 2.0, 3.0, 3.0, 3.0, 2.0, 1.0, 0.5]) as i64;
            let time_ms = (start
                + day * day_ms
                + hour * 3_600_000
                + rng.i64(0..3_600_000))
            .min(now_ms - 1_000);
            let (server, tool, arguments) = match pick(
                &mut rng,
                &[30.0, 6.0, 20.0, 5.0, 5.0, 1.0, 1.5, 8.0, 8.0, 5.0, 0.6],
            ) {
                0 => (
                    "knowledge",
                    "search_docs",
                    json!({"query": SEARCHES[rng.usize(..SEARCHES.len())], "limit": 5}),
                ),
                1 => (
                    "knowledge",
                    "get_doc",
                    json!({"path": "runbooks/spark-failed-job.md"}),
                ),
                2 => (
                    "sql",
                    "run_query",
                    json!({"sql": QUERIES[rng.usize(..QUERIES.len())]}),
                ),
                3 => ("sql", "list_tables", json!({"schema": "ads"})),
                4 => ("sql", "describe_table", json!({"table": "ads.daily_spend"})),
                // A typo: the tool answers an error.
                5 => ("sql", "run_query", json!({"sql": "SELEC region FROM ads.revenue_by_region"})),
                // Finance data, declared: the gateway refuses it unless the user is in finance.
                6 => (
                    "sql",
                    "run_query",
                    json!({"sql": "SELECT account, sum(amount_usd) FROM finance.ledger GROUP BY account", "tables": ["finance.ledger"], "schemas": ["finance"]}),
                ),
                7 => ("spark", "list_applications", json!({"status": "failed"})),
                8 => (
                    "spark",
                    "diagnose_failure",
                    json!({"app_id": crate_samples()[rng.usize(..crate_samples().len())]}),
                ),
                9 => ("spark", "get_application", json!({"app_id": crate_samples()[0]})),
                // A write: becomes a proposal for the data owners.
                _ => (
                    "sql",
                    "run_write",
                    json!({"sql": format!("CREATE TABLE ads.top_campaigns_{} AS SELECT campaign_id, daily_budget_usd FROM ads.campaigns ORDER BY daily_budget_usd DESC LIMIT 10", rng.u32(..100_000))}),
                ),
            };
            Job {
                user,
                time_ms,
                server,
                tool,
                arguments,
            }
        })
        .collect();
    jobs.sort_by_key(|j| j.time_ms);
    jobs
}

fn crate_samples() -> Vec<&'static str> {
    server_spark::samples::APPLICATIONS
        .iter()
        .map(|(id, _, _)| *id)
        .collect()
}

/// Makes one call through the gateway as `user`, dated `time_ms`; whether it was answered
/// without error.
async fn call(gateway_url: &str, token: &str, job: &Job) -> anyhow::Result<bool> {
    let headers = [(
        gateway::DEMO_TIME_HEADER.parse()?,
        job.time_ms.to_string().parse()?,
    )]
    .into_iter()
    .collect();
    let client =
        crate::commands::connect::gateway_client(gateway_url, job.server, token, headers).await?;
    let mut params = CallToolRequestParams::new(job.tool);
    if let Some(arguments) = job.arguments.as_object() {
        params = params.with_arguments(arguments.clone());
    }
    let result = client.call_tool(params).await;
    let _ = client.cancel().await;
    Ok(result.is_ok_and(|r| r.is_error != Some(true)))
}

/// Generates `plan`'s month through the gateway at `gateway_url`, then decides the proposals it
/// made and rates some answers through the registry at `registry_url`.
pub(crate) async fn generate(
    gateway_url: &str,
    registry_url: &str,
    key: Arc<SigningKey>,
    plan: Plan,
) -> anyhow::Result<Summary> {
    let now_ms = crate::commands::now_ms();
    let people = Arc::new(users(plan.users.max(1)));
    let jobs = Arc::new(jobs(&plan, now_ms));
    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    // The answers worth rating: (user, server, tool).
    let rated = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..plan.parallel.max(1) {
        let (jobs, next, answered, people, key, rated) = (
            jobs.clone(),
            next.clone(),
            answered.clone(),
            people.clone(),
            key.clone(),
            rated.clone(),
        );
        let gateway_url = gateway_url.to_owned();
        let mut rng = fastrand::Rng::with_seed(plan.seed ^ (worker as u64 + 1));
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let user = &people[job.user];
                let Ok(token) = crate::dev::mint(&key, &user.name, user.groups.clone(), 600) else {
                    continue;
                };
                match call(&gateway_url, &token, job).await {
                    Ok(true) => {
                        answered.fetch_add(1, Ordering::Relaxed);
                        if rng.f64() < 0.03
                            && let Ok(mut rated) = rated.lock()
                        {
                            rated.push((job.user, job.server, job.tool, rng.f64() < 0.8));
                        }
                    }
                    Ok(false) => {}
                    Err(e) => tracing::debug!(error = %e, "a demo call failed to connect"),
                }
                if i > 0 && i % 2000 == 0 {
                    tracing::info!(done = i, of = jobs.len(), "demo traffic");
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}

    // The data owners decide the writes proposed: most approved, some rejected.
    let owner_key = key.clone();
    let owner = RegistryClient::new(
        registry_url,
        Credentials::Mint(Arc::new(move || {
            crate::dev::mint(
                &owner_key,
                "dana.owner",
                vec!["employees".into(), "data-eng".into()],
                300,
            )
            .map_err(|e| e.to_string())
        })),
    );
    let mut summary = Summary {
        calls: jobs.len(),
        answered: answered.load(Ordering::Relaxed),
        ..Summary::default()
    };
    let pending = owner
        .list_proposals(Some("pending"), Some("sql"), true)
        .await?;
    let (approve, reject): (Vec<String>, Vec<String>) = {
        let mut rng = fastrand::Rng::with_seed(plan.seed);
        let ids: Vec<String> = pending.iter().map(|p| p.proposal.id.clone()).collect();
        let mut approve = Vec::new();
        let mut reject = Vec::new();
        for id in ids {
            if rng.f64() < 0.75 {
                approve.push(id);
            } else {
                reject.push(id);
            }
        }
        (approve, reject)
    };
    if !approve.is_empty() {
        owner
            .decide_proposals(&approve, true, "fine for the weekly report")
            .await?;
        summary.proposals_approved = approve.len();
    }
    if !reject.is_empty() {
        owner
            .decide_proposals(&reject, false, "use the shared top_campaigns table instead")
            .await?;
        summary.proposals_rejected = reject.len();
    }
    // Some answers rated, most up.
    let rated = std::mem::take(&mut *rated.lock().unwrap_or_else(|p| p.into_inner()));
    for (user, server, tool, up) in rated {
        let person = &people[user];
        let token = crate::dev::mint(&key, &person.name, person.groups.clone(), 300)?;
        let client = RegistryClient::new(registry_url, Credentials::Static(token));
        let rating = NewFeedback {
            server: server.into(),
            tool: tool.into(),
            rating: if up { Rating::Up } else { Rating::Down },
            comment: None,
            audit_id: None,
            surface: Some("web-chat".into()),
        };
        if client.give_feedback(&rating).await.is_ok() {
            summary.ratings += 1;
        }
    }
    Ok(summary)
}

/// Waits until the gateway has read the catalog (the bundled servers are routable).
pub(crate) async fn wait_for_gateway(gateway_url: &str) {
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http
            .get(format!("{gateway_url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_month_is_spread_over_working_days_and_a_few_busy_people() {
        let plan = Plan {
            calls: 5000,
            users: 300,
            parallel: 1,
            seed: 7,
        };
        let now = 1_795_000_000_000;
        let month = jobs(&plan, now);
        assert_eq!(
            jobs(&plan, now).len(),
            month.len(),
            "the same seed, the same month"
        );
        let jobs = month;
        assert_eq!(jobs.len(), 5000);
        assert!(jobs.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
        assert!(
            jobs.iter()
                .all(|j| j.time_ms < now && j.time_ms >= now - 30 * 86_400_000)
        );
        let mut per_user = vec![0usize; 300];
        for j in &jobs {
            per_user[j.user] += 1;
        }
        let active = per_user.iter().filter(|n| **n > 0).count();
        assert!(active > 250, "{active} users active");
        assert!(per_user[0] > 5 * per_user[250], "{per_user:?}");
        let writes = jobs.iter().filter(|j| j.tool == "run_write").count();
        assert!((5..100).contains(&writes), "{writes} writes");
    }
}
