//! `switchboard bench`: the platform under load, measured against baselines taken in the same
//! run. It starts a registry, a gateway and the benchmark's upstream server (`bench fixture`) as
//! processes of their own, registers and approves the upstream, and then runs each scenario
//! twice, direct to the upstream (carrying the gateway's assertion of the same user, as the
//! gateway's own request does) and through the gateway (a signed user token verified, policy
//! decided, identity asserted to the server, every call audited), reporting throughput, latency
//! percentiles and the CPU and memory of each process. With `--contextforge` the same calls go
//! through IBM ContextForge in front of the same upstream too.

mod contextforge;
pub(crate) mod fixture;
mod load;
mod platform;

use std::{path::PathBuf, time::Duration};

use axum::body::Bytes;
use serde::Serialize;
use serde_json::{Value, json};

use self::{
    super::gateway::AuditSyncArg,
    fixture::{LEGACY, MODERN},
    load::{HttpClient, Summary, Template, Used},
    platform::Platform,
};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct Args {
    #[command(subcommand)]
    fixture: Option<Fixture>,
    #[command(flatten)]
    options: Options,
}

#[derive(clap::Subcommand)]
enum Fixture {
    /// The benchmark's upstream MCP server (started by `bench` itself).
    #[command(hide = true)]
    Fixture(fixture::Args),
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    /// tools/call in both eras, closed loop, direct and through the gateway.
    Call,
    /// tools/call at a fixed rate (open loop), direct and through the gateway.
    Open,
    /// tools/call on a new TCP connection each time, direct and through the gateway.
    Connect,
    /// tools/list of servers of 1,000 tools (--list-tools in all, visible to the user), both
    /// eras.
    List,
    /// The registry's discovery API, against its health check.
    Discovery,
    /// --clients connections held at once, direct and through the gateway, each calling now
    /// and then.
    Clients,
    /// tools/call of a server doing real work (the bundled Knowledge server's search_docs over
    /// its sample corpus), closed loop, direct and through the gateway.
    Work,
}

#[derive(clap::Args)]
struct Options {
    /// Which scenarios to run (comma-separated).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = [Scenario::Call, Scenario::Work, Scenario::Open, Scenario::Connect, Scenario::List, Scenario::Discovery, Scenario::Clients]
    )]
    scenarios: Vec<Scenario>,
    /// Seconds each measured run lasts.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Requests in flight at once in the closed-loop runs.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Requests per second of the open-loop runs (default: half the gateway's closed-loop
    /// throughput measured by `call`, else 1,000), the same for both paths.
    #[arg(long)]
    open_rate: Option<f64>,
    /// Connections the `clients` scenario holds at once.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Calls per second all held clients make together.
    #[arg(long, default_value_t = 1_000.0)]
    clients_rate: f64,
    /// Tools visible to the user in the `list` scenario, in servers of at most 1,000 tools
    /// each (the registry's limit); `discovery` answers with all of them too.
    #[arg(long, default_value_t = 10_000)]
    list_tools: usize,
    /// IBM ContextForge's `mcpgateway` executable (`pip install mcp-contextforge-gateway`): the
    /// call scenario also runs through it, in front of the same upstream.
    #[arg(long)]
    contextforge: Option<PathBuf>,
    /// Worker processes ContextForge runs (uvicorn's `--workers`).
    #[arg(long, default_value_t = 1)]
    contextforge_workers: usize,
    /// The gateway's `--audit-sync`: `disk` (a call's audit record is synced to disk before
    /// it is answered) or `os` (written to the operating system, synced within 0.1 s).
    #[arg(long, value_enum, default_value_t = AuditSyncArg::Disk)]
    audit_sync: AuditSyncArg,
    /// Worker threads of the gateway's runtime (its `TOKIO_WORKER_THREADS`; default: one per
    /// core).
    #[arg(long)]
    gateway_workers: Option<usize>,
    /// Write the whole report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// One measured run: where the requests went and what came back, and what each process used.
#[derive(Serialize)]
struct Run {
    scenario: &'static str,
    era: &'static str,
    path: String,
    #[serde(flatten)]
    summary: Summary,
    used: serde_json::Map<String, Value>,
}

/// A comparison of two runs of the report, stated as a ratio.
#[derive(Serialize)]
struct Ratio {
    what: String,
    value: f64,
}

#[derive(Serialize, Default)]
struct Report {
    machine: Value,
    runs: Vec<Run>,
    ratios: Vec<Ratio>,
    /// Memory figures of the gateway (MB) by moment.
    memory: serde_json::Map<String, Value>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Fixture::Fixture(args)) = args.fixture {
        return fixture::run(args).await;
    }
    // Interrupted (Ctrl-C, SIGTERM), the benchmark is dropped, and with it the processes it
    // started.
    let stop = service_kit::shutdown_on_signal();
    tokio::select! {
        measured = measure(args.options) => measured,
        () = stop.cancelled() => anyhow::bail!("interrupted; the processes it started are stopped"),
    }
}

async fn measure(options: Options) -> anyhow::Result<()> {
    anyhow::ensure!(options.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(
        options.duration_secs > 0,
        "--duration-secs must be at least 1"
    );
    let wide = options
        .scenarios
        .contains(&Scenario::List)
        .then_some(options.list_tools);
    eprintln!("starting the registry, the gateway and the upstream…");
    let audit_sync = options.audit_sync.as_str();
    anyhow::ensure!(
        options.gateway_workers != Some(0),
        "--gateway-workers must be at least 1"
    );
    let platform = Platform::start(wide, audit_sync, options.gateway_workers).await?;
    let mut bench = Bench {
        platform,
        options,
        report: Report::default(),
        pooled: load::client(false),
    };
    bench.report.machine = json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "gateway_audit_sync": audit_sync,
        "gateway_workers": bench.options.gateway_workers,
    });
    if cfg!(debug_assertions) {
        eprintln!(
            "note: this is a debug build; measure with `cargo run --release -p switchboard -- bench`"
        );
    }
    let idle = load::usage(bench.platform.gateway.pid());
    bench.memory("gateway_idle_mb", idle.rss_bytes);
    bench.memory("gateway_idle_anon_mb", idle.anon_bytes);
    let scenarios = bench.options.scenarios.clone();
    for scenario in scenarios {
        match scenario {
            Scenario::Call => bench.call().await?,
            Scenario::Open => bench.open().await?,
            Scenario::Connect => bench.connect().await?,
            Scenario::List => bench.list().await?,
            Scenario::Discovery => bench.discovery().await?,
            Scenario::Clients => bench.clients().await?,
            Scenario::Work => bench.work().await?,
        }
    }
    if let Some(executable) = bench.options.contextforge.clone() {
        bench.contextforge(&executable).await?;
    }
    bench.print();
    if let Some(path) = &bench.options.json {
        std::fs::write(path, serde_json::to_string_pretty(&bench.report)?)
            .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
    }
    let failed: Vec<String> = bench
        .report
        .runs
        .iter()
        .filter(|r| r.summary.errors > 0)
        .map(|r| {
            format!(
                "{} {} {}: {} errors, first: {}",
                r.scenario,
                r.era,
                r.path,
                r.summary.errors,
                r.summary.first_error.as_deref().unwrap_or("")
            )
        })
        .collect();
    anyhow::ensure!(failed.is_empty(), "requests failed:\n{}", failed.join("\n"));
    Ok(())
}

/// The params of the call every echo scenario makes.
fn echo_params() -> Value {
    json!({"name": "echo", "arguments": {"text": "hello"}})
}

/// The JSON-RPC body of a request in an era: modern requests carry `_meta`.
fn rpc(era: &str, id: u64, method: &str, mut params: Value) -> Bytes {
    if era == MODERN {
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "switchboard-bench", "version": env!("CARGO_PKG_VERSION")}
        });
    }
    Bytes::from(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string())
}

/// Prepares a request to `url` the way a client of `era` sends it: a legacy client opens its
/// session first (initialize, initialized) and names it on every request; a modern one sends the
/// standard headers.
async fn prepare(
    client: HttpClient,
    url: String,
    auth: Auth,
    era: &'static str,
    method: &'static str,
    params: Value,
) -> anyhow::Result<Template> {
    let name = params["name"].as_str().map(str::to_owned);
    let (header, value) = auth.header();
    let template = Template::post(&url, rpc(era, 2, method, params))
        .header("mcp-protocol-version", era)?
        .header(header, &value)?;
    if era == MODERN {
        let mut template = template.header("mcp-method", method)?;
        if let Some(name) = name {
            template = template.header("mcp-name", &name)?;
        }
        return Ok(template);
    }
    let mut initialize = template.clone();
    initialize.body = rpc(
        era,
        1,
        "initialize",
        json!({"protocolVersion": LEGACY, "capabilities": {},
               "clientInfo": {"name": "switchboard-bench", "version": env!("CARGO_PKG_VERSION")}}),
    );
    let answer = load::send(&client, &initialize).await?;
    anyhow::ensure!(answer.is_result(), "initialize: {}", answer.describe());
    // A server may run without sessions (the 2025-11-25 transport lets it): then none is sent.
    let template = match answer
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
    {
        Some(session) => template.header("mcp-session-id", session)?,
        None => template,
    };
    let mut initialized = template.clone();
    initialized.body = Bytes::from(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    let answer = load::send(&client, &initialized).await?;
    anyhow::ensure!(
        answer.status == 202 || answer.status == 200,
        "notifications/initialized: {}",
        answer.describe()
    );
    Ok(template)
}

/// How a request says who is calling.
#[derive(Clone)]
pub(crate) enum Auth {
    /// The user's own token, as a client sends it to the gateway.
    Bearer(String),
    /// The gateway's signed assertion of the same user, as the gateway sends it to the server:
    /// a direct call carrying it is served for the same caller (the same groups, so the same
    /// documents searched) as the call through the gateway.
    Assertion(String),
}

impl Auth {
    fn header(&self) -> (&'static str, String) {
        match self {
            Auth::Bearer(token) => ("authorization", format!("Bearer {token}")),
            Auth::Assertion(signed) => (identity::ASSERTION_HEADER, signed.clone()),
        }
    }
}

/// One side of a comparison: a request, direct to the upstream or through the gateway.
struct Leg {
    scenario: &'static str,
    era: &'static str,
    server: &'static str,
    through_gateway: bool,
    method: &'static str,
    params: Value,
}

struct Bench {
    platform: Platform,
    options: Options,
    report: Report,
    pooled: HttpClient,
}

impl Bench {
    /// A 2026-07-28 call of the upstream's `echo` at `url`.
    async fn echo(&self, url: String, auth: Auth) -> anyhow::Result<Template> {
        prepare(
            self.pooled.clone(),
            url,
            auth,
            MODERN,
            "tools/call",
            echo_params(),
        )
        .await
    }

    fn duration(&self) -> Duration {
        Duration::from_secs(self.options.duration_secs)
    }

    fn memory(&mut self, moment: &str, bytes: u64) {
        self.report.memory.insert(
            moment.into(),
            json!((bytes as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0),
        );
    }

    fn record(
        &mut self,
        scenario: &'static str,
        era: &'static str,
        path: &str,
        summary: Summary,
        used: Vec<(&str, Used)>,
    ) -> usize {
        eprintln!(
            "  {scenario:<9} {era:<10} {path:<22} {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms{}",
            summary.throughput,
            summary.p50_ms,
            summary.p99_ms,
            if summary.errors > 0 {
                format!("  {} errors", summary.errors)
            } else {
                String::new()
            }
        );
        self.report.runs.push(Run {
            scenario,
            era,
            path: path.to_owned(),
            summary,
            used: used
                .into_iter()
                .map(|(name, used)| (name.to_owned(), json!(used)))
                .collect(),
        });
        self.report.runs.len() - 1
    }

    fn ratio(&mut self, what: String, value: f64) {
        self.report.ratios.push(Ratio {
            what,
            value: (value * 1000.0).round() / 1000.0,
        });
    }

    /// Watches the gateway, the upstream, the registry and this process.
    fn watch(&self) -> load::Watch {
        self.watch_for(platform::SERVER)
    }

    /// [`Bench::watch`], with the process serving `server` as the upstream.
    fn watch_for(&self, server: &str) -> load::Watch {
        load::Watch::start(vec![
            self.platform.gateway.pid(),
            self.platform.upstream_pid(server),
            self.platform.registry.pid(),
            std::process::id(),
        ])
    }

    fn used(used: Vec<Used>) -> Vec<(&'static str, Used)> {
        ["gateway", "upstream", "registry", "load generator"]
            .into_iter()
            .zip(used)
            .collect()
    }

    /// Where a request to `server` goes, as whom, and the path's name in the report: through
    /// the gateway with the benchmark's user's token, or direct to the upstream with the
    /// gateway's assertion of that user (the request the gateway itself would send).
    fn route(
        &self,
        server: &str,
        through_gateway: bool,
    ) -> anyhow::Result<(String, Auth, &'static str)> {
        Ok(if through_gateway {
            (
                self.platform.gateway_mcp(server),
                Auth::Bearer(self.platform.token.clone()),
                "gateway",
            )
        } else {
            (
                self.platform.upstream_mcp(server),
                Auth::Assertion(self.platform.assertion(server)?),
                "direct",
            )
        })
    }

    /// A closed-loop run of `leg`, `concurrency` requests in flight on `client`.
    async fn closed(
        &mut self,
        leg: Leg,
        client: HttpClient,
        concurrency: usize,
    ) -> anyhow::Result<usize> {
        let (url, auth, path) = self.route(leg.server, leg.through_gateway)?;
        let watch = self.watch_for(leg.server);
        let (era, method, params) = (leg.era, leg.method, leg.params);
        let samples = load::closed_loop(&client, concurrency, self.duration(), |client| {
            prepare(
                client,
                url.clone(),
                auth.clone(),
                era,
                method,
                params.clone(),
            )
        })
        .await?;
        let used = Bench::used(watch.stop());
        Ok(self.record(leg.scenario, era, path, samples.summary(), used))
    }

    fn compare(&mut self, what: &str, direct: usize, gateway: usize) {
        let (d, g) = (
            self.report.runs[direct].summary.clone(),
            self.report.runs[gateway].summary.clone(),
        );
        self.ratio(
            format!("{what}: gateway throughput / direct"),
            g.throughput / d.throughput.max(1e-9),
        );
        self.ratio(
            format!("{what}: gateway p50 - direct p50 (ms)"),
            g.p50_ms - d.p50_ms,
        );
        self.ratio(
            format!("{what}: gateway p99 - direct p99 (ms)"),
            g.p99_ms - d.p99_ms,
        );
    }

    async fn call(&mut self) -> anyhow::Result<()> {
        eprintln!(
            "call: tools/call, closed loop, {} in flight",
            self.options.concurrency
        );
        for era in [LEGACY, MODERN] {
            let echo = echo_params();
            let client = self.pooled.clone();
            let concurrency = self.options.concurrency;
            let direct = self
                .closed(
                    Leg {
                        scenario: "call",
                        era,
                        server: platform::SERVER,
                        through_gateway: false,
                        method: "tools/call",
                        params: echo.clone(),
                    },
                    client.clone(),
                    concurrency,
                )
                .await?;
            let gateway = self
                .closed(
                    Leg {
                        scenario: "call",
                        era,
                        server: platform::SERVER,
                        through_gateway: true,
                        method: "tools/call",
                        params: echo,
                    },
                    client,
                    concurrency,
                )
                .await?;
            self.compare(&format!("tools/call {era}"), direct, gateway);
        }
        Ok(())
    }

    /// The same tools/call path in front of a server that does real work per call (BM25 search
    /// over the Knowledge server's sample corpus, with the SDK's identity check, policy and
    /// telemetry), where what the gateway adds is set against what a call costs anyway.
    async fn work(&mut self) -> anyhow::Result<()> {
        self.platform.start_knowledge().await?;
        eprintln!(
            "work: tools/call of the Knowledge server's search_docs, closed loop, {} in flight",
            self.options.concurrency
        );
        let search =
            json!({"name": "search_docs", "arguments": {"query": "spark executor out of memory"}});
        let client = self.pooled.clone();
        let concurrency = self.options.concurrency;
        let mut runs = Vec::new();
        for through_gateway in [false, true] {
            let leg = Leg {
                scenario: "work",
                era: MODERN,
                server: platform::KNOWLEDGE,
                through_gateway,
                method: "tools/call",
                params: search.clone(),
            };
            runs.push(self.closed(leg, client.clone(), concurrency).await?);
        }
        self.compare(&format!("search_docs {MODERN}"), runs[0], runs[1]);
        Ok(())
    }

    async fn open(&mut self) -> anyhow::Result<()> {
        let rate = self.options.open_rate.unwrap_or_else(|| {
            self.report
                .runs
                .iter()
                .find(|r| r.scenario == "call" && r.path == "gateway" && r.era == MODERN)
                .map(|r| (r.summary.throughput / 2.0).round())
                .unwrap_or(1_000.0)
        });
        eprintln!("open: tools/call at {rate} per second (open loop)");
        let mut indices = Vec::new();
        for through_gateway in [false, true] {
            let (url, auth, path) = self.route(platform::SERVER, through_gateway)?;
            let template = self.echo(url, auth).await?;
            let watch = self.watch();
            let samples = load::open_loop(&self.pooled, rate, self.duration(), template).await?;
            let used = Bench::used(watch.stop());
            indices.push(self.record("open", MODERN, path, samples.summary(), used));
        }
        self.compare(&format!("tools/call at {rate}/s"), indices[0], indices[1]);
        Ok(())
    }

    async fn connect(&mut self) -> anyhow::Result<()> {
        eprintln!("connect: tools/call on a new connection each time");
        let fresh = load::client(true);
        let echo = echo_params();
        let concurrency = self.options.concurrency;
        let direct = self
            .closed(
                Leg {
                    scenario: "connect",
                    era: MODERN,
                    server: platform::SERVER,
                    through_gateway: false,
                    method: "tools/call",
                    params: echo.clone(),
                },
                fresh.clone(),
                concurrency,
            )
            .await?;
        let gateway = self
            .closed(
                Leg {
                    scenario: "connect",
                    era: MODERN,
                    server: platform::SERVER,
                    through_gateway: true,
                    method: "tools/call",
                    params: echo,
                },
                fresh,
                concurrency,
            )
            .await?;
        self.compare("tools/call on new connections", direct, gateway);
        // Against the pooled runs of `call`, when it ran: what a new connection costs.
        for (path, index) in [("direct", direct), ("gateway", gateway)] {
            if let Some(pooled) = self
                .report
                .runs
                .iter()
                .find(|r| r.scenario == "call" && r.era == MODERN && r.path == path)
                .map(|r| r.summary.p50_ms)
            {
                let fresh = self.report.runs[index].summary.p50_ms;
                self.ratio(
                    format!("{path}: p50 on a new connection / pooled"),
                    fresh / pooled.max(1e-9),
                );
            }
        }
        Ok(())
    }

    async fn list(&mut self) -> anyhow::Result<()> {
        let servers = self.platform.wide_servers.clone();
        if servers.is_empty() {
            eprintln!("list: skipped (--list-tools 0)");
            return Ok(());
        }
        let tools = servers.len() * platform::TOOLS_PER_SERVER;
        eprintln!(
            "list: tools/list of {} servers of {} tools ({tools} visible tools), closed loop, 4 in flight",
            servers.len(),
            platform::TOOLS_PER_SERVER
        );
        for era in [LEGACY, MODERN] {
            let mut indices = Vec::new();
            for through_gateway in [false, true] {
                let path = self.route(platform::SERVER, through_gateway)?.2;
                let routes: Vec<(String, Auth)> = servers
                    .iter()
                    .map(|s| {
                        self.route(s, through_gateway)
                            .map(|(url, auth, _)| (url, auth))
                    })
                    .collect::<anyhow::Result<_>>()?;
                // Each worker lists the next server.
                let next = std::sync::atomic::AtomicUsize::new(0);
                let watch = self.watch();
                let client = self.pooled.clone();
                let samples = load::closed_loop(&client, 4, self.duration(), |client| {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (url, auth) = routes[i % routes.len()].clone();
                    prepare(client, url, auth, era, "tools/list", json!({}))
                })
                .await?;
                let used = Bench::used(watch.stop());
                indices.push(self.record("list", era, path, samples.summary(), used));
            }
            self.compare(
                &format!("tools/list of {} tools {era}", platform::TOOLS_PER_SERVER),
                indices[0],
                indices[1],
            );
        }
        Ok(())
    }

    async fn discovery(&mut self) -> anyhow::Result<()> {
        eprintln!(
            "discovery: GET /v1/discovery, and revalidated by its ETag, against GET /healthz, closed loop"
        );
        let discovery = Template::get(&format!("{}/v1/discovery", self.platform.registry_url))
            .header("authorization", &format!("Bearer {}", self.platform.token))?;
        // The tag a client that polls discovery sends back.
        let first = load::send(&self.pooled, &discovery).await?;
        let tag = first
            .headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| anyhow::anyhow!("the discovery answer has no ETag"))?
            .to_owned();
        let revalidated = discovery
            .clone()
            .header("if-none-match", &tag)?
            .expecting(304);
        let mut indices = Vec::new();
        for (template, what) in [
            (
                Template::get(&format!("{}/healthz", self.platform.registry_url)),
                "registry /healthz",
            ),
            (discovery, "registry /v1/discovery"),
            (revalidated, "registry /v1/discovery 304"),
        ] {
            let watch = self.watch();
            let client = self.pooled.clone();
            let samples =
                load::closed_loop(&client, self.options.concurrency, self.duration(), |_| {
                    let template = template.clone();
                    async move { Ok(template) }
                })
                .await?;
            let used = Bench::used(watch.stop());
            indices.push(self.record("discovery", "-", what, samples.summary(), used));
        }
        let throughput = |i: usize| self.report.runs[indices[i]].summary.throughput;
        let (health, full, revalidated) = (throughput(0), throughput(1), throughput(2));
        self.ratio(
            "discovery throughput / health check".into(),
            full / health.max(1e-9),
        );
        self.ratio(
            "discovery revalidated (304) throughput / health check".into(),
            revalidated / health.max(1e-9),
        );
        Ok(())
    }

    /// `--clients` connections held at once, direct to the upstream (a plain axum server, the
    /// baseline of what a held connection costs) and through the gateway, with the memory of the
    /// process holding them once all are connected and at the peak.
    async fn clients(&mut self) -> anyhow::Result<()> {
        let clients = self.options.clients;
        let period = Duration::from_secs_f64(clients as f64 / self.options.clients_rate.max(1.0));
        let duration = self.duration().max(period * 3);
        eprintln!(
            "clients: {clients} connections held direct and through the gateway, each calling every {:.1} s, for {} s",
            period.as_secs_f64(),
            duration.as_secs()
        );
        let mut own_per_client = Vec::new();
        for through_gateway in [false, true] {
            let (url, auth, path) = self.route(platform::SERVER, through_gateway)?;
            let addr: std::net::SocketAddr = url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|e| anyhow::anyhow!("the address of {url}: {e}"))?;
            let (holder, pid) = if through_gateway {
                ("gateway", self.platform.gateway.pid())
            } else {
                ("upstream", self.platform.upstream.pid())
            };
            let template = self.echo(url, auth).await?;
            let idle = load::usage(pid);
            let connected = std::sync::Arc::new(std::sync::Mutex::new(load::Usage::default()));
            let watch = self.watch();
            let samples = {
                let connected = connected.clone();
                load::held_clients(addr, clients, period, duration, template, async move {
                    if let Ok(mut c) = connected.lock() {
                        *c = load::usage(pid);
                    }
                })
                .await?
            };
            let used = watch.stop();
            // In the order `watch` reads them: the gateway, then the upstream.
            let peak = if through_gateway { used[0] } else { used[1] };
            let bytes = |mb: f64| (mb * 1024.0 * 1024.0) as u64;
            let at_connect = connected.lock().map(|c| *c).unwrap_or_default();
            // Resident memory counts the executable's code pages mapped from disk (one binary
            // holds every component); the anonymous figure is the process's own memory.
            self.memory(
                &format!("{holder}_with_{clients}_clients_connected_mb"),
                at_connect.rss_bytes,
            );
            self.memory(
                &format!("{holder}_with_{clients}_clients_connected_anon_mb"),
                at_connect.anon_bytes,
            );
            self.memory(
                &format!("{holder}_peak_with_{clients}_clients_mb"),
                bytes(peak.peak_rss_mb),
            );
            self.memory(
                &format!("{holder}_peak_with_{clients}_clients_anon_mb"),
                bytes(peak.peak_anon_mb),
            );
            own_per_client.push(
                at_connect.anon_bytes.saturating_sub(idle.anon_bytes) as f64 / clients as f64,
            );
            self.record(
                "clients",
                MODERN,
                path,
                samples.summary(),
                Bench::used(used),
            );
        }
        if let [direct, gateway] = own_per_client[..]
            && direct > 0.0
        {
            self.ratio(
                format!("{clients} held clients: gateway's own memory per client / upstream's"),
                gateway / direct,
            );
        }
        Ok(())
    }

    async fn contextforge(&mut self, executable: &std::path::Path) -> anyhow::Result<()> {
        eprintln!("contextforge: starting IBM ContextForge in front of the same upstream…");
        let forge = contextforge::ContextForge::start(
            executable,
            &self.platform,
            self.options.contextforge_workers,
        )
        .await?;
        let url = forge.mcp_url.clone();
        let token = forge.token.clone();
        let concurrency = self.options.concurrency;
        let echo = json!({"name": forge.tool_name.clone(), "arguments": {"text": "hello"}});
        let watch = load::Watch::start(vec![
            forge.pid(),
            self.platform.upstream.pid(),
            std::process::id(),
        ]);
        let client = self.pooled.clone();
        let samples = load::closed_loop(&client, concurrency, self.duration(), |client| {
            prepare(
                client,
                url.clone(),
                Auth::Bearer(token.clone()),
                LEGACY,
                "tools/call",
                echo.clone(),
            )
        })
        .await?;
        let used: Vec<(&str, Used)> = ["contextforge", "upstream", "load generator"]
            .into_iter()
            .zip(watch.stop())
            .collect();
        let index = self.record("call", LEGACY, "contextforge", samples.summary(), used);
        drop(forge);
        if let Some(gateway) = self
            .report
            .runs
            .iter()
            .position(|r| r.scenario == "call" && r.era == LEGACY && r.path == "gateway")
        {
            let (g, c) = (
                self.report.runs[gateway].summary.clone(),
                self.report.runs[index].summary.clone(),
            );
            self.ratio(
                "tools/call 2025-11-25: Switchboard gateway throughput / ContextForge".into(),
                g.throughput / c.throughput.max(1e-9),
            );
            self.ratio(
                "tools/call 2025-11-25: ContextForge p50 / Switchboard gateway p50".into(),
                c.p50_ms / g.p50_ms.max(1e-9),
            );
        }
        Ok(())
    }

    fn print(&self) {
        println!(
            "\n{:<10} {:<10} {:<24} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>8}",
            "SCENARIO",
            "ERA",
            "PATH",
            "REQ/S",
            "P50 ms",
            "P90 ms",
            "P99 ms",
            "MAX ms",
            "ERRORS",
            "GW CPU",
            "GW MB"
        );
        for run in &self.report.runs {
            let gateway = run
                .used
                .get("gateway")
                .or_else(|| run.used.get("contextforge"));
            let field = |k: &str| gateway.and_then(|g| g[k].as_f64()).unwrap_or(0.0);
            println!(
                "{:<10} {:<10} {:<24} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>7} {:>8.2} {:>8.1}",
                run.scenario,
                run.era,
                run.path,
                run.summary.throughput,
                run.summary.p50_ms,
                run.summary.p90_ms,
                run.summary.p99_ms,
                run.summary.max_ms,
                run.summary.errors,
                field("cpu_cores"),
                field("peak_rss_mb"),
            );
        }
        println!();
        for ratio in &self.report.ratios {
            println!("{:<72} {:>10.3}", ratio.what, ratio.value);
        }
        for (moment, mb) in &self.report.memory {
            println!("{moment:<72} {mb:>10}");
        }
    }
}
