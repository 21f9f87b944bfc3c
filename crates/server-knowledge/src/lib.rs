//! The Knowledge MCP server: indexes a folder of Markdown and text documents with tantivy (BM25,
//! English stemming), section by section, and serves `search_docs` (hits cited by document,
//! section and line range) and `get_doc`, each showing a caller only the documents their groups may
//! read. Without a folder it serves the bundled sample corpus of runbooks and guides.

mod chunk;
mod corpus;
mod index;

use std::sync::Arc;

use rmcp::{
    RoleServer, ServerHandler,
    handler::server::{
        router::tool::ToolRouter,
        wrapper::{Json, Parameters},
    },
    model::{CallToolResult, ContentBlock, ServerConfig},
    service::RequestContext,
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use chunk::{Section, sections};
pub use corpus::{
    Document, Fingerprint, GitSource, RECORDS, Sources, bundled_corpus, fingerprint, load_folder,
};
pub use index::{Changes, Hit, KnowledgeIndex};

/// Keeps `index` in step with the folders of `sources`: every `every`, when any document's path,
/// size or modification time changed, the folders are read again and only what changed is
/// re-indexed. A folder that cannot be read keeps the index as it was (and says so in the log).
pub fn watch(
    index: Arc<KnowledgeIndex>,
    sources: Sources,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = sources.fingerprint().ok().flatten();
        loop {
            tokio::time::sleep(every).await;
            let (index, sources) = (index.clone(), sources.clone());
            let last = seen.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let now = sources.fingerprint()?;
                if now == last {
                    return Ok((now, None));
                }
                let changes = index.update(sources.load()?)?;
                Ok::<_, anyhow::Error>((now, Some(changes)))
            })
            .await;
            match outcome {
                Ok(Ok((now, changes))) => {
                    if let Some(changes) = changes.filter(|c| !c.is_empty()) {
                        tracing::info!(
                            added = changes.added.len(),
                            changed = changes.changed.len(),
                            removed = changes.removed.len(),
                            "re-indexed the knowledge folders"
                        );
                    }
                    seen = now;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not re-index the knowledge folders; keeping the index as it was")
                }
                Err(e) => tracing::warn!(error = %e, "the re-indexing task failed"),
            }
        }
    })
}

/// The bundled manifest.
pub const MANIFEST: &str = include_str!("../switchboard.toml");

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// What to look for, in plain words (for example "spark executor out of memory").
    pub query: String,
    /// How many hits to return, 1 to 20 (default 5).
    #[serde(default)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchResults {
    /// Hits, best first.
    pub hits: Vec<Hit>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct GetDocArgs {
    /// The document's path, as returned by `search_docs` (for example "runbooks/spark-failed-job.md").
    pub path: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DocContent {
    pub path: String,
    pub title: String,
    /// The full Markdown or text of the document.
    pub content: String,
}

/// The server handler; cheap to clone (one per session or stateless request).
#[derive(Clone)]
pub struct Knowledge {
    index: Arc<KnowledgeIndex>,
    info: ServerConfig,
    tool_router: ToolRouter<Knowledge>,
}

/// The groups of the caller behind `ctx` (none when the transport established no caller).
fn groups_of(ctx: &RequestContext<RoleServer>) -> Vec<String> {
    server_sdk::caller_of(ctx)
        .map(|c| c.groups)
        .unwrap_or_default()
}

#[tool_router]
impl Knowledge {
    /// Builds the handler over `index`, with `tool_router` being the governed router (see
    /// [`Knowledge::tools`] and `server_sdk::Governance::govern`).
    pub fn new(
        index: Arc<KnowledgeIndex>,
        info: ServerConfig,
        tool_router: ToolRouter<Knowledge>,
    ) -> Knowledge {
        Knowledge {
            index,
            info,
            tool_router,
        }
    }

    /// The ungoverned tool router, to be wrapped by the SDK.
    pub fn tools() -> ToolRouter<Knowledge> {
        Self::tool_router()
    }

    #[tool(
        description = "Search company runbooks, guides and policies. Returns ranked passages, each with its document's title and path, the section it is in, the lines it spans, a citation, a snippet and a BM25 score. Only documents you may read are searched.",
        annotations(
            title = "Search documents",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn search_docs(
        &self,
        Parameters(args): Parameters<SearchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<SearchResults>, CallToolResult> {
        let limit = args.limit.unwrap_or(5);
        if !(1..=20).contains(&limit) {
            return Err(CallToolResult::error(vec![ContentBlock::text(format!(
                "limit must be between 1 and 20, got {limit}"
            ))]));
        }
        if args.query.trim().is_empty() {
            return Err(CallToolResult::error(vec![ContentBlock::text(
                "query must not be empty",
            )]));
        }
        match self
            .index
            .search(&args.query, limit as usize, &groups_of(&ctx))
        {
            Ok(hits) => Ok(Json(SearchResults { hits })),
            Err(e) => Err(CallToolResult::error(vec![ContentBlock::text(format!(
                "search failed: {e}"
            ))])),
        }
    }

    #[tool(
        description = "Read one document in full by its path (as returned by search_docs).",
        annotations(
            title = "Read a document",
            read_only_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_doc(
        &self,
        Parameters(args): Parameters<GetDocArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<DocContent>, CallToolResult> {
        // A document the caller may not read answers as one that does not exist.
        match self.index.document(&args.path, &groups_of(&ctx)) {
            Some(doc) => Ok(Json(DocContent {
                path: doc.path.clone(),
                title: doc.title.clone(),
                content: doc.content.clone(),
            })),
            None => Err(CallToolResult::error(vec![ContentBlock::text(format!(
                "no document at path {:?}; use search_docs to find paths",
                args.path
            ))])),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Knowledge {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }
}
