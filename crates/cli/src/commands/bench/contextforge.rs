//! IBM ContextForge (`pip install mcp-contextforge-gateway`) in front of the benchmark's upstream,
//! for the side-by-side figures: started on SQLite with an in-memory cache and its JWT
//! authentication on, the upstream registered through its admin API as a streamable-HTTP
//! gateway, and the upstream's `echo` tool served from a virtual server, as its documentation
//! sets one up.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::platform::{Child, Platform, SERVER, spawn};

pub(crate) struct ContextForge {
    child: Child,
    /// The virtual server's MCP endpoint.
    pub(crate) mcp_url: String,
    /// An administrator's token, minted with ContextForge's own tool.
    pub(crate) token: String,
    /// The echo tool's name as ContextForge serves it (prefixed with the upstream's name).
    pub(crate) tool_name: String,
    _dir: tempfile::TempDir,
}

impl ContextForge {
    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }

    pub(crate) async fn start(
        executable: &Path,
        platform: &Platform,
        workers: usize,
    ) -> anyhow::Result<ContextForge> {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-bench-contextforge")
            .tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let secret = format!("{:032x}{:032x}", fastrand::u128(..), fastrand::u128(..));
        let password = format!("Bench-{:016x}-Pw1!", fastrand::u64(..));
        let database = format!("sqlite:///{}", dir.path().join("mcp.db").display());
        let env: Vec<(&str, String)> = vec![
            ("DATABASE_URL", database),
            ("JWT_SECRET_KEY", secret.clone()),
            ("PLATFORM_ADMIN_EMAIL", "admin@example.com".into()),
            ("PLATFORM_ADMIN_PASSWORD", password.clone()),
            ("BASIC_AUTH_PASSWORD", password),
            ("CACHE_TYPE", "memory".into()),
            // The upstream is on loopback.
            ("SSRF_ALLOW_LOCALHOST", "true".into()),
            ("SSRF_ALLOW_PRIVATE_NETWORKS", "true".into()),
            ("MCPGATEWAY_UI_ENABLED", "false".into()),
            ("MCPGATEWAY_ADMIN_API_ENABLED", "true".into()),
            ("LOG_LEVEL", "ERROR".into()),
            // Its per-client rate limit (100 tool requests a minute) would measure the limit;
            // Switchboard's own is off by default too.
            ("RATE_LIMITING_ENABLED", "false".into()),
        ];
        let port_arg = port.to_string();
        let workers_arg = workers.to_string();
        let (child, _) = spawn(
            dir.path(),
            "contextforge",
            Some(executable),
            &[
                "--host",
                "127.0.0.1",
                "--port",
                &port_arg,
                "--workers",
                &workers_arg,
            ],
            &env,
            false,
        )
        .await?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            match http.get(format!("{base}/health")).send().await {
                Ok(r) if r.status().is_success() => break,
                _ if Instant::now() > deadline => {
                    anyhow::bail!(
                        "ContextForge was not healthy within 180 s\n{}",
                        child.log_tail()
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        // Its own token tool, from the same virtual environment.
        let python = executable.with_file_name("python");
        let minted = tokio::process::Command::new(&python)
            .args([
                "-m",
                "mcpgateway.utils.create_jwt_token",
                "--username",
                "admin@example.com",
                "--exp",
                "600",
                "--secret",
                &secret,
            ])
            .env("JWT_SECRET_KEY", &secret)
            .output()
            .await
            .map_err(|e| anyhow::anyhow!("run {}: {e}", python.display()))?;
        let token = String::from_utf8_lossy(&minted.stdout)
            .lines()
            .rev()
            .find(|l| l.starts_with("ey"))
            .map(str::to_owned)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "ContextForge's create_jwt_token printed no token: {}",
                    String::from_utf8_lossy(&minted.stderr)
                )
            })?;
        let admin = |method: reqwest::Method, path: &str| {
            http.request(method, format!("{base}{path}"))
                .bearer_auth(&token)
        };
        let checked = |response: reqwest::Response, what: &'static str| async move {
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            anyhow::ensure!(
                status.is_success(),
                "ContextForge {what}: HTTP {status}: {body}"
            );
            Ok(body)
        };
        checked(
            admin(reqwest::Method::POST, "/gateways")
                .json(
                    &json!({"name": SERVER, "url": platform.upstream_mcp(SERVER),
                              "transport": "STREAMABLEHTTP", "visibility": "public"}),
                )
                .send()
                .await?,
            "register the upstream",
        )
        .await?;
        let tools = checked(
            admin(reqwest::Method::GET, "/tools").send().await?,
            "list tools",
        )
        .await?;
        let tools = tools
            .as_array()
            .or_else(|| tools["items"].as_array())
            .cloned()
            .unwrap_or_default();
        let echo = tools
            .iter()
            .find(|t| {
                t["originalName"] == "echo"
                    || t["original_name"] == "echo"
                    || t["name"].as_str().is_some_and(|n| n.ends_with("echo"))
            })
            .ok_or_else(|| anyhow::anyhow!("ContextForge lists no echo tool: {tools:?}"))?;
        let tool_id = echo["id"].as_str().unwrap_or_default().to_owned();
        let tool_name = echo["name"].as_str().unwrap_or_default().to_owned();
        let server = checked(
            admin(reqwest::Method::POST, "/servers")
                .json(&json!({"server": {"name": "bench-virtual", "description": "The benchmark's upstream",
                                         "associated_tools": [tool_id]},
                              "visibility": "public"}))
                .send()
                .await?,
            "create the virtual server",
        )
        .await?;
        let id = server["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("ContextForge's virtual server has no id: {server}"))?;
        Ok(ContextForge {
            child,
            mcp_url: format!("{base}/servers/{id}/mcp"),
            token,
            tool_name,
            _dir: dir,
        })
    }
}
