//! The server manifest: the TOML file a team ships with its MCP server, naming the server, its owner
//! team and support channel, who may use it, its named tool policies and, per tool, the minutes a
//! call saves and how sensitive it is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A parsed `switchboard.toml` manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub server: ServerSection,
    #[serde(default)]
    pub access: AccessSection,
    /// Named policies that tools refer to (Pinterest's `@authorize_tool(policy=...)`).
    #[serde(default)]
    pub policies: BTreeMap<String, PolicySection>,
    /// Per-tool metadata, keyed by tool name.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolSection>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Unique server name: lowercase letters, digits and `-`, used in gateway routes.
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    pub description: String,
    pub owner_team: String,
    pub support_channel: String,
    #[serde(default = "default_version")]
    pub version: String,
    /// Where the server's documentation lives.
    #[serde(default)]
    pub docs_url: Option<String>,
    /// The most sensitive class of data the server reads or returns.
    #[serde(default)]
    pub data_classification: DataClassification,
    /// The server's sensitivity tier: how much harm a misuse of it could do.
    #[serde(default)]
    pub sensitivity: Sensitivity,
}

/// The classes of data a server may handle, least sensitive first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataClassification {
    Public,
    #[default]
    Internal,
    Confidential,
    Restricted,
}

impl DataClassification {
    pub fn as_str(self) -> &'static str {
        match self {
            DataClassification::Public => "public",
            DataClassification::Internal => "internal",
            DataClassification::Confidential => "confidential",
            DataClassification::Restricted => "restricted",
        }
    }
}

fn default_version() -> String {
    "0.1.0".to_owned()
}

/// Who may use the server at all (business-group gating).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSection {
    /// Groups whose members may use the server; empty means every authenticated caller.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
}

/// A named rule a tool can point at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// The caller must belong to at least one of these groups.
    pub groups: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSection {
    /// The owner's directional estimate of the minutes one successful call saves.
    pub minutes_saved: f64,
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// The name of a policy in `[policies]` that callers of this tool must satisfy.
    #[serde(default)]
    pub policy: Option<String>,
    /// Who must approve each call before it runs: `self` (the caller confirms), `owners` (the
    /// owner team), `group:<name>`, or `none`. Unset: `self` for tools annotated
    /// `destructiveHint: true`, `owners` for `sensitivity = "high"`, otherwise none.
    #[serde(default)]
    pub approval: Option<String>,
    /// Whether the tool answers a preview of a call (the server SDK's `preview`): before
    /// proposing a call for approval, the gateway sends it with the preview key, the tool says
    /// what it would change without changing it, and the approvers see that answer.
    #[serde(default)]
    pub preview: bool,
    /// Arguments never written to the audit (top-level names, or dotted paths into objects:
    /// `conf.api_key`); they are recorded as `"[redacted]"`. Arguments whose names look like
    /// secrets (password, secret, token, key, credential) are redacted whatever this says.
    #[serde(default)]
    pub sensitive_arguments: Vec<String>,
}

/// Whether `text` names an approver: `self`, `owners` or `group:<name>`.
pub fn is_approver(text: &str) -> bool {
    matches!(text, "self" | "owners")
        || text
            .strip_prefix("group:")
            .is_some_and(|g| !g.trim().is_empty() && !g.contains(',') && !g.contains('"'))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    #[default]
    Low,
    Medium,
    High,
}

impl Sensitivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Low => "low",
            Sensitivity::Medium => "medium",
            Sensitivity::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(Sensitivity::Low),
            "medium" => Some(Sensitivity::Medium),
            "high" => Some(Sensitivity::High),
            _ => None,
        }
    }
}

/// One thing wrong with a manifest, located by a dotted path such as `tools.search_docs.policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl Manifest {
    /// Parses a manifest and validates it, returning every problem at once.
    pub fn parse(text: &str) -> Result<Manifest, Vec<Problem>> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            vec![Problem {
                path: "(manifest)".to_owned(),
                message: e.message().to_owned(),
            }]
        })?;
        let problems = manifest.validate();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(problems)
        }
    }

    /// Checks the manifest's own consistency; an empty list means it is valid.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |path: String, message: String| problems.push(Problem { path, message });
        if !is_valid_name(&self.server.name) {
            problem(
                "server.name".into(),
                format!(
                    "{:?} is not a valid server name: use 1-64 lowercase letters, digits and '-', starting with a letter",
                    self.server.name
                ),
            );
        }
        for (field, value) in [
            ("server.description", &self.server.description),
            ("server.owner_team", &self.server.owner_team),
            ("server.support_channel", &self.server.support_channel),
        ] {
            if value.trim().is_empty() {
                problem(field.into(), "must not be empty".into());
            }
        }
        if let Some(url) = &self.server.docs_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            problem(
                "server.docs_url".into(),
                format!("must be an http(s) URL, got {url:?}"),
            );
        }
        for (name, policy) in &self.policies {
            if policy.groups.is_empty() {
                problem(
                    format!("policies.{name}.groups"),
                    "a policy must name at least one group".into(),
                );
            }
        }
        for (name, tool) in &self.tools {
            if !tool.minutes_saved.is_finite() || tool.minutes_saved < 0.0 {
                problem(
                    format!("tools.{name}.minutes_saved"),
                    format!("must be a number >= 0, got {}", tool.minutes_saved),
                );
            }
            if let Some(approval) = &tool.approval
                && approval != "none"
                && !is_approver(approval)
            {
                problem(
                    format!("tools.{name}.approval"),
                    format!(
                        "{approval:?} is not an approver: use self, owners, group:<name> or none"
                    ),
                );
            }
            if let Some(policy) = &tool.policy
                && !self.policies.contains_key(policy)
            {
                problem(
                    format!("tools.{name}.policy"),
                    format!("names policy {policy:?}, which is not defined in [policies]"),
                );
            }
        }
        problems
    }

    /// The groups a caller must be in (any one of) to call `tool`, if the tool names a policy.
    pub fn tool_policy(&self, tool: &str) -> Option<(&str, &PolicySection)> {
        let name = self.tools.get(tool)?.policy.as_deref()?;
        self.policies.get(name).map(|p| (name, p))
    }
}

/// Server names appear in URLs and audit records, so they are restricted to a safe alphabet.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[&str]) {
        let got: Vec<String> = match Manifest::parse(text) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(got, expected);
    }

    const GOOD: &str = r##"
        [server]
        name = "presto"
        description = "Query Presto"
        owner_team = "data-platform"
        support_channel = "#presto-help"

        [access]
        allowed_groups = ["ads-eng", "finance"]

        [policies.revenue]
        groups = ["ads-eng"]

        [tools.revenue_metrics]
        minutes_saved = 12.5
        sensitivity = "high"
        policy = "revenue"
    "##;

    #[test]
    fn accepts_a_valid_manifest() {
        check(GOOD, &[]);
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.tool_policy("revenue_metrics").unwrap().0, "revenue");
        assert_eq!(m.tools["revenue_metrics"].sensitivity, Sensitivity::High);
    }

    #[test]
    fn reports_every_problem_at_once() {
        check(
            r##"
            [server]
            name = "Bad Name"
            description = ""
            owner_team = "t"
            support_channel = "#c"
            [policies.empty]
            groups = []
            [tools.a]
            minutes_saved = -1
            policy = "missing"
            "##,
            &[
                "server.name: \"Bad Name\" is not a valid server name: use 1-64 lowercase letters, digits and '-', starting with a letter",
                "server.description: must not be empty",
                "policies.empty.groups: a policy must name at least one group",
                "tools.a.minutes_saved: must be a number >= 0, got -1",
                "tools.a.policy: names policy \"missing\", which is not defined in [policies]",
            ],
        );
    }

    #[test]
    fn rejects_unknown_fields_with_a_clear_message() {
        let err = Manifest::parse("[server]\nname='x'\ndescription='d'\nowner_team='t'\nsupport_channel='c'\nowner='me'\n")
            .unwrap_err();
        assert!(
            err[0].message.contains("unknown field `owner`"),
            "{}",
            err[0]
        );
    }

    #[test]
    fn names() {
        assert!(is_valid_name("knowledge"));
        assert!(is_valid_name("sql-2"));
        assert!(!is_valid_name("2sql"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name(&"a".repeat(65)));
    }
}
