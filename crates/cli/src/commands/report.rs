//! `switchboard report`, `switchboard audit export` and `switchboard feedback`: the month's
//! north-star table (time saved per tool, server and team, monthly active users, error and
//! approval-rejection rates, latency), the audit as JSON lines or CSV, and a rating of a tool's
//! answer, all read from or sent to the registry's API.

use std::io::Write;

use futures::StreamExt;
use registry_api::{Figures, NewFeedback, Rating};

use crate::commands::RegistryAccess;

#[derive(clap::Args)]
pub(crate) struct ReportArgs {
    /// The month, `YYYY-MM` (UTC); default: this month.
    #[arg(long)]
    month: Option<String>,
    /// Print the report as JSON (the API's answer) instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryAccess,
}

fn row(name: &str, f: &Figures, extra: &str) -> String {
    format!(
        "{:<36} {:>8} {:>8} {:>7} {:>7} {:>10} {:>6} {:>6} {:>7} {extra}",
        name,
        f.calls,
        f.succeeded,
        f.errors,
        format!("{:.1}%", f.error_rate * 100.0),
        format!("{:.1}", f.hours_saved),
        f.users,
        f.latency_ms.p50,
        f.latency_ms.p95,
    )
}

fn header(first: &str, extra: &str) -> String {
    format!(
        "{:<36} {:>8} {:>8} {:>7} {:>7} {:>10} {:>6} {:>6} {:>7} {extra}",
        first, "CALLS", "OK", "ERRORS", "ERR%", "HOURS", "USERS", "P50MS", "P95MS"
    )
}

pub(crate) async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let client = args.registry.client()?;
    let r = client.insights(args.month.as_deref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    let t = &r.totals;
    println!("Switchboard report for {}", r.month);
    println!(
        "time saved: {:.1} hours ({:.0} minutes) over {} successful calls; {} monthly active users",
        t.hours_saved, t.minutes_saved, t.succeeded, t.users
    );
    println!(
        "calls: {} ({} ok, {} errors = {:.2}% error rate, {} denied, {} waited for approval); latency p50 {} ms, p95 {} ms, p99 {} ms",
        t.calls,
        t.succeeded,
        t.errors,
        t.error_rate * 100.0,
        t.denied,
        t.pending_approval,
        t.latency_ms.p50,
        t.latency_ms.p95,
        t.latency_ms.p99
    );
    println!(
        "approvals: {} proposed, {} approved, {} rejected ({:.1}% rejection rate), {} expired, {} pending; feedback: {} up, {} down\n",
        r.proposals.created,
        r.proposals.approved,
        r.proposals.rejected,
        r.proposals.rejection_rate * 100.0,
        r.proposals.expired,
        r.proposals.pending,
        r.feedback.up,
        r.feedback.down
    );
    println!("{}", header("TOOL", "EST.MIN  FEEDBACK"));
    for tool in &r.tools {
        let extra = format!(
            "{:>7}  +{} -{}",
            tool.estimate_minutes
                .map(|m| format!("{m}"))
                .unwrap_or_else(|| "-".into()),
            tool.feedback.up,
            tool.feedback.down
        );
        println!(
            "{}",
            row(
                &format!("{}/{}", tool.server, tool.tool),
                &tool.figures,
                &extra
            )
        );
    }
    println!("\n{}", header("SERVER", ""));
    for server in &r.servers {
        println!("{}", row(&server.name, &server.figures, ""));
    }
    println!("\n{}", header("TEAM", ""));
    for team in &r.teams {
        println!("{}", row(&team.name, &team.figures, ""));
    }
    println!("\n{}", row("TOTAL", t, ""));
    Ok(())
}

#[derive(clap::Args)]
pub(crate) struct AuditArgs {
    #[command(subcommand)]
    action: AuditAction,
    #[command(flatten)]
    registry: RegistryAccess,
}

#[derive(clap::Subcommand)]
enum AuditAction {
    /// Write every matching audit record, oldest first, to standard output (auditors only).
    Export {
        /// `jsonl` or `csv`.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
        format: String,
        /// Only this month, `YYYY-MM` (UTC).
        #[arg(long)]
        month: Option<String>,
        #[arg(long)]
        server: Option<String>,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        tool: Option<String>,
        /// `ok`, `tool_error`, `denied`, `error`, `input_required` or `pending_approval`.
        #[arg(long)]
        outcome: Option<String>,
    },
}

pub(crate) async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let client = args.registry.client()?;
    let AuditAction::Export {
        format,
        month,
        server,
        user,
        tool,
        outcome,
    } = args.action;
    let mut query = vec![("format", format)];
    if let Some(month) = month {
        let (from, to) = registry::insights::Month::parse(&month)
            .map_err(|e| anyhow::anyhow!(e))?
            .range_ms();
        query.push(("from", from.to_string()));
        query.push(("to", to.to_string()));
    }
    for (key, value) in [
        ("server", server),
        ("user", user),
        ("tool", tool),
        ("outcome", outcome),
    ] {
        if let Some(value) = value {
            query.push((key, value));
        }
    }
    let response = client.export_audit(&query).await?;
    let mut out = std::io::stdout().lock();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        out.write_all(&chunk.map_err(|e| anyhow::anyhow!("the export broke off: {e}"))?)?;
    }
    out.flush()?;
    Ok(())
}

#[derive(clap::Args)]
pub(crate) struct FeedbackArgs {
    /// The server of the rated tool.
    server: String,
    /// The rated tool.
    tool: String,
    /// `up` or `down`.
    #[arg(value_parser = ["up", "down"])]
    rating: String,
    #[arg(long)]
    comment: Option<String>,
    /// The audit record id of the rated call.
    #[arg(long)]
    audit_id: Option<String>,
    #[command(flatten)]
    registry: RegistryAccess,
}

pub(crate) async fn feedback(args: FeedbackArgs) -> anyhow::Result<()> {
    let client = args.registry.client()?;
    let stored = client
        .give_feedback(&NewFeedback {
            server: args.server,
            tool: args.tool,
            rating: if args.rating == "up" {
                Rating::Up
            } else {
                Rating::Down
            },
            comment: args.comment,
            audit_id: args.audit_id,
            surface: Some("cli".into()),
        })
        .await?;
    println!("recorded {} ({})", stored.id, args.rating);
    Ok(())
}
