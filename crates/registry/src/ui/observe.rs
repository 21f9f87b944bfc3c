//! The UI's observability pages: the north-star dashboard (`/ui/insights`: time saved, active
//! users, error and rejection rates, latency, charts drawn as server-side SVG, tables per tool,
//! server and team) and the searchable audit (`/ui/audit`, with CSV and JSON-lines exports for
//! auditors). Both read exactly what the API answers.

use std::sync::Arc;

use askama::Template;
use axum::{
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use registry_api::{Figures, Insights};
use serde::Deserialize;

use super::pages::{Me, me, page, principal, signed_in, time};
use crate::{RegistryState, insights::Month};

#[derive(Deserialize, Default)]
pub(crate) struct InsightsQuery {
    #[serde(default)]
    month: String,
}

/// A row of a table of figures.
struct FigureRow {
    name: String,
    calls: u64,
    succeeded: u64,
    errors: u64,
    error_rate: String,
    hours: String,
    users: u64,
    p50: u64,
    p95: u64,
    estimate: String,
    feedback: String,
}

fn figure_row(name: String, f: &Figures, estimate: String, feedback: String) -> FigureRow {
    FigureRow {
        name,
        calls: f.calls,
        succeeded: f.succeeded,
        errors: f.errors,
        error_rate: format!("{:.1}%", f.error_rate * 100.0),
        hours: format!("{:.1}", f.hours_saved),
        users: f.users,
        p50: f.latency_ms.p50,
        p95: f.latency_ms.p95,
        estimate,
        feedback,
    }
}

#[derive(Template)]
#[template(path = "insights.html")]
struct InsightsPage {
    me: Option<Me>,
    month: String,
    previous: String,
    next: String,
    hours_saved: String,
    succeeded: u64,
    users: u64,
    error_rate: String,
    rejection_rate: String,
    decided: u64,
    p95: u64,
    feedback_up: u64,
    feedback_down: u64,
    daily_chart: String,
    tools_chart: String,
    tools: Vec<FigureRow>,
    servers: Vec<FigureRow>,
    teams: Vec<FigureRow>,
    error: String,
}

/// Escapes text for SVG.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Hours saved per day, as vertical bars.
fn daily_chart(r: &Insights) -> String {
    let (w, h, left, bottom) = (720.0, 220.0, 44.0, 24.0);
    let days: Vec<(String, f64)> = r
        .days
        .iter()
        .map(|d| (d.day.clone(), d.minutes_saved / 60.0))
        .collect();
    let max = days.iter().map(|d| d.1).fold(0.0_f64, f64::max).max(1.0);
    let slot = (w - left) / 31.0;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="Hours saved per day" id="daily-chart"><title>Hours saved per day, {}</title>"##,
        esc(&r.month)
    );
    for i in 0..=4 {
        let v = max * f64::from(i) / 4.0;
        let y = h - bottom - (h - bottom - 10.0) * f64::from(i) / 4.0;
        svg.push_str(&format!(
            r##"<line x1="{left}" x2="{w}" y1="{y:.1}" y2="{y:.1}" stroke="#e4e7ec"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#667085">{}</text>"##,
            left - 4.0,
            y + 3.0,
            if max < 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        ));
    }
    for (day, hours) in &days {
        let index = day
            .rsplit('-')
            .next()
            .and_then(|d| d.parse::<f64>().ok())
            .unwrap_or(1.0)
            - 1.0;
        let bar = (h - bottom - 10.0) * hours / max;
        let x = left + index * slot + 2.0;
        svg.push_str(&format!(
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bar:.1}" fill="#2e90fa"><title>{}: {hours:.1} hours</title></rect>"##,
            h - bottom - bar,
            slot - 4.0,
            esc(day)
        ));
    }
    for d in [1.0, 8.0, 15.0, 22.0, 29.0] {
        svg.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#667085">{d:.0}</text>"##,
            left + (d - 1.0) * slot + slot / 2.0,
            h - 8.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// The ten tools that saved the most hours, as horizontal bars.
fn tools_chart(r: &Insights) -> String {
    let top: Vec<_> = r.tools.iter().take(10).collect();
    let (w, row, left) = (720.0, 24.0, 230.0);
    let h = row * top.len().max(1) as f64 + 8.0;
    let max = top
        .iter()
        .map(|t| t.figures.hours_saved)
        .fold(0.0_f64, f64::max)
        .max(0.1);
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="Hours saved by tool" id="tools-chart"><title>Hours saved by tool</title>"##
    );
    for (i, t) in top.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let bar = (w - left - 70.0) * t.figures.hours_saved / max;
        svg.push_str(&format!(
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#101828">{}</text><rect x="{left}" y="{y:.1}" width="{bar:.1}" height="{:.1}" fill="#12b76a"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#344054">{:.1} h</text>"##,
            left - 6.0,
            y + row * 0.65,
            esc(&format!("{}/{}", t.server, t.tool)),
            row - 6.0,
            left + bar + 6.0,
            y + row * 0.65,
            t.figures.hours_saved
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn shift(month: Month, by: i32) -> String {
    let index = month.year * 12 + month.month as i32 - 1 + by;
    format!(
        "{:04}-{:02}",
        index.div_euclid(12),
        index.rem_euclid(12) + 1
    )
}

pub(crate) async fn insights(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Query(query): Query<InsightsQuery>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect.into_response(),
    };
    let month = match Month::parse(&query.month) {
        Ok(m) => m,
        Err(_) => Month::of(crate::http::api::servers::now_ms()),
    };
    let label = month.label();
    let report = crate::http::api::insights::month_report(&state, Some(&label)).await;
    let (status, report, error) = match report {
        Ok(r) => (StatusCode::OK, r, String::new()),
        Err(e) => {
            let (status, text) = e.parts();
            let empty = crate::insights::report(month, &[], &[], &[], &[]);
            (status, empty, text)
        }
    };
    let t = &report.totals;
    let tools = report
        .tools
        .iter()
        .map(|tool| {
            figure_row(
                format!("{}/{}", tool.server, tool.tool),
                &tool.figures,
                tool.estimate_minutes
                    .map(|m| format!("{m} min"))
                    .unwrap_or_default(),
                format!("+{} / −{}", tool.feedback.up, tool.feedback.down),
            )
        })
        .collect();
    let groups = |rows: &[registry_api::GroupInsight]| {
        rows.iter()
            .map(|g| figure_row(g.name.clone(), &g.figures, String::new(), String::new()))
            .collect()
    };
    page(
        status,
        &InsightsPage {
            me: Some(me(&session)),
            previous: shift(month, -1),
            next: shift(month, 1),
            month: label,
            hours_saved: format!("{:.1}", t.hours_saved),
            succeeded: t.succeeded,
            users: t.users,
            error_rate: format!("{:.2}%", t.error_rate * 100.0),
            rejection_rate: format!("{:.1}%", report.proposals.rejection_rate * 100.0),
            decided: report.proposals.approved + report.proposals.rejected,
            p95: t.latency_ms.p95,
            feedback_up: report.feedback.up,
            feedback_down: report.feedback.down,
            daily_chart: daily_chart(&report),
            tools_chart: tools_chart(&report),
            tools,
            servers: groups(&report.servers),
            teams: groups(&report.teams),
            error,
        },
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    server: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    q: String,
}

impl AuditQuery {
    /// The store's filter for this search; `user` (a non-auditor's own name) overrides the
    /// form's.
    fn filter(
        &self,
        user: Option<String>,
        limit: u32,
    ) -> Result<registry_store::AuditFilter, String> {
        let blank = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_owned());
        let outcome = blank(&self.outcome)
            .map(|o| registry_api::Outcome::parse(&o).ok_or(format!("unknown outcome {o:?}")))
            .transpose()?;
        Ok(registry_store::AuditFilter {
            server: blank(&self.server),
            user: user.or_else(|| blank(&self.user)),
            tool: blank(&self.tool),
            outcome,
            text: blank(&self.q),
            limit,
            ..Default::default()
        })
    }
}

struct AuditRow {
    id: String,
    when: String,
    user: String,
    surface: String,
    server: String,
    tool: String,
    outcome: &'static str,
    latency_ms: u64,
    proposal: String,
    detail: String,
    arguments: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    me: Option<Me>,
    query: AuditQuery,
    rows: Vec<AuditRow>,
    auditor: bool,
    export: String,
    error: String,
}

/// Records shown at most.
const SHOWN: u32 = 200;

pub(crate) async fn audit(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Query(query): Query<AuditQuery>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect.into_response(),
    };
    let auditor = principal(&session).in_any(&state.auditor_groups);
    // Everyone sees their own records; auditors see everyone's.
    let user = (!auditor).then(|| session.user.clone());
    let (rows, error) = match query.filter(user, SHOWN) {
        Err(bad) => (Vec::new(), bad),
        Ok(filter) => match state.store.list_audit(&filter).await {
            Ok(records) => (
                records
                    .into_iter()
                    .map(|r| AuditRow {
                        id: r.id,
                        when: time(r.time_ms),
                        user: r.user,
                        surface: r.surface.unwrap_or_default(),
                        server: r.server,
                        tool: r.tool.unwrap_or(r.method),
                        outcome: r.outcome.as_str(),
                        latency_ms: r.latency_ms,
                        proposal: r.proposal.unwrap_or_default(),
                        detail: r.detail.unwrap_or_default(),
                        arguments: r
                            .arguments
                            .map(|a| {
                                let text = a.to_string();
                                if text.chars().count() > 200 {
                                    format!("{}…", text.chars().take(200).collect::<String>())
                                } else {
                                    text
                                }
                            })
                            .unwrap_or_default(),
                    })
                    .collect(),
                String::new(),
            ),
            Err(e) => (Vec::new(), e.to_string()),
        },
    };
    let export = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            [
                ("server", &query.server),
                ("user", &query.user),
                ("tool", &query.tool),
                ("outcome", &query.outcome),
                ("q", &query.q),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty()),
        )
        .finish();
    page(
        StatusCode::OK,
        &AuditPage {
            me: Some(me(&session)),
            query,
            rows,
            auditor,
            export,
            error,
        },
    )
}

#[derive(Deserialize, Default)]
pub(crate) struct ExportQuery {
    #[serde(default)]
    format: String,
    #[serde(flatten)]
    filter: AuditQuery,
}

/// `/ui/audit/export`: the same export as the API's, for a signed-in auditor.
pub(crate) async fn export(
    State(state): State<Arc<RegistryState>>,
    headers: HeaderMap,
    Query(query): Query<ExportQuery>,
) -> Response {
    let session = match signed_in(&state, &headers) {
        Ok(s) => s,
        Err(redirect) => return redirect.into_response(),
    };
    if !principal(&session).in_any(&state.auditor_groups) {
        return (StatusCode::FORBIDDEN, "exports are for auditors").into_response();
    }
    let filter = match query.filter.filter(None, 0) {
        Ok(filter) => filter,
        Err(bad) => return (StatusCode::UNPROCESSABLE_ENTITY, bad).into_response(),
    };
    crate::http::api::audit::export_response(&state, filter, query.format == "csv")
}
