//! Persistence for the registry: the only crate that contains SQL. The registry service talks to a
//! [`Store`]; [`SqlStore`] is the embedded default, and other databases implement the same trait.

mod sql;
#[cfg(feature = "testing")]
pub mod testing;

use async_trait::async_trait;
use registry_api::{
    AuditRecord, CallFact, ChangeRecord, Feedback, LiveStatus, NewProposal, Outcome, Proposal,
    ProposalState, RegisterServer, Review, ReviewState, ServerView, Team,
};

pub use sql::SqlStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The request contradicts what is stored (an unknown owner team, say).
    #[error("{0}")]
    Invalid(String),
}

/// Which reviews to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub server: Option<String>,
    pub state: Option<ReviewState>,
    pub limit: u32,
}

/// Which proposals to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct ProposalFilter {
    pub state: Option<ProposalState>,
    pub server: Option<String>,
    pub user: Option<String>,
    pub limit: u32,
}

/// Which catalog changes to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    /// `server:<name>`, `team:<name>` or `review:<id>`; a server's subject also matches its
    /// reviews.
    pub subject: Option<String>,
    pub limit: u32,
}

/// Which audit records to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub server: Option<String>,
    pub user: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<Outcome>,
    /// Records at or after this time.
    pub from_ms: Option<i64>,
    /// Records before this time.
    pub to_ms: Option<i64>,
    /// Text that must appear (any case) in the user, tool, detail or arguments.
    pub text: Option<String>,
    /// Oldest first, and only records after this `(time_ms, id)`: for paging through an export.
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Registers a server, or replaces its metadata and tools when it exists, in one
    /// transaction with what follows from it: the review round [`registry_api::plan_round`]
    /// asks for (superseding undecided reviews), the loss of production approval when the
    /// round is a server round, and a change record by `actor`. Approved tool hashes carry over
    /// by tool name. The owner team must exist.
    async fn upsert_server(
        &self,
        registration: &RegisterServer,
        actor: &str,
        now_ms: i64,
    ) -> Result<ServerView, StoreError>;
    async fn list_servers(&self) -> Result<Vec<ServerView>, StoreError>;
    async fn get_server(&self, name: &str) -> Result<ServerView, StoreError>;
    /// The server's registration as last stored: manifest, endpoint, environment, policies, and
    /// the tool definitions on record.
    async fn get_registration(&self, name: &str) -> Result<RegisterServer, StoreError>;
    /// Appends an audit record durably. Writing the same id twice stores it once.
    /// Stores audit records in one transaction (one sync to disk for the batch); a record id
    /// already stored is skipped.
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError>;
    /// Audit records, newest first (oldest first when paging with `after`).
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
    /// The tool calls (`tools/call`) recorded in `[from_ms, to_ms)`, as the report counts them.
    async fn call_facts(&self, from_ms: i64, to_ms: i64) -> Result<Vec<CallFact>, StoreError>;
    /// Deletes the audit records older than `before_ms` (the retention policy); returns how
    /// many.
    async fn purge_audit(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// Records that gateway replica `id` is alive at `now_ms`; returns how many replicas were
    /// seen since `since_ms` (it included), forgetting ones silent for long.
    async fn gateway_heartbeat(
        &self,
        id: &str,
        url: &str,
        now_ms: i64,
        since_ms: i64,
    ) -> Result<u32, StoreError>;
    async fn add_feedback(&self, feedback: &Feedback) -> Result<(), StoreError>;
    /// Ratings given in `[from_ms, to_ms)`, oldest first.
    async fn list_feedback(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Feedback>, StoreError>;
    /// How many proposals are in each state now (pending ones past expiry count as expired).
    async fn proposal_counts(&self, now_ms: i64) -> Result<Vec<(ProposalState, u64)>, StoreError>;
    /// `(server, tool, state)` of the proposals made in `[from_ms, to_ms)`.
    async fn proposal_facts(
        &self,
        from_ms: i64,
        to_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<(String, String, ProposalState)>, StoreError>;
    /// A cheap fingerprint of the catalog (how many servers and teams, and when each last
    /// changed): it differs whenever a server is registered, changed or approved, or a team
    /// changes, by any registry replica.
    async fn catalog_version(&self) -> Result<String, StoreError>;
    /// Creates or replaces a team (owners, member groups, support channel).
    async fn put_team(&self, team: &Team, actor: &str, now_ms: i64) -> Result<Team, StoreError>;
    async fn list_teams(&self) -> Result<Vec<Team>, StoreError>;
    async fn get_team(&self, name: &str) -> Result<Team, StoreError>;
    async fn list_reviews(&self, filter: &ReviewFilter) -> Result<Vec<Review>, StoreError>;
    async fn get_review(&self, id: &str) -> Result<Review, StoreError>;
    /// Approves or rejects a pending review (a decided one is a conflict). When the approval
    /// completes its round, the round's tool definitions are pinned as approved and, for a
    /// server round, the server becomes approved for production; all in one transaction.
    async fn decide_review(
        &self,
        id: &str,
        approve: bool,
        actor: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Review, StoreError>;
    /// Records the outcome of a live probe (keeping when the server was last seen healthy).
    async fn put_status(&self, status: &LiveStatus) -> Result<LiveStatus, StoreError>;
    async fn list_statuses(&self) -> Result<Vec<LiveStatus>, StoreError>;
    async fn list_changes(&self, filter: &ChangeFilter) -> Result<Vec<ChangeRecord>, StoreError>;
    /// Stores a proposal (pending). Proposing the same id again returns the stored one.
    async fn create_proposal(
        &self,
        proposal: &NewProposal,
        now_ms: i64,
    ) -> Result<Proposal, StoreError>;
    /// A proposal; a pending one past its expiry reads (and is recorded) as expired.
    async fn get_proposal(&self, id: &str, now_ms: i64) -> Result<Proposal, StoreError>;
    async fn list_proposals(
        &self,
        filter: &ProposalFilter,
        now_ms: i64,
    ) -> Result<Vec<Proposal>, StoreError>;
    /// Approves or rejects a pending, unexpired proposal (anything else is a conflict), with a
    /// change record by `actor`, in one transaction.
    async fn decide_proposal(
        &self,
        id: &str,
        approve: bool,
        actor: &str,
        comment: &str,
        now_ms: i64,
    ) -> Result<Proposal, StoreError>;
    /// Claims an approved proposal for running: exactly one claimant gets it (`None` for the
    /// others, or when it is not approved). A claim older than `lease_ms` without a result (its
    /// gateway died while running it) can be taken over.
    async fn claim_proposal(
        &self,
        id: &str,
        claimant: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Proposal>, StoreError>;
    /// Records what running a claimed proposal gave (`done`, or `failed`); only its claimant may.
    async fn finish_proposal(
        &self,
        id: &str,
        claimant: &str,
        ok: bool,
        result: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Proposal, StoreError>;
    /// Succeeds when the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
