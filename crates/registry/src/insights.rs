//! The north-star report of a month, computed from what the store holds: every tool call the
//! gateway audited (with the owner's minutes-saved estimate at the time of the call), the
//! proposals made and what became of them, and people's ratings. Pure: the same facts give the
//! same report, so the API, the dashboard and `switchboard report` cannot disagree.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use registry_api::{
    CallFact, DayInsight, Feedback, FeedbackCounts, Figures, GroupInsight, Insights, Outcome,
    Percentiles, ProposalState, ProposalStats, Rating, ServerView, ToolInsight,
};

/// A calendar month, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// `YYYY-MM`.
    pub fn parse(text: &str) -> Result<Month, String> {
        let date = NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
            .map_err(|_| format!("month must be YYYY-MM (for example 2026-11), not {text:?}"))?;
        Ok(Month {
            year: date.year(),
            month: date.month(),
        })
    }

    /// The month that holds `ms`.
    pub fn of(ms: i64) -> Month {
        let t = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    fn start(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }

    fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// `[from_ms, to_ms)`.
    pub fn range_ms(self) -> (i64, i64) {
        let ms = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp_millis())
                .unwrap_or_default()
        };
        (ms(self.start()), ms(self.next().start()))
    }

    pub fn label(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

fn day_of(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Accumulates the figures of one group of calls.
#[derive(Default)]
struct Tally {
    figures: Figures,
    users: BTreeSet<String>,
    latencies: Vec<u64>,
}

impl Tally {
    fn add(&mut self, fact: &CallFact) {
        let f = &mut self.figures;
        f.calls += 1;
        self.users.insert(fact.user.clone());
        match fact.outcome {
            Outcome::Ok => {
                f.succeeded += 1;
                f.minutes_saved += fact.minutes_saved.unwrap_or(0.0).max(0.0);
                self.latencies.push(fact.latency_ms);
            }
            Outcome::ToolError | Outcome::Error => {
                f.errors += 1;
                self.latencies.push(fact.latency_ms);
            }
            Outcome::Denied => f.denied += 1,
            Outcome::PendingApproval => f.pending_approval += 1,
            Outcome::InputRequired => {}
        }
    }

    fn finish(mut self) -> Figures {
        let ran = self.figures.succeeded + self.figures.errors;
        self.figures.error_rate = ratio(self.figures.errors, ran);
        self.figures.users = self.users.len() as u64;
        self.figures.minutes_saved = round2(self.figures.minutes_saved);
        self.figures.hours_saved = round2(self.figures.minutes_saved / 60.0);
        self.latencies.sort_unstable();
        self.figures.latency_ms = Percentiles {
            p50: percentile(&self.latencies, 50),
            p95: percentile(&self.latencies, 95),
            p99: percentile(&self.latencies, 99),
        };
        self.figures
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        round4(part as f64 / whole as f64)
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn proposal_stats<'a>(states: impl Iterator<Item = &'a ProposalState>) -> ProposalStats {
    let mut stats = ProposalStats::default();
    for state in states {
        stats.created += 1;
        match state {
            ProposalState::Pending => stats.pending += 1,
            ProposalState::Rejected => stats.rejected += 1,
            ProposalState::Expired => stats.expired += 1,
            // Approved, and perhaps run since.
            _ => stats.approved += 1,
        }
    }
    stats.rejection_rate = ratio(stats.rejected, stats.approved + stats.rejected);
    stats
}

fn feedback_counts<'a>(ratings: impl Iterator<Item = &'a Feedback>) -> FeedbackCounts {
    let mut counts = FeedbackCounts::default();
    for rating in ratings {
        match rating.rating {
            Rating::Up => counts.up += 1,
            Rating::Down => counts.down += 1,
        }
    }
    counts
}

/// The report of `month` from its calls, proposals and ratings; `servers` gives each tool's
/// current estimate and each server's team for calls recorded before teams were.
pub fn report(
    month: Month,
    calls: &[CallFact],
    proposals: &[(String, String, ProposalState)],
    feedback: &[Feedback],
    servers: &[ServerView],
) -> Insights {
    let (from_ms, to_ms) = month.range_ms();
    let team_of = |fact: &CallFact| {
        fact.team.clone().or_else(|| {
            servers
                .iter()
                .find(|s| s.name == fact.server)
                .map(|s| s.owner_team.clone())
        })
    };
    let mut totals = Tally::default();
    let mut tools: BTreeMap<(String, String), (Tally, Option<String>)> = BTreeMap::new();
    let mut by_server: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_team: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_day: BTreeMap<String, Tally> = BTreeMap::new();
    for fact in calls
        .iter()
        .filter(|f| f.time_ms >= from_ms && f.time_ms < to_ms)
    {
        let team = team_of(fact);
        totals.add(fact);
        by_server.entry(fact.server.clone()).or_default().add(fact);
        by_day.entry(day_of(fact.time_ms)).or_default().add(fact);
        if let Some(team) = &team {
            by_team.entry(team.clone()).or_default().add(fact);
        }
        if let Some(tool) = &fact.tool {
            let entry = tools
                .entry((fact.server.clone(), tool.clone()))
                .or_insert_with(|| (Tally::default(), team.clone()));
            entry.0.add(fact);
        }
    }
    let mut tool_rows: Vec<ToolInsight> = tools
        .into_iter()
        .map(|((server, tool), (tally, team))| {
            let estimate = servers
                .iter()
                .find(|s| s.name == server)
                .and_then(|s| s.tools.iter().find(|t| t.definition.name == tool))
                .map(|t| t.minutes_saved);
            let feedback = feedback_counts(
                feedback
                    .iter()
                    .filter(|f| f.server == server && f.tool == tool),
            );
            let proposals = proposal_stats(
                proposals
                    .iter()
                    .filter(|(s, t, _)| s == &server && t == &tool)
                    .map(|(_, _, state)| state),
            );
            ToolInsight {
                server,
                tool,
                team,
                estimate_minutes: estimate,
                figures: tally.finish(),
                feedback,
                proposals,
            }
        })
        .collect();
    tool_rows.sort_by(|a, b| {
        b.figures
            .minutes_saved
            .total_cmp(&a.figures.minutes_saved)
            .then(b.figures.calls.cmp(&a.figures.calls))
            .then((&a.server, &a.tool).cmp(&(&b.server, &b.tool)))
    });
    let groups = |map: BTreeMap<String, Tally>| {
        let mut rows: Vec<GroupInsight> = map
            .into_iter()
            .map(|(name, tally)| GroupInsight {
                name,
                figures: tally.finish(),
            })
            .collect();
        rows.sort_by(|a, b| {
            b.figures
                .minutes_saved
                .total_cmp(&a.figures.minutes_saved)
                .then(a.name.cmp(&b.name))
        });
        rows
    };
    let days = by_day
        .into_iter()
        .map(|(day, tally)| {
            let f = tally.finish();
            DayInsight {
                day,
                calls: f.calls,
                succeeded: f.succeeded,
                errors: f.errors,
                minutes_saved: f.minutes_saved,
                users: f.users,
            }
        })
        .collect();
    Insights {
        month: month.label(),
        from_ms,
        to_ms,
        totals: totals.finish(),
        proposals: proposal_stats(proposals.iter().map(|(_, _, s)| s)),
        feedback: feedback_counts(feedback.iter()),
        tools: tool_rows,
        servers: groups(by_server),
        teams: groups(by_team),
        days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(day: u32, user: &str, tool: &str, outcome: Outcome, latency: u64) -> CallFact {
        let (from, _) = Month::parse("2026-11").unwrap().range_ms();
        CallFact {
            time_ms: from + i64::from(day - 1) * 86_400_000 + 3_600_000,
            user: user.into(),
            server: "sql".into(),
            method: "tools/call".into(),
            tool: Some(tool.into()),
            team: Some("data-platform".into()),
            outcome,
            latency_ms: latency,
            minutes_saved: Some(if tool == "run_query" { 15.0 } else { 2.0 }),
        }
    }

    #[test]
    fn months_are_parsed_and_bounded_in_utc() {
        let november = Month::parse("2026-11").unwrap();
        assert_eq!(november.label(), "2026-11");
        let (from, to) = november.range_ms();
        assert_eq!(to - from, 30 * 86_400_000);
        let (_, end_of_year) = Month::parse("2026-12").unwrap().range_ms();
        assert_eq!(Month::of(end_of_year).label(), "2027-01");
        for bad in ["2026-13", "november", "2026/11", ""] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_saved_counts_only_calls_that_ran_and_succeeded() {
        let month = Month::parse("2026-11").unwrap();
        let calls = vec![
            call(1, "ann", "run_query", Outcome::Ok, 100),
            call(1, "bob", "run_query", Outcome::Ok, 300),
            call(2, "ann", "run_query", Outcome::ToolError, 50),
            call(2, "cat", "list_tables", Outcome::Ok, 10),
            call(3, "dan", "run_query", Outcome::Denied, 0),
            call(3, "dan", "run_write", Outcome::PendingApproval, 0),
            // Another month: not counted.
            call(31, "eve", "run_query", Outcome::Ok, 10),
        ];
        let proposals = vec![
            (
                "sql".to_owned(),
                "run_write".to_owned(),
                ProposalState::Done,
            ),
            (
                "sql".to_owned(),
                "run_write".to_owned(),
                ProposalState::Rejected,
            ),
            (
                "sql".to_owned(),
                "run_write".to_owned(),
                ProposalState::Rejected,
            ),
            (
                "sql".to_owned(),
                "run_write".to_owned(),
                ProposalState::Pending,
            ),
        ];
        let feedback = vec![Feedback {
            id: "f1".into(),
            time_ms: 0,
            user: "ann".into(),
            server: "sql".into(),
            tool: "run_query".into(),
            rating: Rating::Down,
            comment: None,
            audit_id: None,
            surface: None,
        }];
        let report = report(month, &calls, &proposals, &feedback, &[]);
        let t = &report.totals;
        assert_eq!(
            (t.calls, t.succeeded, t.errors, t.denied, t.pending_approval),
            (6, 3, 1, 1, 1)
        );
        assert_eq!(t.minutes_saved, 32.0);
        assert_eq!(t.hours_saved, 0.53);
        assert_eq!(t.users, 4);
        assert_eq!(t.error_rate, 0.25);
        assert_eq!(t.latency_ms.p50, 50);
        assert_eq!(t.latency_ms.p99, 300);
        assert_eq!(report.proposals.rejection_rate, 0.6667);
        let top = &report.tools[0];
        assert_eq!(
            (top.tool.as_str(), top.figures.minutes_saved),
            ("run_query", 30.0)
        );
        assert_eq!(top.feedback, FeedbackCounts { up: 0, down: 1 });
        assert_eq!(report.teams[0].name, "data-platform");
        assert_eq!(report.days.len(), 3);
        assert_eq!(report.days[0].minutes_saved, 30.0);
        let sum: f64 = report.tools.iter().map(|t| t.figures.minutes_saved).sum();
        assert_eq!(sum, t.minutes_saved);
    }
}
