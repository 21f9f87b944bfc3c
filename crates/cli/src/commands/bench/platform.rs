//! The platform a benchmark runs against: a registry (SQLite), a gateway and the upstream
//! fixture(s), each a process of this binary, so each one's CPU and memory can be read apart;
//! the upstream registered and approved through the registry's API as any server is.

use std::{
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use registry_api::RegisterServer;
use registry_client::RegistryClient;
use serde_json::{Value, json};

use crate::{commands::gateway::dev_service_credentials, dev};

/// The upstream every call scenario calls.
pub(crate) const SERVER: &str = "bench";
/// The server doing real work in the `work` scenario: the bundled Knowledge server.
pub(crate) const KNOWLEDGE: &str = "knowledge";
/// The most tools the registry takes from one server.
pub(crate) const TOOLS_PER_SERVER: usize = registry::MAX_TOOLS_PER_SERVER;

/// A child process, killed when dropped.
pub(crate) struct Child {
    name: String,
    child: std::process::Child,
    log: PathBuf,
}

impl Child {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of its log, for an error message.
    pub(crate) fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        let start = (start..log.len())
            .find(|i| log.is_char_boundary(*i))
            .unwrap_or(log.len());
        format!("----- {} log -----\n{}", self.name, &log[start..])
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // Its whole process group: ContextForge's workers are processes of their own.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program ARGS` (this binary when `program` is None) with its output in
/// `<dir>/<name>.log`; with `ready`, waits for `--ready-file` and returns what it holds.
pub(crate) async fn spawn(
    dir: &Path,
    name: &str,
    program: Option<&Path>,
    args: &[&str],
    env: &[(&str, String)],
    ready: bool,
) -> anyhow::Result<(Child, Value)> {
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log)?;
    let program = match program {
        Some(p) => p.to_owned(),
        None => std::env::current_exe()?,
    };
    let mut command = std::process::Command::new(&program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .process_group(0)
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(out));
    let ready_file = dir.join(format!("{name}.ready.json"));
    if ready {
        command.arg("--ready-file").arg(&ready_file);
    }
    let child = command
        .spawn()
        .map_err(|e| anyhow::anyhow!("start {}: {e}", program.display()))?;
    let mut child = Child {
        name: name.to_owned(),
        child,
        log,
    };
    if !ready {
        return Ok((child, Value::Null));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(&ready_file)
            && let Ok(value) = serde_json::from_str::<Value>(&text)
        {
            return Ok((child, value));
        }
        if let Ok(Some(status)) = child.child.try_wait() {
            anyhow::bail!("{name} exited with {status}\n{}", child.log_tail());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{name} was not ready within 60 s\n{}",
            child.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) struct Platform {
    /// Holds the processes' data and logs until the benchmark ends.
    dir: tempfile::TempDir,
    pub(crate) registry: Child,
    pub(crate) gateway: Child,
    pub(crate) upstream: Child,
    /// The many-tools upstream, when a scenario needs it (running while this lives).
    _wide: Option<Child>,
    /// The Knowledge server, once a scenario asked for it.
    knowledge: Option<Child>,
    pub(crate) registry_url: String,
    pub(crate) gateway_url: String,
    /// Base URLs of the upstreams, by server name.
    upstreams: Vec<(String, String)>,
    /// The many-tools servers.
    pub(crate) wide_servers: Vec<String>,
    /// A token for [`USER`] in [`user_groups`] from the development issuer.
    pub(crate) token: String,
    /// The gateway's signing key, read from the data folder it shares with the benchmark.
    assertion_key: identity::SigningKey,
    pub(crate) data_dir: PathBuf,
}

/// The benchmark's user, and their groups.
pub(crate) const USER: &str = "bench-user";

fn user_groups() -> Vec<String> {
    vec!["employees".into()]
}

fn url_of(ready: &Value, name: &str) -> anyhow::Result<String> {
    ready["url"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{name}'s ready file has no url"))
}

impl Platform {
    /// Starts everything; with `wide`, that many more tools in servers of at most
    /// [`TOOLS_PER_SERVER`] tools each, served by one more upstream process. `audit_sync` is the
    /// gateway's `--audit-sync`, `workers` its runtime's worker threads (default: one per core).
    pub(crate) async fn start(
        wide: Option<usize>,
        audit_sync: &str,
        workers: Option<usize>,
    ) -> anyhow::Result<Platform> {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-bench")
            .tempdir()?;
        let data_dir = dir.path().join("data");
        let data = data_dir.to_str().unwrap_or_default().to_owned();
        let (upstream, ready) = spawn(
            dir.path(),
            "upstream",
            None,
            &["bench", "fixture", "--name", SERVER],
            &[],
            true,
        )
        .await?;
        let mut upstreams = vec![(SERVER.to_owned(), url_of(&ready, "upstream")?)];
        let mut wide_servers = Vec::new();
        let wide_upstream = match wide {
            Some(tools) if tools > 0 => {
                let per_server = tools.min(TOOLS_PER_SERVER);
                let (child, ready) = spawn(
                    dir.path(),
                    "upstream-wide",
                    None,
                    // Each lists `echo` too: fillers one short of the registry's limit.
                    &[
                        "bench",
                        "fixture",
                        "--name",
                        "bench-wide",
                        "--tools",
                        &(per_server - 1).to_string(),
                    ],
                    &[],
                    true,
                )
                .await?;
                let base = url_of(&ready, "upstream-wide")?;
                for i in 0..tools.div_ceil(per_server) {
                    let name = format!("bench-wide-{:02}", i + 1);
                    upstreams.push((name.clone(), format!("{base}/{name}")));
                    wide_servers.push((name, per_server - 1));
                }
                Some(child)
            }
            _ => None,
        };
        let (registry, ready) = spawn(
            dir.path(),
            "registry",
            None,
            &[
                "registry",
                "--listen",
                "127.0.0.1:0",
                "--dev-issuer",
                "--data-dir",
                &data,
            ],
            &[],
            true,
        )
        .await?;
        let registry_url = url_of(&ready, "registry")?;
        let (gateway, ready) = spawn(
            dir.path(),
            "gateway",
            None,
            &[
                "gateway",
                "--listen",
                "127.0.0.1:0",
                "--registry-url",
                &registry_url,
                "--dev-issuer",
                "--data-dir",
                &data,
                "--catalog-refresh-secs",
                "1",
                "--audit-sync",
                audit_sync,
            ],
            &workers
                .map(|n| ("TOKIO_WORKER_THREADS", n.to_string()))
                .into_iter()
                .collect::<Vec<_>>(),
            true,
        )
        .await?;
        let gateway_url = url_of(&ready, "gateway")?;
        let key = dev::load_key(&data_dir)?;
        let token = dev::mint(&key, USER, user_groups(), 12 * 3600)?;
        // The gateway made its key before it said it was ready; a key made here instead would
        // sign assertions no server accepts.
        let key_path = crate::commands::gateway::assertion_key_path(&data_dir);
        anyhow::ensure!(
            key_path.exists(),
            "the gateway's signing key is not at {}",
            key_path.display()
        );
        let assertion_key = identity::SigningKey::load_or_create(&key_path)?;
        let platform = Platform {
            dir,
            registry,
            gateway,
            upstream,
            _wide: wide_upstream,
            knowledge: None,
            registry_url,
            gateway_url,
            upstreams,
            wide_servers: wide_servers.iter().map(|(n, _)| n.clone()).collect(),
            token,
            assertion_key,
            data_dir,
        };
        // The sample teams `up` creates, one of which owns the upstreams.
        let admin = RegistryClient::new(
            &platform.registry_url,
            dev::credentials(key, "bench", vec![dev::ADMINS_GROUP.into()]),
        );
        crate::commands::up::seed_teams(&admin).await?;
        platform.register(SERVER, 0).await?;
        for (name, fillers) in &wide_servers {
            platform.register(name, *fillers).await?;
        }
        Ok(platform)
    }

    /// The gateway's assertion of [`USER`] for `server`, signed with the gateway's own key as
    /// the gateway signs it: the identity a direct call carries to be served for the same
    /// caller as a call through the gateway.
    pub(crate) fn assertion(&self, server: &str) -> anyhow::Result<String> {
        let mut claims =
            identity::Claims::new(&self.gateway_url, USER, server, user_groups(), 12 * 3600);
        // The surface the gateway names for a token that names none.
        claims.surface = Some("api".into());
        Ok(self.assertion_key.sign(&claims)?)
    }

    pub(crate) fn gateway_mcp(&self, server: &str) -> String {
        format!("{}/servers/{server}/mcp", self.gateway_url)
    }

    /// The process serving `server` directly.
    pub(crate) fn upstream_pid(&self, server: &str) -> u32 {
        match &self.knowledge {
            Some(knowledge) if server == KNOWLEDGE => knowledge.pid(),
            _ => self.upstream.pid(),
        }
    }

    /// Starts the bundled Knowledge server (its sample corpus), trusting the gateway's
    /// assertions and taking calls without one as `anonymous` (the direct runs); it registers
    /// itself, its reviews are approved, and this returns once the gateway serves it.
    pub(crate) async fn start_knowledge(&mut self) -> anyhow::Result<()> {
        if self.knowledge.is_some() {
            return Ok(());
        }
        let jwks = format!("{}/.well-known/jwks.json", self.gateway_url);
        let data = self.data_dir.to_str().unwrap_or_default().to_owned();
        let (child, ready) = spawn(
            self.dir.path(),
            "knowledge",
            None,
            &[
                "server",
                "knowledge",
                "--listen",
                "127.0.0.1:0",
                "--gateway-jwks",
                &jwks,
                "--register-with",
                &self.registry_url,
                "--dev-issuer",
                "--data-dir",
                &data,
                "--environment",
                "prod",
                "--reindex-every-secs",
                "0",
            ],
            &[],
            true,
        )
        .await?;
        self.upstreams
            .push((KNOWLEDGE.to_owned(), url_of(&ready, "knowledge")?));
        self.knowledge = Some(child);
        self.approve_and_wait(
            KNOWLEDGE,
            json!({"name": "search_docs", "arguments": {"query": "ready?"}}),
        )
        .await
    }

    pub(crate) fn upstream_mcp(&self, server: &str) -> String {
        let base = self
            .upstreams
            .iter()
            .find(|(name, _)| name == server)
            .map(|(_, url)| url.as_str())
            .unwrap_or_default();
        format!("{base}/mcp")
    }

    /// Registers an upstream with its tools, approves its reviews, and waits until the gateway
    /// serves its tools to the benchmark's user.
    async fn register(&self, name: &str, fillers: usize) -> anyhow::Result<()> {
        let key = || dev::load_key(&self.data_dir);
        let manifest = catalog::Manifest::parse(&format!(
            r##"
[server]
name = "{name}"
description = "The benchmark's upstream: answers from memory"
owner_team = "switchboard"
support_channel = "#switchboard-bench"
[tools.echo]
minutes_saved = 1.0
"##
        ))
        .map_err(|problems| anyhow::anyhow!("the benchmark's manifest: {problems:?}"))?;
        let tools = super::fixture::tools(fillers)
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<Vec<_>, _>>()?;
        let registrar =
            RegistryClient::new(&self.registry_url, dev_service_credentials(key()?, name));
        registrar
            .register(&RegisterServer {
                manifest,
                endpoint: self.upstream_mcp(name),
                environment: "prod".into(),
                tools,
                policies: String::new(),
            })
            .await?;
        self.approve_and_wait(
            name,
            json!({"name": "echo", "arguments": {"text": "ready?"}}),
        )
        .await
    }

    /// Approves every review open on `name`, and waits until the gateway runs the call `call`
    /// (tools/call params) for the benchmark's user.
    async fn approve_and_wait(&self, name: &str, call: Value) -> anyhow::Result<()> {
        let key = || dev::load_key(&self.data_dir);
        let reviewer_groups: Vec<String> = ::registry::Governance::new(Vec::new())
            .reviewer_groups
            .into_values()
            .flatten()
            .collect();
        let reviewer = RegistryClient::new(
            &self.registry_url,
            dev::credentials(key()?, "bench-reviewer", reviewer_groups),
        );
        for review in reviewer.list_reviews(Some(name), Some("pending")).await? {
            reviewer
                .decide_review(&review.id, true, "the benchmark's own upstream")
                .await?;
        }
        // The gateway picks the server up at its next catalog refresh.
        let client = super::load::client(false);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let template = super::prepare(
                client.clone(),
                self.gateway_mcp(name),
                super::Auth::Bearer(self.token.clone()),
                super::fixture::MODERN,
                "tools/call",
                call.clone(),
            )
            .await?;
            let answer = super::load::send(&client, &template).await;
            match answer {
                Ok(a) if a.is_result() => return Ok(()),
                Ok(a) if Instant::now() > deadline => anyhow::bail!(
                    "the gateway did not serve {name} within 60 s: {}\n{}",
                    a.describe(),
                    self.gateway.log_tail()
                ),
                Err(e) if Instant::now() > deadline => return Err(e),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}
