//! `switchboard servers list|show|register`: read the registry's catalog, and register a server
//! from its manifest and tool definitions.

use std::path::PathBuf;

use registry_api::{RegisterServer, ToolDefinition};

use crate::commands::RegistryAccess;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    registry: RegistryAccess,
}

#[derive(clap::Subcommand)]
enum Action {
    /// One line per server.
    List,
    /// Everything the registry knows about one server, as JSON.
    Show { name: String },
    /// Register a server (or update it): its manifest, where the gateway reaches it, and the
    /// tools it serves. Registering or changing a server opens the reviews it needs.
    Register {
        /// The server's `switchboard.toml`.
        #[arg(long)]
        manifest: PathBuf,
        /// The server's MCP endpoint, e.g. `https://presto-mcp.internal:8443/mcp`.
        #[arg(long)]
        endpoint: String,
        /// `dev`, `staging` or `prod`.
        #[arg(long, default_value = "prod")]
        environment: String,
        /// The tools it serves: a `tools/list` result (`{"tools": [...]}`) or a JSON array of
        /// tool definitions.
        #[arg(long)]
        tools: Option<PathBuf>,
        /// The server's own Cedar policies.
        #[arg(long)]
        policies: Option<PathBuf>,
    },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.registry.client()?;
    match args.action {
        Action::List => {
            let servers = client.list_servers().await?;
            println!(
                "{:<20} {:<8} {:<10} {:<22} {:<26} {:>5}  ALLOWED GROUPS",
                "NAME", "ENV", "APPROVED", "OWNER", "SUPPORT", "TOOLS"
            );
            for s in servers {
                let groups = if s.allowed_groups.is_empty() {
                    "(all)".to_owned()
                } else {
                    s.allowed_groups.join(",")
                };
                let approved = match (s.approved, s.tools.iter().filter(|t| !t.approved).count()) {
                    (false, _) => "no".to_owned(),
                    (true, 0) => "yes".to_owned(),
                    (true, n) => format!("yes (-{n})"),
                };
                println!(
                    "{:<20} {:<8} {:<10} {:<22} {:<26} {:>5}  {groups}",
                    s.name,
                    s.environment,
                    approved,
                    s.owner_team,
                    s.support_channel,
                    s.tools.len()
                );
            }
        }
        Action::Show { name } => {
            let server = client.get_server(&name).await?;
            println!("{}", serde_json::to_string_pretty(&server)?);
        }
        Action::Register {
            manifest,
            endpoint,
            environment,
            tools,
            policies,
        } => {
            let read = |path: &PathBuf| {
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))
            };
            let manifest = catalog::Manifest::parse(&read(&manifest)?).map_err(|problems| {
                let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                anyhow::anyhow!("the manifest is invalid:\n  {}", lines.join("\n  "))
            })?;
            let tools = match &tools {
                Some(path) => parse_tools(&read(path)?)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
                None => Vec::new(),
            };
            let policies = match &policies {
                Some(path) => read(path)?,
                None => String::new(),
            };
            let server = client
                .register(&RegisterServer {
                    manifest,
                    endpoint,
                    environment,
                    tools,
                    policies,
                })
                .await?;
            let pending = client
                .list_reviews(Some(&server.name), Some("pending"))
                .await?;
            println!(
                "registered {} (revision {}, {} tools); approved for production: {}",
                server.name,
                server.revision,
                server.tools.len(),
                if server.approved { "yes" } else { "no" }
            );
            for review in pending {
                println!("  pending review {}: {}", review.id, review.reason);
            }
        }
    }
    Ok(())
}

/// Tool definitions from a `tools/list` result or a bare array.
fn parse_tools(text: &str) -> anyhow::Result<Vec<ToolDefinition>> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("not JSON: {e}"))?;
    let list = match value.get("tools") {
        Some(tools) => tools.clone(),
        None => value,
    };
    serde_json::from_value(list).map_err(|e| {
        anyhow::anyhow!("expected {{\"tools\": [...]}} or an array of tool definitions: {e}")
    })
}
