//! Persistence for the registry: the only crate that contains SQL. The registry service talks to a
//! [`Store`]; [`SqlStore`] is the embedded default, and other databases implement the same trait.

mod sql;

use async_trait::async_trait;
use registry_api::{AuditRecord, RegisterServer, ServerView};

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
}

/// Which audit records to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub server: Option<String>,
    pub user: Option<String>,
    pub limit: u32,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Registers a server, or replaces its metadata and tools when it exists.
    async fn upsert_server(
        &self,
        registration: &RegisterServer,
        now_ms: i64,
    ) -> Result<ServerView, StoreError>;
    async fn list_servers(&self) -> Result<Vec<ServerView>, StoreError>;
    async fn get_server(&self, name: &str) -> Result<ServerView, StoreError>;
    /// Appends an audit record durably. Writing the same id twice stores it once.
    async fn append_audit(&self, record: &AuditRecord) -> Result<(), StoreError>;
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
    /// A cheap fingerprint of the catalog (how many servers, and when each last changed): it
    /// differs whenever a server is registered or re-registered, by any registry replica.
    async fn catalog_version(&self) -> Result<String, StoreError>;
    /// Succeeds when the database answers.
    async fn ping(&self) -> Result<(), StoreError>;
}
