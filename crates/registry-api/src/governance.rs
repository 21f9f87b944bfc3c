//! Governance: teams, the reviews a server passes before production (Security, Legal/Privacy,
//! GenAI), the audit of every change to the catalog, and `plan_round`, the one rule for which
//! reviews a registration opens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ServerView;

/// A team that owns servers: its owners (users), the groups its members are in, and where to
/// ask for help.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Team {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Users who own the team's servers.
    #[serde(default)]
    pub owners: Vec<String>,
    /// Groups whose members belong to the team.
    #[serde(default)]
    pub member_groups: Vec<String>,
    pub support_channel: String,
    #[serde(default)]
    pub updated_at_ms: i64,
}

impl Team {
    /// Every problem with the team's fields, for `PUT /v1/teams/{name}`.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !catalog::is_valid_name(&self.name) {
            problems.push(format!(
                "name: {:?} is not a valid team name: use 1-64 lowercase letters, digits and '-', starting with a letter",
                self.name
            ));
        }
        if self.support_channel.trim().is_empty() {
            problems.push("support_channel: must not be empty".into());
        }
        if self.owners.is_empty() && self.member_groups.is_empty() {
            problems.push("a team needs at least one owner or member group".into());
        }
        for (field, names) in [
            ("owners", &self.owners),
            ("member_groups", &self.member_groups),
        ] {
            if names.iter().any(|n| n.trim().is_empty() || n.contains(',')) {
                problems.push(format!(
                    "{field}: names must be non-empty and contain no ','"
                ));
            }
        }
        problems
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamList {
    pub teams: Vec<Team>,
}

/// The kinds of review a server passes before production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ReviewKind {
    #[serde(rename = "security")]
    Security,
    #[serde(rename = "legal-privacy")]
    LegalPrivacy,
    /// Tool definitions are prompts to a model: the GenAI review reads them, with the automated
    /// findings attached.
    #[serde(rename = "genai")]
    Genai,
}

impl ReviewKind {
    pub const ALL: [ReviewKind; 3] = [
        ReviewKind::Security,
        ReviewKind::LegalPrivacy,
        ReviewKind::Genai,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewKind::Security => "security",
            ReviewKind::LegalPrivacy => "legal-privacy",
            ReviewKind::Genai => "genai",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewKind> {
        ReviewKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewState {
    Pending,
    Approved,
    Rejected,
    /// A later change opened a new round before this review was decided.
    Superseded,
}

impl ReviewState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewState::Pending => "pending",
            ReviewState::Approved => "approved",
            ReviewState::Rejected => "rejected",
            ReviewState::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewState> {
        [
            ReviewState::Pending,
            ReviewState::Approved,
            ReviewState::Rejected,
            ReviewState::Superseded,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// What a round of reviews decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReviewScope {
    /// The whole server (first registration, or a change to who may use it or what data it
    /// handles): until the round is approved the server is not approved for production.
    Server,
    /// Only changed or new tools: the server stays approved and those tools are withheld.
    Tools,
}

impl ReviewScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewScope::Server => "server",
            ReviewScope::Tools => "tools",
        }
    }

    pub fn parse(s: &str) -> Option<ReviewScope> {
        match s {
            "server" => Some(ReviewScope::Server),
            "tools" => Some(ReviewScope::Tools),
            _ => None,
        }
    }
}

/// An automated finding on one tool, attached to the GenAI review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewFinding {
    pub tool: String,
    pub code: String,
    pub message: String,
}

/// One review of one round. Its id is `<server>.<round>.<kind>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Review {
    pub id: String,
    pub server: String,
    /// The server revision that opened the round; every review of a round shares it.
    pub round: i64,
    pub scope: ReviewScope,
    pub kind: ReviewKind,
    pub state: ReviewState,
    /// Why the round opened, e.g. "first registration" or "tool definitions changed: search".
    pub reason: String,
    /// The tool definitions under review, by name: their definition hashes. Approving the round
    /// pins exactly these.
    pub tools: BTreeMap<String, String>,
    /// The automated findings on those definitions (GenAI reviews only).
    #[serde(default)]
    pub findings: Vec<ReviewFinding>,
    pub opened_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewList {
    pub reviews: Vec<Review>,
}

/// `POST /v1/reviews/{id}/approve` and `.../reject`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecideReview {
    /// Required when rejecting: what the owners must change.
    #[serde(default)]
    pub comment: String,
}

/// One change to the catalog: who did what, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeRecord {
    pub seq: i64,
    pub time_ms: i64,
    pub actor: String,
    /// What changed: `server:<name>`, `team:<name>`, `review:<id>`.
    pub subject: String,
    /// `server.registered`, `server.updated`, `team.saved`, `review.opened`,
    /// `review.approved`, `review.rejected`, `review.superseded`, `server.approved`, ...
    pub action: String,
    #[serde(default)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangeList {
    pub changes: Vec<ChangeRecord>,
}

/// The reviews a registration opens.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundPlan {
    pub scope: ReviewScope,
    pub kinds: Vec<ReviewKind>,
    pub reason: String,
    /// The definitions under review, by tool name.
    pub tools: BTreeMap<String, String>,
}

/// `registration` with the `observed` tool definitions in place of the recorded ones of the same
/// name, and observed tools it did not know appended. Returns whether anything changed.
pub fn merge_observed(
    registration: &mut crate::RegisterServer,
    observed: &[crate::ToolDefinition],
) -> bool {
    let mut changed = false;
    for tool in observed {
        match registration.tools.iter_mut().find(|t| t.name == tool.name) {
            Some(known) if known == tool => {}
            Some(known) => {
                *known = tool.clone();
                changed = true;
            }
            None => {
                registration.tools.push(tool.clone());
                changed = true;
            }
        }
    }
    changed
}

/// A digest of everything about a server whose change needs Security and Legal/Privacy review:
/// its owner, who may use it, the data it handles, its sensitivity, and its policies.
pub fn access_digest(server: &ServerView) -> String {
    let tools: Vec<_> = server
        .tools
        .iter()
        .map(|t| {
            serde_json::json!([
                t.definition.name,
                t.sensitivity,
                t.policy.as_ref().map(|p| (&p.name, &p.groups)),
                t.approval
            ])
        })
        .collect();
    catalog::json_digest(&serde_json::json!({
        "owner_team": server.owner_team,
        "allowed_groups": server.allowed_groups,
        "data_classification": server.data_classification,
        "sensitivity": server.sensitivity,
        "policies": server.policies,
        "tools": tools,
    }))
}

/// Which reviews registering `next` opens, given the server as it was (`previous`, with its
/// approval state and approved tool hashes; `next`'s tools must already carry the approved
/// hashes over by name). `None` when nothing that needs review changed.
///
/// - A first registration, or any change while the server is not approved, opens a server
///   round: Security and Legal/Privacy, plus GenAI when a tool awaits approval.
/// - A change to the access digest of an approved server does the same, and revokes approval.
/// - Otherwise changed or new tools open a tools round (GenAI and Security) over just those
///   tools; the server stays approved and the tools are withheld until the round is approved.
pub fn plan_round(previous: Option<&ServerView>, next: &ServerView) -> Option<RoundPlan> {
    let unapproved: BTreeMap<String, String> = next
        .tools
        .iter()
        .filter(|t| !t.approved)
        .map(|t| (t.definition.name.clone(), t.definition_hash.clone()))
        .collect();
    let all: BTreeMap<String, String> = next
        .tools
        .iter()
        .map(|t| (t.definition.name.clone(), t.definition_hash.clone()))
        .collect();
    let server_round = |reason: String| {
        let mut kinds = vec![ReviewKind::Security, ReviewKind::LegalPrivacy];
        if !unapproved.is_empty() {
            kinds.push(ReviewKind::Genai);
        }
        Some(RoundPlan {
            scope: ReviewScope::Server,
            kinds,
            reason,
            tools: all.clone(),
        })
    };
    let Some(previous) = previous else {
        return server_round("first registration".into());
    };
    let changed_tools: Vec<&str> = next
        .tools
        .iter()
        .filter(|t| {
            previous
                .tools
                .iter()
                .find(|p| p.definition.name == t.definition.name)
                .is_none_or(|p| p.definition_hash != t.definition_hash)
        })
        .map(|t| t.definition.name.as_str())
        .collect();
    let access_changed = access_digest(previous) != access_digest(next);
    if !access_changed && changed_tools.is_empty() {
        return None;
    }
    let mut what = Vec::new();
    if access_changed {
        what.push("owner, access, data handling or policies changed".to_owned());
    }
    if !changed_tools.is_empty() {
        what.push(format!(
            "tool definitions changed or added: {}",
            changed_tools.join(", ")
        ));
    }
    let reason = what.join("; ");
    if access_changed || !previous.approved {
        return server_round(reason);
    }
    if unapproved.is_empty() {
        // Tools changed back to their approved definitions: nothing left to review.
        return None;
    }
    Some(RoundPlan {
        scope: ReviewScope::Tools,
        kinds: vec![ReviewKind::Genai, ReviewKind::Security],
        reason,
        tools: unapproved,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{ToolDefinition, ToolView};

    fn tool(name: &str, description: &str, approved: Option<&str>) -> ToolView {
        let t = ToolView::new(
            ToolDefinition {
                name: name.into(),
                title: None,
                description: Some(description.into()),
                input_schema: serde_json::json!({"type": "object"}),
                output_schema: None,
                annotations: None,
            },
            1.0,
            "low".into(),
            None,
        );
        let hash = approved.map(|a| {
            if a == "same" {
                t.definition_hash.clone()
            } else {
                a.into()
            }
        });
        t.with_approved_hash(hash)
    }

    /// A server record with these tools, approved or not (shared with the crate's other tests).
    pub(crate) fn server(tools: Vec<ToolView>, approved: bool) -> ServerView {
        let text = r##"{"name":"s","description":"d","owner_team":"t","support_channel":"#c","version":"1",
            "endpoint":"http://x/mcp","environment":"prod","allowed_groups":[],"status":"active",
            "registered_at_ms":0,"updated_at_ms":0,"tools":[]}"##;
        let mut s: ServerView = serde_json::from_str(text).unwrap();
        s.tools = tools;
        s.approved = approved;
        s
    }

    #[test]
    fn a_first_registration_opens_all_three_reviews() {
        let next = server(vec![tool("a", "A", None)], false);
        let plan = plan_round(None, &next).unwrap();
        assert_eq!(plan.scope, ReviewScope::Server);
        assert_eq!(
            plan.kinds,
            [
                ReviewKind::Security,
                ReviewKind::LegalPrivacy,
                ReviewKind::Genai
            ]
        );
        assert_eq!(plan.tools.len(), 1);
        // A server without tools has nothing for GenAI review.
        let plan = plan_round(None, &server(vec![], false)).unwrap();
        assert_eq!(plan.kinds, [ReviewKind::Security, ReviewKind::LegalPrivacy]);
    }

    #[test]
    fn nothing_changed_opens_nothing() {
        let prev = server(vec![tool("a", "A", Some("same"))], true);
        assert_eq!(plan_round(Some(&prev), &prev.clone()), None);
    }

    #[test]
    fn a_changed_tool_on_an_approved_server_opens_a_tools_round_for_it_alone() {
        let prev = server(
            vec![tool("a", "A", Some("same")), tool("b", "B", Some("same"))],
            true,
        );
        let approved_a = prev.tools[0].definition_hash.clone();
        let next = server(
            vec![
                tool("a", "A, now different", Some(&approved_a)),
                tool("b", "B", Some("same")),
            ],
            true,
        );
        let plan = plan_round(Some(&prev), &next).unwrap();
        assert_eq!(plan.scope, ReviewScope::Tools);
        assert_eq!(plan.kinds, [ReviewKind::Genai, ReviewKind::Security]);
        assert_eq!(plan.tools.keys().collect::<Vec<_>>(), ["a"]);
        assert!(
            plan.reason.contains("tool definitions changed or added: a"),
            "{}",
            plan.reason
        );
    }

    #[test]
    fn an_access_change_reopens_the_server_round() {
        let prev = server(vec![tool("a", "A", Some("same"))], true);
        let mut next = prev.clone();
        next.allowed_groups = vec!["everyone-else".into()];
        let plan = plan_round(Some(&prev), &next).unwrap();
        assert_eq!(plan.scope, ReviewScope::Server);
        // The tool itself is approved: no GenAI review.
        assert_eq!(plan.kinds, [ReviewKind::Security, ReviewKind::LegalPrivacy]);
        let mut next = prev.clone();
        next.data_classification = "restricted".into();
        assert_eq!(
            plan_round(Some(&prev), &next).unwrap().scope,
            ReviewScope::Server
        );
        // Cosmetic changes need no review.
        let mut next = prev.clone();
        next.description = "better words".into();
        next.endpoint = "http://elsewhere/mcp".into();
        assert_eq!(plan_round(Some(&prev), &next), None);
    }

    #[test]
    fn a_tool_changed_back_to_its_approved_definition_needs_nothing() {
        let approved = tool("a", "A", Some("same"));
        let hash = approved.definition_hash.clone();
        let prev = server(vec![tool("a", "changed", Some(&hash))], true);
        let next = server(vec![approved], true);
        assert_eq!(plan_round(Some(&prev), &next), None);
    }
}
