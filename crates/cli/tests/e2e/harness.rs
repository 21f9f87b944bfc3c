//! The loopback harness: starts `switchboard` processes on OS-chosen ports, waits for their ready
//! files, kills them when dropped, and prints their logs when a test fails.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use tempfile::TempDir;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

/// A child process that is killed on drop; its log is printed if the test is failing.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// SIGKILL: no shutdown of any kind.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "----- log of {} -----\n{log}\n----- end of {} -----",
                self.name, self.name
            );
        }
    }
}

/// Starts `switchboard ARGS --ready-file <dir>/<name>.ready.json` and waits for the ready file.
pub fn spawn(dir: &Path, name: &str, args: &[&str]) -> (Process, Value) {
    spawn_with_env(dir, name, args, &[])
}

/// [`spawn`] with extra environment variables.
pub fn spawn_with_env(
    dir: &Path,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (Process, Value) {
    try_spawn_with_env(dir, name, args, env).unwrap_or_else(|e| panic!("{e}"))
}

/// [`spawn_with_env`], saying why the process did not get ready instead of panicking.
fn try_spawn_with_env(
    dir: &Path,
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(Process, Value), String> {
    let ready = dir.join(format!("{name}.ready.json"));
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(bin())
        .args(args)
        .arg("--ready-file")
        .arg(&ready)
        .env("SWITCHBOARD_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let mut process = Process {
        name: name.to_owned(),
        child,
        log,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready)
            && let Ok(value) = serde_json::from_str::<Value>(&text)
        {
            return Ok((process, value));
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            let log = std::fs::read_to_string(&process.log).unwrap_or_default();
            return Err(format!(
                "{name} exited with {status} before it was ready:\n{log}"
            ));
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(&process.log).unwrap_or_default();
            return Err(format!("{name} was not ready within 60 s:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The whole platform from `switchboard up`, plus any extra servers a test starts.
pub struct Platform {
    pub dir: TempDir,
    pub registry_url: String,
    pub gateway_url: String,
    pub mcp_url: String,
    /// The web chat and the bots.
    pub chat_url: String,
    /// The development token `up` printed (user `developer`, group `employees`).
    pub token: String,
    processes: Vec<Process>,
    /// The flags `up` runs with, for restarts.
    up_args: Vec<String>,
}

impl Platform {
    pub fn start() -> Platform {
        Platform::start_with(&[])
    }

    /// `switchboard up` with extra flags (for example `--trust-issuer`).
    pub fn start_with(extra: &[&str]) -> Platform {
        Platform::start_on(["0", "0", "0", "0", "0", "0", "0"], extra)
    }

    /// `switchboard up` with extra flags and environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Platform {
        Platform::start_on_with_env(["0", "0", "0", "0", "0", "0", "0"], extra, env)
    }

    /// `switchboard up` on fixed ports (registry, gateway, knowledge, sql, spark, airflow, chat), so that a restart comes
    /// back at the same addresses. The ports are ones the OS just handed out and took back, so
    /// another test may take one first: then `up` cannot bind it, and it starts again on others.
    pub fn start_on_fixed_ports(extra: &[&str]) -> Platform {
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
                .to_string()
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = [port(), port(), port(), port(), port(), port(), port()];
            match Platform::try_start_on_with_env(ports, extra, &[]) {
                Ok(platform) => return platform,
                Err(e) if attempt < 5 && e.contains("Address already in use") => continue,
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn start_on<S: AsRef<str>>(ports: [S; 7], extra: &[&str]) -> Platform {
        Platform::start_on_with_env(ports, extra, &[])
    }

    fn start_on_with_env<S: AsRef<str>>(
        ports: [S; 7],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Platform {
        Platform::try_start_on_with_env(ports, extra, env).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start_on_with_env<S: AsRef<str>>(
        ports: [S; 7],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Platform, String> {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut args: Vec<String> = vec![
            "up".into(),
            "--data-dir".into(),
            data.to_str().unwrap().into(),
            "--registry-port".into(),
            ports[0].as_ref().into(),
            "--gateway-port".into(),
            ports[1].as_ref().into(),
            "--knowledge-port".into(),
            ports[2].as_ref().into(),
            "--sql-port".into(),
            ports[3].as_ref().into(),
            "--spark-port".into(),
            ports[4].as_ref().into(),
            "--airflow-port".into(),
            ports[5].as_ref().into(),
            "--chat-port".into(),
            ports[6].as_ref().into(),
            // The small sample warehouse: generated in a blink for every platform a test starts.
            "--sql-sample".into(),
            "small".into(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let (up, ready) = try_spawn_with_env(
            dir.path(),
            "up",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            env,
        )?;
        let field = |k: &str| ready[k].as_str().unwrap().to_owned();
        Ok(Platform {
            registry_url: field("registry_url"),
            gateway_url: field("gateway_url"),
            mcp_url: field("mcp_url"),
            chat_url: field("chat_url"),
            token: field("token"),
            dir,
            processes: vec![up],
            up_args: args,
        })
    }

    /// Kills `switchboard up` with SIGKILL (no shutdown of any kind) and starts it again with the
    /// same flags and data; with fixed ports it comes back at the same addresses.
    pub fn crash_and_restart(&mut self) {
        let up = &mut self.processes[0];
        up.child.kill().unwrap();
        up.child.wait().unwrap();
        let ready = self.dir.path().join("up.ready.json");
        let _ = std::fs::remove_file(&ready);
        let args: Vec<&str> = self.up_args.iter().map(String::as_str).collect();
        let (up, _) = spawn(self.dir.path(), "up", &args);
        self.processes[0] = up;
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A development token for `user` in `groups`.
    pub fn token(&self, user: &str, groups: &[&str]) -> String {
        self.token_with(user, groups, &[])
    }

    /// A development token with extra `switchboard token` flags (`--surface bot`, `--scope ...`).
    pub fn token_with(&self, user: &str, groups: &[&str], extra: &[&str]) -> String {
        let out = Command::new(bin())
            .args([
                "token",
                "--user",
                user,
                "--groups",
                &groups.join(","),
                "--data-dir",
            ])
            .arg(self.data_dir())
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Starts another Knowledge server with `manifest`, registered with the registry and trusting
    /// the gateway. Returns the server's own (direct) URL.
    pub fn start_knowledge(&mut self, manifest: &str) -> String {
        self.start_knowledge_with(manifest, &[])
    }

    /// Like [`Platform::start_knowledge`], with extra flags (`--policies`, `--environment`).
    pub fn start_knowledge_with(&mut self, manifest: &str, extra: &[&str]) -> String {
        let path = self
            .dir
            .path()
            .join(format!("manifest-{}.toml", self.processes.len()));
        std::fs::write(&path, manifest).unwrap();
        let mut args = vec!["knowledge", "--manifest", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.start_server(&args)
    }

    /// Starts the conformance fixture (which also accepts anonymous callers), registered like any
    /// other server. Returns its direct URL.
    pub fn start_conformance_fixture(&mut self) -> String {
        self.start_server(&["conformance", "--allow-anonymous"])
    }

    /// `switchboard server <args>` on a free port, trusting the gateway and registered with the
    /// registry through the development issuer.
    fn start_server(&mut self, args: &[&str]) -> String {
        self.start_server_with_env(args, &[])
    }

    /// `switchboard server <args>` with environment variables, registered and approved like
    /// [`Platform::start_knowledge`]. Returns its direct URL.
    pub fn start_server_with_env(&mut self, args: &[&str], env: &[(&str, &str)]) -> String {
        let jwks = format!("{}/.well-known/jwks.json", self.gateway_url);
        let data = self.data_dir();
        let name = format!("server-{}", self.processes.len());
        let mut all = vec!["server"];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--listen",
            "127.0.0.1:0",
            "--gateway-jwks",
            &jwks,
            "--gateway-issuer",
            &self.gateway_url,
            "--register-with",
            &self.registry_url,
            "--dev-issuer",
            "--data-dir",
            data.to_str().unwrap(),
        ]);
        let (process, ready) = spawn_with_env(self.dir.path(), &name, &all, env);
        self.processes.push(process);
        self.approve(ready["name"].as_str().unwrap());
        ready["url"].as_str().unwrap().to_owned()
    }

    /// A development token for a reviewer in every reviewer group.
    pub fn reviewer_token(&self, user: &str) -> String {
        self.token(
            user,
            &["security-reviewers", "privacy-reviewers", "genai-reviewers"],
        )
    }

    /// Registers a server with `switchboard servers register`: its manifest (TOML text), endpoint
    /// and tool definitions; returns what the command printed.
    pub fn register(&self, manifest: &str, endpoint: &str, tools: &Value) -> String {
        let name = catalog::Manifest::parse(manifest)
            .expect("a valid manifest")
            .server
            .name;
        let dir = self.dir.path();
        let manifest_file = dir.join(format!("{name}.toml"));
        let tools_file = dir.join(format!("{name}-tools.json"));
        std::fs::write(&manifest_file, manifest).unwrap();
        std::fs::write(&tools_file, tools.to_string()).unwrap();
        let (code, out) = self.cli(&[
            "servers",
            "register",
            "--manifest",
            manifest_file.to_str().unwrap(),
            "--endpoint",
            endpoint,
            "--tools",
            tools_file.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{out}");
        out
    }

    /// Approves every pending review of `server` with `switchboard review approve`, so it is
    /// approved for production.
    pub fn approve(&self, server: &str) {
        let token = self.reviewer_token("reviewer");
        let (code, out) = self.cli(&[
            "review",
            "approve",
            "--server",
            server,
            "--comment",
            "test",
            "--token",
            &token,
        ]);
        assert_eq!(code, 0, "{out}");
    }

    /// The registry's audit records (newest first), read with an auditor's token once the
    /// gateway delivered every record it holds.
    pub fn audit(&self, server: &str) -> Vec<Value> {
        audit_delivered(&self.gateway_url);
        let admin = self.token("auditor", &["platform-admins"]);
        let url = format!("{}/v1/audit?server={server}&limit=1000", self.registry_url);
        let body: Value = blocking_get(&url, &admin);
        body["records"].as_array().unwrap().clone()
    }
}

/// Waits (10 s at most) until the gateway at `gateway_url` has delivered every audit record it
/// journaled to the registry: calls are answered once their record is durable in the gateway's
/// journal, and reach the registry's audit a moment later.
pub fn audit_delivered(gateway_url: &str) {
    let url = format!("{gateway_url}/metrics");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = url.clone();
        let text = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?
                .block_on(async move { reqwest::get(&url).await.ok()?.text().await.ok() })
        })
        .join()
        .ok()
        .flatten()
        .unwrap_or_default();
        if text.contains("switchboard_gateway_audit_spooled_records 0\n") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway at {gateway_url} did not deliver its audit records within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn blocking_get(url: &str, token: &str) -> Value {
    let url = url.to_owned();
    let token = token.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let response = reqwest::Client::new()
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    response.status().is_success(),
                    "GET {url}: {}",
                    response.status()
                );
                response.json::<Value>().await.unwrap()
            })
    })
    .join()
    .unwrap()
}

/// `true` when the external tool is present. Otherwise the test is skipped with a message, or
/// fails under `CI=true`, where `.ci/run` has installed every tool.
pub fn available(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} is required under CI=true; .ci/run installs it");
    }
    eprintln!("SKIPPED: {what} is not installed (run .ci/run to install it)");
    false
}

/// The Python interpreter with the official MCP SDK: `SWITCHBOARD_PYTHON`, else the venv that
/// `.ci/run` makes, else `python3`.
pub fn python() -> Option<PathBuf> {
    python_with("import mcp, httpx2")
}

/// The first candidate Python interpreter (as [`python`]) for which `check` runs cleanly.
pub fn python_with(check: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("SWITCHBOARD_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(home) = std::env::var("HOME") {
        candidates.push(PathBuf::from(home).join(".cache/switchboard-venv/bin/python"));
    }
    candidates.push(PathBuf::from("python3"));
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", check])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The folder whose `node_modules/.bin` holds node 22, the conformance suite and the inspector:
/// `SWITCHBOARD_NODE_TOOLS`, else the one `.ci/run` installs.
pub fn node_tools() -> Option<PathBuf> {
    node_tools_dir().map(|dir| dir.join("node_modules/.bin"))
}

/// The folder the Node tools are installed in (its `node_modules` holds oidc-provider too).
pub fn node_tools_dir() -> Option<PathBuf> {
    let dir = match std::env::var("SWITCHBOARD_NODE_TOOLS") {
        Ok(d) => PathBuf::from(d),
        Err(_) => PathBuf::from(std::env::var("HOME").ok()?).join(".cache/switchboard-node"),
    };
    let bin = dir.join("node_modules/.bin");
    let installed = ["node", "conformance", "mcp-inspector"]
        .iter()
        .all(|t| bin.join(t).exists())
        && dir.join("node_modules/oidc-provider").exists();
    installed.then_some(dir)
}

/// A command that runs a Node tool from `bin` with node 22 first on the PATH.
pub fn node_command(bin: &Path, tool: &str) -> Command {
    let mut command = Command::new(bin.join("node"));
    command.arg(bin.join(tool));
    let path = std::env::var("PATH").unwrap_or_default();
    command.env("PATH", format!("{}:{path}", bin.display()));
    command
}

/// Runs `switchboard ARGS` against this platform's registry and data; returns (exit code, stdout).
impl Platform {
    pub fn cli(&self, args: &[&str]) -> (i32, String) {
        // What reads the audit reads it once the gateway delivered its records.
        if matches!(args.first(), Some(&"report") | Some(&"audit")) {
            audit_delivered(&self.gateway_url);
        }
        let out = Command::new(bin())
            .args(args)
            .args(["--registry-url", &self.registry_url, "--data-dir"])
            .arg(self.data_dir())
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

/// An rmcp client for `url` with a bearer token, in the modern era (`server/discover`) or the
/// legacy one (`initialize`).
pub async fn connect(
    url: &str,
    token: &str,
    modern: bool,
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    connect_with(url, token, modern, &[]).await
}

/// Like [`connect`], with extra request headers (a bot's `X-Switchboard-Channel`).
pub async fn connect_with(
    url: &str,
    token: &str,
    modern: bool,
    headers: &[(&'static str, &str)],
) -> rmcp::service::RunningService<rmcp::RoleClient, ()> {
    use rmcp::{
        ServiceExt,
        model::ProtocolVersion,
        service::{ClientLifecycleMode, ClientServiceExt},
        transport::{
            StreamableHttpClientTransport,
            streamable_http_client::StreamableHttpClientTransportConfig,
        },
    };
    let headers = headers
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
        .collect();
    let config = StreamableHttpClientTransportConfig::with_uri(url)
        .auth_header(token)
        .custom_headers(headers);
    let transport = StreamableHttpClientTransport::from_config(config);
    if modern {
        let lifecycle = ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        };
        ().serve_with_lifecycle(transport, lifecycle).await.unwrap()
    } else {
        ().serve(transport).await.unwrap()
    }
}

/// The names of the tools `client` sees.
pub async fn tool_names(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// Calls `tool`; a JSON-RPC error comes back as `Err`, a transport failure panics.
pub async fn call(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    tool: &str,
    args: Value,
) -> Result<rmcp::model::CallToolResult, rmcp::ErrorData> {
    let params = rmcp::model::CallToolRequestParams::new(tool.to_owned())
        .with_arguments(args.as_object().unwrap().clone());
    match client.call_tool(params).await {
        Ok(result) => Ok(result),
        Err(rmcp::service::ServiceError::McpError(e)) => Err(e),
        Err(e) => panic!("transport failure: {e}"),
    }
}

/// A server restricted to the finance group, whose `get_doc` is further limited to finance leads.
pub const FINANCE_DOCS: &str = r##"
[server]
name = "finance-docs"
description = "Finance runbooks"
owner_team = "finance-eng"
support_channel = "#finance-eng"

[access]
allowed_groups = ["finance"]

[policies.finance-leads]
groups = ["finance-leads"]
description = "Full documents only for finance leads"

[tools.search_docs]
minutes_saved = 3.0

[tools.get_doc]
minutes_saved = 1.0
sensitivity = "high"
policy = "finance-leads"
# Sensitive tools wait for their owners' approval unless the manifest says otherwise.
approval = "none"
"##;

/// Serves `handler` with the server SDK on a loopback port, trusting only the gateway at
/// `gateway_url` (as a team's server would); returns its MCP endpoint. The server runs until the test ends.
pub async fn serve_sdk<S>(gateway_url: &str, manifest: catalog::Manifest, handler: S) -> String
where
    S: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    use identity::{KeySource, TrustedIssuer, Verifier};
    use server_sdk::{Caller, Governance, HttpOptions, IdentityMode};
    let verifier = Verifier::new(
        manifest.server.name.clone(),
        vec![TrustedIssuer::new(
            gateway_url.to_owned(),
            KeySource::Url(format!("{gateway_url}/.well-known/jwks.json")),
        )],
    )
    .unwrap();
    let governance = Governance::new(manifest, Caller::anonymous()).unwrap();
    let router = server_sdk::http_router(
        move || handler.clone(),
        governance,
        HttpOptions {
            identity: IdentityMode::Gateway(verifier),
            allowed_hosts: Vec::new(),
            ready: None,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    endpoint
}

/// An agent on the official Python SDK (`tests/clients/python_client.py`): one call of `tool`
/// with `args` at `url`, in `mode` (`2026-07-28` or `legacy`), answering elicitation requests with
/// `elicit` (`accept`, `decline`, or none: no elicitation support). Not yet run.
pub fn python_agent(
    python: &Path,
    url: &str,
    mode: &str,
    token: &str,
    tool: &str,
    args: &Value,
    elicit: Option<&str>,
) -> Command {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/python_client.py"
    );
    let mut command = Command::new(python);
    command.args([script, url, mode, token, tool, &args.to_string()]);
    match elicit {
        Some(answer) => command.env("SWITCHBOARD_ELICIT", answer),
        None => command.env_remove("SWITCHBOARD_ELICIT"),
    };
    command
}

/// What [`python_agent`] printed, once it ran successfully.
pub fn python_output(out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
