//! The north-star and its companions on the wire: people's feedback on tools (`/v1/feedback`),
//! the light view of a call the report counts ([`CallFact`]), and the month's report
//! (`/v1/insights`): time saved (invocations × the owner's minutes-saved estimate at the time of
//! each call) per tool, server, team and day, monthly active users, error and approval-rejection
//! rates, latency percentiles, and feedback beside each tool's estimate.

use serde::{Deserialize, Serialize};

use crate::Outcome;

/// A thumbs up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    Up,
    Down,
}

/// `POST /v1/feedback`: what a surface sends when a person rates a tool's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewFeedback {
    pub server: String,
    pub tool: String,
    pub rating: Rating,
    /// What the person said, at most 2000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The audit record of the call being rated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    /// Where the person rated it (`web-chat`, `slack`, `ide`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<String>,
}

/// A stored rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Feedback {
    pub id: String,
    pub time_ms: i64,
    /// Who rated (the authenticated caller).
    pub user: String,
    pub server: String,
    pub tool: String,
    pub rating: Rating,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<String>,
}

/// One call as the report counts it (an audit record without its arguments and detail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallFact {
    pub time_ms: i64,
    pub user: String,
    pub server: String,
    pub method: String,
    pub tool: Option<String>,
    pub team: Option<String>,
    pub outcome: Outcome,
    pub latency_ms: u64,
    pub minutes_saved: Option<f64>,
}

/// How many proposals of a tool were made in a period, by what became of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalStats {
    pub created: u64,
    pub approved: u64,
    pub rejected: u64,
    pub expired: u64,
    pub pending: u64,
    /// Rejected out of decided (approved + rejected); 0 when none was decided.
    pub rejection_rate: f64,
}

/// Thumbs up and down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedbackCounts {
    pub up: u64,
    pub down: u64,
}

/// Latency percentiles of the calls that ran, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Percentiles {
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
}

/// The figures of one group of calls (everything, a server, a team, a tool, a day).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Figures {
    /// Tool calls that reached the gateway (denied and pending ones included).
    pub calls: u64,
    /// Calls that ran and succeeded: what time saved counts.
    pub succeeded: u64,
    /// Calls that ran and failed (a tool error, or the server failed).
    pub errors: u64,
    /// Calls the gateway refused.
    pub denied: u64,
    /// Calls that became proposals and waited for a person.
    pub pending_approval: u64,
    /// errors / (succeeded + errors); 0 when nothing ran.
    pub error_rate: f64,
    /// Σ over succeeded calls of the minutes-saved estimate at the time of each call.
    pub minutes_saved: f64,
    pub hours_saved: f64,
    /// Distinct callers.
    pub users: u64,
    pub latency_ms: Percentiles,
}

/// A tool's month, with what people said of it beside its owner's estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolInsight {
    pub server: String,
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The owner's current estimate of the minutes one successful call saves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate_minutes: Option<f64>,
    #[serde(flatten)]
    pub figures: Figures,
    pub feedback: FeedbackCounts,
    pub proposals: ProposalStats,
}

/// A named group's month (a server or a team).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupInsight {
    pub name: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// A day of the month (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayInsight {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub calls: u64,
    pub succeeded: u64,
    pub errors: u64,
    pub minutes_saved: f64,
    pub users: u64,
}

/// `GET /v1/insights?month=YYYY-MM`: the month's north-star report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Insights {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub from_ms: i64,
    /// Exclusive.
    pub to_ms: i64,
    /// Every tool call of the month; `users` is the monthly active users.
    pub totals: Figures,
    pub proposals: ProposalStats,
    pub feedback: FeedbackCounts,
    /// By time saved, most first.
    pub tools: Vec<ToolInsight>,
    pub servers: Vec<GroupInsight>,
    pub teams: Vec<GroupInsight>,
    pub days: Vec<DayInsight>,
}
