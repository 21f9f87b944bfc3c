//! `switchboard connect` and `switchboard ide-config`: one MCP server over stdio for an IDE, with
//! every tool the user may use on surface `ide`, each named `<server>__<tool>` so that servers
//! never collide, forwarded to the gateway as the user (the token refreshed before it expires);
//! and the configuration snippet that plugs it into VS Code, Cursor or Claude Code.

use std::{sync::Arc, time::Duration};

use registry_client::{Credentials, RegistryClient};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use tokio::sync::Mutex;

use crate::{
    commands::{DataDir, PlatformUrls},
    dev,
};

/// Between a server's name and its tool's in the names `connect` offers.
pub(crate) const SEPARATOR: &str = chat::toolset::SEPARATOR;

/// A token is renewed when it expires within this long.
const RENEW_BEFORE: Duration = Duration::from_secs(120);

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    platform: PlatformUrls,
    /// The user's bearer token (from your identity provider).
    #[arg(long, env = "SWITCHBOARD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A command that prints a fresh bearer token (run through `sh -c` whenever the current one
    /// is about to expire), for example your identity provider's CLI.
    #[arg(long, env = "SWITCHBOARD_TOKEN_COMMAND", conflicts_with = "token")]
    token_command: Option<String>,
    /// Local development: mint tokens for this user from the development issuer.
    #[arg(long, conflicts_with_all = ["token", "token_command"])]
    dev_user: Option<String>,
    /// The groups of --dev-user, comma-separated.
    #[arg(long, default_value = "employees", requires = "dev_user")]
    dev_groups: String,
    #[command(flatten)]
    data: DataDir,
}

/// Where the user's tokens come from.
enum TokenSource {
    Static(String),
    Command(String),
    Dev {
        key: identity::SigningKey,
        user: String,
        groups: Vec<String>,
    },
}

/// The user's current token, renewed before it expires.
struct Tokens {
    source: TokenSource,
    current: Mutex<Option<(String, Option<u64>)>>,
}

/// The `exp` of a JWT (read, not verified: the gateway verifies it).
fn expiry(token: &str) -> Option<u64> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_u64()
}

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Tokens {
    async fn get(&self) -> Result<String, String> {
        let mut current = self.current.lock().await;
        if let Some((token, exp)) = current.as_ref()
            && exp.is_none_or(|exp| exp > now_s() + RENEW_BEFORE.as_secs())
        {
            return Ok(token.clone());
        }
        let token = match &self.source {
            TokenSource::Static(token) => token.clone(),
            TokenSource::Command(command) => {
                let out = tokio::process::Command::new("sh")
                    .args(["-c", command])
                    .output()
                    .await
                    .map_err(|e| format!("the token command could not run: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "the token command failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                String::from_utf8_lossy(&out.stdout).trim().to_owned()
            }
            TokenSource::Dev { key, user, groups } => {
                let mut claims = identity::Claims::new(
                    dev::DEV_ISSUER,
                    user,
                    dev::PLATFORM_AUDIENCE,
                    groups.clone(),
                    3600,
                );
                claims.surface = Some("ide".into());
                key.sign(&claims).map_err(|e| e.to_string())?
            }
        };
        if token.is_empty() {
            return Err("the token source gave an empty token".into());
        }
        *current = Some((token.clone(), expiry(&token)));
        Ok(token)
    }
}

/// An MCP client of `server`'s route on the gateway at `gateway_url`, with the bearer `token` and
/// extra `headers` (the surfaces' one way to open one).
pub(crate) async fn gateway_client(
    gateway_url: &str,
    server: &str,
    token: &str,
    headers: std::collections::HashMap<reqwest::header::HeaderName, reqwest::header::HeaderValue>,
) -> Result<rmcp::service::RunningService<rmcp::RoleClient, ()>, rmcp::service::ClientInitializeError>
{
    chat::gateway::connect((), gateway_url, server, token, headers).await
}

/// The stdio server: the user's tools across every server they may use.
#[derive(Clone)]
struct Connect {
    gateway_url: String,
    registry: Arc<RegistryClient>,
    tokens: Arc<Tokens>,
}

impl Connect {
    /// An MCP client of `server`'s route on the gateway, as the user (2026-07-28).
    async fn client(
        &self,
        server: &str,
    ) -> Result<rmcp::service::RunningService<rmcp::RoleClient, ()>, String> {
        let token = self.tokens.get().await?;
        gateway_client(&self.gateway_url, server, &token, Default::default())
            .await
            .map_err(|e| format!("connect to {server} through the gateway: {e}"))
    }

    /// The servers the user may use here, by name.
    async fn servers(&self) -> Result<Vec<String>, ErrorData> {
        let token = self
            .tokens
            .get()
            .await
            .map_err(|e| ErrorData::internal_error(e, None))?;
        let found = self
            .registry
            .discovery_as(&token)
            .await
            .map_err(|e| ErrorData::internal_error(format!("discovery: {e}"), None))?;
        Ok(found.servers.into_iter().map(|s| s.name).collect())
    }
}

impl ServerHandler for Connect {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info.name = "switchboard".into();
        info.server_info.version = env!("CARGO_PKG_VERSION").into();
        info.instructions = Some(format!(
            "Every tool you may use through Switchboard, named <server>{SEPARATOR}<tool>. Calls run as you, through the gateway, with its policies, approvals and audit."
        ));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // Every server at once: a slow one delays the list by its own time only.
        let servers = self.servers().await?;
        let listed = futures::future::join_all(servers.iter().map(|server| async move {
            let client = self.client(server).await?;
            let listed = client.list_all_tools().await;
            let _ = client.cancel().await;
            listed.map_err(|e| e.to_string())
        }))
        .await;
        let mut tools: Vec<Tool> = Vec::new();
        for (server, listed) in servers.iter().zip(listed) {
            match listed {
                Ok(listed) => tools.extend(listed.into_iter().map(|mut tool| {
                    tool.name = format!("{server}{SEPARATOR}{}", tool.name).into();
                    tool
                })),
                // One server down must not hide the others' tools.
                Err(e) => tracing::warn!(%server, error = %e, "left a server's tools out"),
            }
        }
        Ok(ListToolsResult {
            tools,
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some((server, tool)) = request.name.split_once(SEPARATOR) else {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown tool {:?}: tools are named <server>{SEPARATOR}<tool>",
                    request.name
                ),
                None,
            ));
        };
        let client = match self.client(server).await {
            Ok(c) => c,
            Err(e) => {
                return Ok(CallToolResult::error(vec![ContentBlock::text(e)]).into());
            }
        };
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = request.arguments;
        let called = client.call_tool(params).await;
        let _ = client.cancel().await;
        match called {
            Ok(result) => Ok(result.into()),
            Err(rmcp::service::ServiceError::McpError(e)) => Err(e),
            Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "the call to {server} failed: {e}"
            ))])
            .into()),
        }
    }
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let source = match (&args.token, &args.token_command, &args.dev_user) {
        (Some(token), _, _) => TokenSource::Static(token.clone()),
        (None, Some(command), _) => TokenSource::Command(command.clone()),
        (None, None, Some(user)) => TokenSource::Dev {
            key: dev::load_key(&args.data.data_dir)?,
            user: user.clone(),
            groups: catalog::parse_groups(&args.dev_groups),
        },
        (None, None, None) => anyhow::bail!(
            "say how to get the user's token: --token (SWITCHBOARD_TOKEN), --token-command, or --dev-user for local development"
        ),
    };
    let tokens = Arc::new(Tokens {
        source,
        current: Mutex::new(None),
    });
    // Fail early, and clearly, when no token can be had.
    tokens.get().await.map_err(|e| anyhow::anyhow!(e))?;
    let connect = Connect {
        gateway_url: args.platform.gateway_url.trim_end_matches('/').to_owned(),
        registry: Arc::new(RegistryClient::new(
            args.platform.registry_url.trim_end_matches('/'),
            Credentials::Static(String::new()),
        )),
        tokens,
    };
    let service = connect
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| anyhow::anyhow!("serve MCP over stdio: {e}"))?;
    service.waiting().await?;
    Ok(())
}

#[derive(clap::Args)]
pub(crate) struct IdeConfigArgs {
    /// The IDE or agent: `vscode`, `cursor` or `claude-code`.
    #[arg(long, value_parser = ["vscode", "cursor", "claude-code"])]
    client: String,
    #[command(flatten)]
    platform: PlatformUrls,
    /// The command that prints the user's token (`connect --token-command`); without it, the
    /// snippet uses a development user (`--dev-user`).
    #[arg(long)]
    token_command: Option<String>,
    /// The development user of the snippet, when no --token-command is given.
    #[arg(long, default_value = "developer")]
    dev_user: String,
    /// Where the development issuer's key is (for --dev-user snippets).
    #[command(flatten)]
    data: DataDir,
}

/// The `switchboard connect` arguments the snippet runs.
fn connect_args(args: &IdeConfigArgs) -> Vec<String> {
    let mut out = vec![
        "connect".to_owned(),
        "--gateway-url".into(),
        args.platform.gateway_url.clone(),
        "--registry-url".into(),
        args.platform.registry_url.clone(),
    ];
    match &args.token_command {
        Some(command) => out.extend(["--token-command".into(), command.clone()]),
        None => {
            // The IDE starts it from anywhere: name the data directory absolutely.
            let data_dir = std::path::absolute(&args.data.data_dir)
                .unwrap_or_else(|_| args.data.data_dir.clone());
            out.extend([
                "--dev-user".into(),
                args.dev_user.clone(),
                "--data-dir".into(),
                data_dir.display().to_string(),
            ]);
        }
    }
    out
}

/// The configuration snippet for `args.client`.
pub(crate) fn ide_config(args: &IdeConfigArgs, binary: &str) -> String {
    let connect = connect_args(args);
    match args.client.as_str() {
        "vscode" => {
            let snippet = serde_json::json!({
                "servers": {"switchboard": {"type": "stdio", "command": binary, "args": connect}}
            });
            format!(
                "// .vscode/mcp.json (or \"MCP: Open User Configuration\")\n{}",
                serde_json::to_string_pretty(&snippet).unwrap_or_default()
            )
        }
        "cursor" => {
            let snippet = serde_json::json!({
                "mcpServers": {"switchboard": {"command": binary, "args": connect}}
            });
            format!(
                "// ~/.cursor/mcp.json (or .cursor/mcp.json in a project)\n{}",
                serde_json::to_string_pretty(&snippet).unwrap_or_default()
            )
        }
        _ => {
            let quoted: Vec<String> = connect
                .iter()
                .map(|a| {
                    if a.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c))
                    {
                        a.clone()
                    } else {
                        format!("'{}'", a.replace('\'', r"'\''"))
                    }
                })
                .collect();
            let snippet = serde_json::json!({
                "mcpServers": {"switchboard": {"type": "stdio", "command": binary, "args": connect}}
            });
            format!(
                "# Run once:\nclaude mcp add switchboard -- {binary} {}\n\n# or commit this as .mcp.json in the project:\n{}",
                quoted.join(" "),
                serde_json::to_string_pretty(&snippet).unwrap_or_default()
            )
        }
    }
}

pub(crate) fn print_ide_config(args: IdeConfigArgs) -> anyhow::Result<()> {
    let binary = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "switchboard".into());
    println!("{}", ide_config(&args, &binary));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_read_from_a_jwt_without_verifying_it() {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"ann","exp":1900000000}"#);
        assert_eq!(expiry(&format!("h.{payload}.s")), Some(1_900_000_000));
        assert_eq!(expiry("not a jwt"), None);
    }

    /// A token command that counts its runs in `dir/runs` and prints a JWT expiring at `exp`.
    fn counting_command(dir: &std::path::Path, exp: u64) -> String {
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!(r#"{{"sub":"ann","exp":{exp}}}"#));
        format!("echo run >> {}/runs; echo h.{payload}.s", dir.display())
    }

    fn runs(dir: &std::path::Path) -> usize {
        std::fs::read_to_string(dir.join("runs"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    #[tokio::test]
    async fn a_token_is_renewed_only_when_it_is_about_to_expire() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = Tokens {
            source: TokenSource::Command(counting_command(dir.path(), now_s() + 3600)),
            current: Mutex::new(None),
        };
        let first = fresh.get().await.unwrap();
        assert_eq!(fresh.get().await.unwrap(), first);
        assert_eq!(runs(dir.path()), 1, "a fresh token is reused");

        let other = tempfile::tempdir().unwrap();
        let expiring = Tokens {
            source: TokenSource::Command(counting_command(other.path(), now_s() + 30)),
            current: Mutex::new(None),
        };
        expiring.get().await.unwrap();
        expiring.get().await.unwrap();
        assert_eq!(runs(other.path()), 2, "a token about to expire is renewed");

        let failing = Tokens {
            source: TokenSource::Command("echo nope >&2; exit 3".into()),
            current: Mutex::new(None),
        };
        let error = failing.get().await.unwrap_err();
        assert!(
            error.contains("the token command failed") && error.contains("nope"),
            "{error}"
        );
    }

    #[test]
    fn snippets_run_connect_for_each_client() {
        let args = |client: &str| IdeConfigArgs {
            client: client.into(),
            platform: PlatformUrls {
                gateway_url: "https://mcp.example.com".into(),
                registry_url: "https://registry.example.com".into(),
            },
            token_command: Some("idp-cli token --audience switchboard".into()),
            dev_user: "developer".into(),
            data: DataDir {
                data_dir: ".switchboard".into(),
            },
        };
        let vscode = ide_config(&args("vscode"), "/usr/bin/switchboard");
        let json: serde_json::Value =
            serde_json::from_str(vscode.split_once('\n').unwrap().1).unwrap();
        assert_eq!(json["servers"]["switchboard"]["type"], "stdio");
        assert_eq!(json["servers"]["switchboard"]["args"][0], "connect");
        let cursor = ide_config(&args("cursor"), "switchboard");
        assert!(cursor.contains("\"mcpServers\""));
        let claude = ide_config(&args("claude-code"), "switchboard");
        assert!(
            claude.contains(
                "claude mcp add switchboard -- switchboard connect --gateway-url https://mcp.example.com --registry-url https://registry.example.com --token-command 'idp-cli token --audience switchboard'"
            ),
            "{claude}"
        );
    }
}
