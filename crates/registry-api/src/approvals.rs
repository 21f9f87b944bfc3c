//! Humans in the loop: a call that needs a person's approval becomes a proposal (the tool, its
//! arguments, the caller and who must approve), which people approve or reject, one at a time or
//! in batches, and which runs exactly once once approved.

use serde::{Deserialize, Serialize};

/// Who may approve a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub enum Approver {
    /// The requester themself: a simple confirmation.
    Requester,
    /// The server's owner team (its owners and member groups).
    OwnerTeam,
    /// Members of a named group.
    Group(String),
}

impl Approver {
    /// `self`, `owners` or `group:<name>`.
    pub fn parse(text: &str) -> Result<Approver, String> {
        match text {
            "self" => Ok(Approver::Requester),
            "owners" => Ok(Approver::OwnerTeam),
            _ => match text.strip_prefix("group:") {
                Some(group) if !group.trim().is_empty() && !group.contains(',') => {
                    Ok(Approver::Group(group.trim().to_owned()))
                }
                _ => Err(format!(
                    "{text:?} is not an approver: use self, owners or group:<name>"
                )),
            },
        }
    }
}

impl std::fmt::Display for Approver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Approver::Requester => f.write_str("self"),
            Approver::OwnerTeam => f.write_str("owners"),
            Approver::Group(g) => write!(f, "group:{g}"),
        }
    }
}

impl TryFrom<String> for Approver {
    type Error = String;
    fn try_from(text: String) -> Result<Approver, String> {
        Approver::parse(&text)
    }
}

impl From<Approver> for String {
    fn from(approver: Approver) -> String {
        approver.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    /// Waiting for a person.
    Pending,
    /// Approved; not yet run.
    Approved,
    Rejected,
    /// Nobody decided before it expired.
    Expired,
    /// Claimed by a gateway, which is running it.
    Running,
    /// Ran; its result is recorded.
    Done,
    /// Ran and failed, or could not be run.
    Failed,
}

impl ProposalState {
    pub const ALL: [ProposalState; 7] = [
        ProposalState::Pending,
        ProposalState::Approved,
        ProposalState::Rejected,
        ProposalState::Expired,
        ProposalState::Running,
        ProposalState::Done,
        ProposalState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProposalState::Pending => "pending",
            ProposalState::Approved => "approved",
            ProposalState::Rejected => "rejected",
            ProposalState::Expired => "expired",
            ProposalState::Running => "running",
            ProposalState::Done => "done",
            ProposalState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<ProposalState> {
        ProposalState::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// `POST /v1/proposals`: the gateway proposes a call instead of running it. The id is chosen by
/// the gateway, so a retried proposal is stored once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewProposal {
    pub id: String,
    pub server: String,
    pub tool: String,
    /// The call's arguments, kept to run it once approved; shown only to its approvers and the
    /// requester.
    pub arguments: serde_json::Value,
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
    pub surface: String,
    /// The chat channel a bot's call was asked in: the approved call runs there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The agent or client that made the call, as it named itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Why approval is needed (the deciding policy).
    pub reason: String,
    pub approver: Approver,
    pub expires_at_ms: i64,
    /// What the call would do, as the tool answered a preview of it before it was proposed
    /// (`{"summary": ..., "details": ...}`); shown to the approvers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<serde_json::Value>,
}

/// A proposal and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proposal {
    #[serde(flatten)]
    pub proposal: NewProposal,
    /// Hex SHA-256 of the canonical JSON of the arguments.
    pub argument_digest: String,
    pub state: ProposalState,
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The gateway running it, while `running`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// The tool's result (`done`) or why it failed (`failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalList {
    pub proposals: Vec<Proposal>,
}

/// `POST /v1/proposals/approve` and `.../reject`: decide many proposals with one comment.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecideProposals {
    pub ids: Vec<String>,
    /// Required when rejecting: the agent is told it.
    #[serde(default)]
    pub comment: String,
}

/// One proposal a batch decision left as it was, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refused {
    pub id: String,
    pub reason: String,
}

/// What a batch decision did: each proposal is decided on its own (one the caller may not decide,
/// or that is no longer pending, is refused without stopping the others).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchOutcome {
    pub decided: Vec<Proposal>,
    pub refused: Vec<Refused>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_read_and_write_the_same_words() {
        for text in ["self", "owners", "group:dba"] {
            assert_eq!(Approver::parse(text).unwrap().to_string(), text);
        }
        for bad in ["", "group:", "group:a,b", "admins"] {
            assert!(Approver::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&Approver::Group("dba".into())).unwrap();
        assert_eq!(json, "\"group:dba\"");
        assert!(serde_json::from_str::<Approver>("\"everyone\"").is_err());
    }
}
