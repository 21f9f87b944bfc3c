//! `switchboard up`: the whole platform on loopback with embedded defaults: the registry on SQLite,
//! the gateway, the Knowledge server over the bundled sample corpus, the SQL server over a
//! generated sample warehouse (embedded DataFusion) and the Spark server over sample event logs of
//! real failing jobs, the Airflow server (over `--airflow-url`, else listed as not connected, with
//! how to connect one), the web chat and chat bots (`--llm-url`), with a development issuer minting
//! tokens. State lives in the data
//! directory, so a restart keeps registrations and audit.

use std::{net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use gateway::GatewayConfig;
use identity::{KeySource, SigningKey, TrustedIssuer, Verifier};
use registry::{RegistryConfig, RegistryState};
use registry_api::RegisterServer;
use registry_client::RegistryClient;
use registry_store::SqlStore;
use server_sdk::IdentityMode;

use crate::{
    commands::{
        DataDir, ExternalTrust, GovernanceArgs, PublicationArgs, RetentionArgs, UiArgs, chat,
        gateway::dev_service_credentials, read_policies, server, write_ready,
    },
    dev,
};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address every component listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    #[arg(long, default_value_t = 7700)]
    registry_port: u16,
    #[arg(long, default_value_t = 7701)]
    gateway_port: u16,
    #[arg(long, default_value_t = 7702)]
    knowledge_port: u16,
    #[arg(long, default_value_t = 7703)]
    sql_port: u16,
    #[arg(long, default_value_t = 7704)]
    spark_port: u16,
    #[arg(long, default_value_t = 7705)]
    airflow_port: u16,
    /// The web chat and the chat bots.
    #[arg(long, default_value_t = 7706)]
    chat_port: u16,
    /// The model behind the web chat and the bots.
    #[command(flatten)]
    llm: chat::LlmArgs,
    #[command(flatten)]
    bots: chat::BotArgs,
    /// The Airflow deployment the Airflow server reads and acts on (without one, it is listed
    /// as not connected, with how to connect one).
    #[command(flatten)]
    airflow: server::AirflowArgs,
    /// Read Spark applications from this History Server (`http://history:18080`) instead of
    /// the sample event logs.
    #[arg(long)]
    spark_history_server: Option<String>,
    /// Index this folder for the Knowledge server instead of the bundled sample corpus (changes
    /// are re-indexed within 2 s).
    #[arg(long)]
    docs: Option<PathBuf>,
    /// Serve this folder (`<schema>/<table>.parquet` or `.csv`) from the SQL server instead of
    /// the sample warehouse.
    #[arg(long)]
    warehouse: Option<PathBuf>,
    /// The size of the generated sample warehouse: `full` (over a million rows of daily ad
    /// spend) or `small` (quick to generate, for tests and demos).
    #[arg(long, default_value = "full", value_parser = ["full", "small"])]
    sql_sample: String,
    /// The user the printed development token names.
    #[arg(long, default_value = "developer")]
    user: String,
    /// The groups of the printed development token.
    #[arg(long, default_value = "employees")]
    groups: String,
    /// Also write the URLs and token here as JSON once everything is up.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// A scope every end-user token must carry at the gateway (development tokens get it with
    /// `switchboard token --scope`).
    #[arg(long = "required-scope")]
    required_scopes: Vec<String>,
    /// Cedar policies that apply to every server (surfaces, environments, bot channels).
    #[arg(long)]
    platform_policies: Option<PathBuf>,
    #[command(flatten)]
    governance: GovernanceArgs,
    #[command(flatten)]
    publication: PublicationArgs,
    #[command(flatten)]
    ui: UiArgs,
    #[command(flatten)]
    retention: RetentionArgs,
    /// Generate a month of realistic traffic through the gateway once up (hundreds of users,
    /// tens of thousands of calls, laid out over the last 30 days), so the Insights dashboard and
    /// `switchboard report` show meaningful figures. For demonstrations only: it lets the gateway
    /// date calls by a request header.
    #[arg(long)]
    demo_traffic: bool,
    /// How many calls --demo-traffic makes.
    #[arg(long, default_value_t = 20_000, requires = "demo_traffic")]
    demo_calls: usize,
    /// How many users --demo-traffic calls as.
    #[arg(long, default_value_t = 300, requires = "demo_traffic")]
    demo_users: usize,
    /// Seconds between live status probes of every server (0: no probes).
    #[arg(long, default_value_t = 10)]
    probe_every_secs: u64,
    /// Seconds a call that needs approval holds on for a decision before answering with a
    /// pending proposal (0: answer at once).
    #[arg(long, default_value_t = 20)]
    approval_wait_secs: u64,
    /// Seconds a server may take to answer a request through the gateway.
    #[arg(long, default_value_t = 120)]
    upstream_timeout_secs: u64,
    /// How durable a call's audit record is before the call is answered: `disk` (synced) or
    /// `os` (written, synced within 0.1 s); see `switchboard gateway --help`.
    #[arg(long, value_enum, default_value_t = crate::commands::gateway::AuditSyncArg::Disk)]
    audit_sync: crate::commands::gateway::AuditSyncArg,
    /// Also trust these external issuers (for example your company's OpenID Connect provider).
    #[command(flatten)]
    trust: ExternalTrust,
    #[command(flatten)]
    data: DataDir,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let data_dir = args.data.data_dir.clone();
    std::fs::create_dir_all(&data_dir)?;
    let dev_key = dev::load_key(&data_dir)?;
    let dev_jwks = identity::jwks_document(&[&dev_key]);
    // End users and services may present development tokens or tokens from any external issuer.
    let mut audiences = args.trust.audiences.clone();
    if !audiences.iter().any(|a| a == dev::PLATFORM_AUDIENCE) {
        audiences.push(dev::PLATFORM_AUDIENCE.to_owned());
    }
    let external = args.trust.issuers()?;
    // The web chat and the bots vouch for their people with tokens of their own issuer.
    let surfaces_key = SigningKey::load_or_create(&chat::key_path(&data_dir))?;
    let surfaces_issuer = TrustedIssuer::new(
        chat::UP_ISSUER,
        KeySource::Static(identity::jwks_document(&[&surfaces_key])),
    );
    let platform_verifier = || {
        let mut issuers = external.clone();
        issuers.push(dev::trusted_issuer(&dev_key));
        issuers.push(surfaces_issuer.clone());
        Verifier::for_audiences(audiences.clone(), issuers)
    };
    let shutdown = service_kit::shutdown_on_signal();

    let registry_listener = service_kit::bind((args.host, args.registry_port).into()).await?;
    let gateway_listener = service_kit::bind((args.host, args.gateway_port).into()).await?;
    let knowledge_listener = service_kit::bind((args.host, args.knowledge_port).into()).await?;
    let sql_listener = service_kit::bind((args.host, args.sql_port).into()).await?;
    let spark_listener = service_kit::bind((args.host, args.spark_port).into()).await?;
    let airflow_listener = service_kit::bind((args.host, args.airflow_port).into()).await?;
    let chat_listener = service_kit::bind((args.host, args.chat_port).into()).await?;
    let registry_url = format!("http://{}", registry_listener.local_addr()?);
    let gateway_url = format!("http://{}", gateway_listener.local_addr()?);
    let knowledge_url = format!("http://{}", knowledge_listener.local_addr()?);
    let sql_url = format!("http://{}", sql_listener.local_addr()?);
    let spark_url = format!("http://{}", spark_listener.local_addr()?);
    let airflow_url = format!("http://{}", airflow_listener.local_addr()?);
    let chat_url = format!("http://{}", chat_listener.local_addr()?);

    let governance = args.governance.governance()?;
    let registry_state = RegistryConfig {
        store: Arc::new(SqlStore::sqlite(&data_dir.join("registry.db")).await?),
        verifier: platform_verifier()?,
        writer_groups: vec![dev::ADMINS_GROUP.into(), dev::SERVICES_GROUP.into()],
        auditor_groups: vec![dev::ADMINS_GROUP.into()],
        dev_issuer_jwks: Some(dev_jwks.clone()),
        platform_policies: read_policies(args.platform_policies.as_deref())?,
        governance: governance.clone(),
        publication: args.publication.publication(Some(gateway_url.clone())),
        ui: args.ui.ui(&args.data, &registry_url, true)?,
        audit_retention: args.retention.retention(),
    };
    let registry_state = RegistryState::new(registry_state).await?;
    let registry_task = spawn_component(
        &shutdown,
        registry::run(registry_state, registry_listener, shutdown.clone()),
    );

    let gateway_config = GatewayConfig {
        registry: RegistryClient::new(
            &registry_url,
            dev_service_credentials(dev::load_key(&data_dir)?, "gateway"),
        ),
        verifier: platform_verifier()?,
        assertion_key: SigningKey::load_or_create(&crate::commands::gateway::assertion_key_path(
            &data_dir,
        ))?,
        issuer: gateway_url.clone(),
        public_url: gateway_url.clone(),
        required_scopes: args.required_scopes.clone(),
        workloads: gateway::WorkloadTrust::default(),
        allowed_origins: Vec::new(),
        allowed_hosts: if args.host.is_loopback() {
            gateway::loopback_hosts()
        } else {
            Vec::new()
        },
        catalog_refresh: Duration::from_secs(1),
        audit_spool: data_dir.join("audit-spool.jsonl"),
        audit_sync: args.audit_sync.into(),
        pin_tools: true,
        probes: gateway::ProbeConfig {
            every: (args.probe_every_secs > 0).then(|| Duration::from_secs(args.probe_every_secs)),
            allowed_hosts: gateway::loopback_hosts(),
        },
        approval_ttl: Duration::from_secs(86_400),
        approval_wait: Duration::from_secs(args.approval_wait_secs),
        demo_clock: args.demo_traffic,
        rate_limit_per_minute: None,
        replica_heartbeat: Duration::from_secs(5),
        upstream_timeout: Duration::from_secs(args.upstream_timeout_secs),
    };
    let gateway_task = spawn_component(
        &shutdown,
        gateway::run(gateway_config, gateway_listener, shutdown.clone()),
    );

    let (llm, agent) = args.llm.configs(&gateway_url);
    let chat_config = ::chat::ChatConfig {
        agent,
        llm,
        registry_url: registry_url.clone(),
        minter: ::chat::Minter::new(surfaces_key, chat::UP_ISSUER, dev::PLATFORM_AUDIENCE),
        sign_in: ::chat::SignIn::Dev,
        secure_cookies: false,
        bots: args.bots.config()?,
    };
    let chat_task = spawn_component(
        &shutdown,
        ::chat::run(chat_config, chat_listener, shutdown.clone()),
    );

    let rules = |cedar: &str| server::Rules {
        cedar: cedar.to_owned(),
        environment: "dev".into(),
    };
    // Records other servers write (the Spark server's root-cause analyses) are searchable
    // within two seconds.
    let records = data_dir.join("knowledge-records");
    let knowledge = server::build_knowledge(
        server_knowledge::Sources {
            docs: args.docs.clone(),
            git: None,
            records: Some(records.clone()),
        },
        2,
        server::load_manifest(None, server_knowledge::MANIFEST)?,
        rules(""),
    )?;
    let sql_args = server::SqlArgs {
        warehouse: args.warehouse.clone(),
        sample: if args.sql_sample == "small" {
            server_sql::sample::Scale::SMALL
        } else {
            server_sql::sample::Scale::FULL
        },
        ..server::SqlArgs::default()
    };
    let sql = server::build_sql(
        &sql_args,
        server::load_manifest(None, server_sql::MANIFEST)?,
        rules(server_sql::POLICIES),
        &data_dir,
    )
    .await?;
    let spark = server::build_spark(
        &server::SparkArgs {
            history_server: args.spark_history_server.clone(),
            event_logs: None,
            rca_dir: Some(records.join("spark")),
        },
        server::load_manifest(None, server_spark::MANIFEST)?,
        rules(""),
        &data_dir,
    )?;
    let airflow = server::build_airflow(
        &args.airflow,
        server::load_manifest(None, server_airflow::MANIFEST)?,
        rules(""),
    )?;
    let server_name = knowledge.governance.manifest().server.name.clone();
    let knowledge_task = serve_bundled(&knowledge, knowledge_listener, &gateway_url, &shutdown)?;
    let sql_task = serve_bundled(&sql, sql_listener, &gateway_url, &shutdown)?;
    let spark_task = serve_bundled(&spark, spark_listener, &gateway_url, &shutdown)?;
    let airflow_task = serve_bundled(&airflow, airflow_listener, &gateway_url, &shutdown)?;

    // Governance on a laptop: the sample teams, and the bundled servers approved by `up`
    // itself (recorded as such), so production surfaces work out of the box.
    let reviewer_groups: Vec<String> = governance
        .reviewer_groups
        .values()
        .flatten()
        .cloned()
        .collect();
    let admin = RegistryClient::new(
        &registry_url,
        dev::credentials(
            dev::load_key(&data_dir)?,
            "switchboard-up",
            governance.admin_groups.clone(),
        ),
    );
    wait_for_registry(&admin).await?;
    seed_teams(&admin).await?;
    let reviewer = RegistryClient::new(
        &registry_url,
        dev::credentials(dev::load_key(&data_dir)?, "switchboard-up", reviewer_groups),
    );
    for ((manifest, tools, policies), url) in [
        (knowledge.registration_parts(), &knowledge_url),
        (sql.registration_parts(), &sql_url),
        (spark.registration_parts(), &spark_url),
        (airflow.registration_parts(), &airflow_url),
    ] {
        let name = manifest.server.name.clone();
        let registrar = RegistryClient::new(
            &registry_url,
            dev_service_credentials(dev::load_key(&data_dir)?, &name),
        );
        let registration = RegisterServer {
            manifest,
            endpoint: format!("{url}/mcp"),
            environment: "dev".into(),
            tools,
            policies,
        };
        registrar.register(&registration).await?;
        for review in reviewer.list_reviews(Some(&name), Some("pending")).await? {
            reviewer
                .decide_review(
                    &review.id,
                    true,
                    "bundled with Switchboard; approved by `switchboard up`",
                )
                .await?;
        }
    }

    let token = dev::mint(
        &dev_key,
        &args.user,
        catalog::parse_groups(&args.groups),
        12 * 3600,
    )?;
    let mcp_url = format!("{gateway_url}/servers/{server_name}/mcp");
    let route = |name: &str| format!("{gateway_url}/servers/{name}/mcp");
    let sql_mcp_url = route(&sql.governance.manifest().server.name);
    let spark_mcp_url = route(&spark.governance.manifest().server.name);
    let airflow_mcp_url = route(&airflow.governance.manifest().server.name);
    let summary = serde_json::json!({
        "registry_url": registry_url,
        "gateway_url": gateway_url,
        "knowledge_url": knowledge_url,
        "sql_url": sql_url,
        "spark_url": spark_url,
        "mcp_url": mcp_url,
        "sql_mcp_url": sql_mcp_url,
        "spark_mcp_url": spark_mcp_url,
        "airflow_url": airflow_url,
        "airflow_mcp_url": airflow_mcp_url,
        "airflow_connected": args.airflow.airflow_url.is_some(),
        "chat_url": chat_url,
        "data_dir": data_dir,
        "user": args.user,
        "token": token,
    });
    write_ready(Some(&data_dir.join("up.json")), summary.clone())?;
    write_ready(args.ready_file.as_deref(), summary)?;
    println!("Switchboard is up.\n");
    println!("  registry   {registry_url}   (API: {registry_url}/v1/servers)");
    println!("  web UI     {registry_url}/ui/   (development sign-in: any user, any groups)");
    println!("  gateway    {gateway_url}");
    println!(
        "  web chat   {chat_url}/chat   (development sign-in; model {} at {})",
        args.llm.model(),
        args.llm.url()
    );
    println!("  knowledge  {mcp_url}   (MCP, through the gateway)");
    println!("  sql        {sql_mcp_url}   (MCP, through the gateway)");
    println!("  spark      {spark_mcp_url}   (MCP, through the gateway)");
    match &args.airflow.airflow_url {
        Some(url) => println!(
            "  airflow    {airflow_mcp_url}   (MCP, through the gateway; Airflow at {url})\n"
        ),
        None => println!(
            "  airflow    {airflow_mcp_url}   NOT CONNECTED: no Airflow is configured.\n             Connect one with --airflow-url http://airflow:8080 and --airflow-token\n             (or --airflow-user with SWITCHBOARD_AIRFLOW_PASSWORD).\n"
        ),
    }
    println!(
        "Development token for {} (groups: {}), valid 12 h:\n\n{token}\n",
        args.user, args.groups
    );
    println!("More tokens: switchboard token --user bob --groups finance,ads-eng");
    if args.demo_traffic {
        let plan = crate::demo::Plan {
            calls: args.demo_calls,
            users: args.demo_users,
            parallel: 12,
            seed: 2026,
        };
        println!(
            "Generating demo traffic: {} calls by {} users over the last 30 days (see {registry_url}/ui/insights).",
            plan.calls, plan.users
        );
        let (gateway_url, registry_url, data_dir) =
            (gateway_url.clone(), registry_url.clone(), data_dir.clone());
        let key = Arc::new(dev::load_key(&data_dir)?);
        tokio::spawn(async move {
            crate::demo::wait_for_gateway(&gateway_url).await;
            let started = std::time::Instant::now();
            match crate::demo::generate(&gateway_url, &registry_url, key, plan).await {
                Ok(done) => {
                    let summary = serde_json::json!({
                        "calls": done.calls,
                        "answered": done.answered,
                        "proposals_approved": done.proposals_approved,
                        "proposals_rejected": done.proposals_rejected,
                        "ratings": done.ratings,
                        "seconds": started.elapsed().as_secs(),
                    });
                    println!("Demo traffic done: {summary}");
                    if let Err(e) = write_ready(Some(&data_dir.join("demo-traffic.json")), summary)
                    {
                        tracing::warn!(error = %e, "could not write demo-traffic.json");
                    }
                }
                Err(e) => tracing::error!(error = %e, "the demo traffic stopped"),
            }
        });
    }
    println!("Stop with Ctrl-C. State is kept in {}.", data_dir.display());

    let (registry, gateway, knowledge, sql, spark, airflow, chat) = tokio::join!(
        registry_task,
        gateway_task,
        knowledge_task,
        sql_task,
        spark_task,
        airflow_task,
        chat_task
    );
    chat??;
    registry??;
    gateway??;
    knowledge??;
    sql??;
    spark??;
    airflow??;
    Ok(())
}

/// Serves a bundled server on `listener`, trusting the gateway's identity assertions.
fn serve_bundled<H>(
    built: &server::Built<H>,
    listener: tokio::net::TcpListener,
    gateway_url: &str,
    shutdown: &service_kit::Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>>
where
    H: rmcp::ServerHandler + Clone + Send + Sync + 'static,
{
    let assertion_verifier = Verifier::new(
        built.governance.manifest().server.name.clone(),
        vec![TrustedIssuer::new(
            gateway_url.to_owned(),
            KeySource::Url(format!("{gateway_url}/.well-known/jwks.json")),
        )],
    )?;
    let router = built.http_router(IdentityMode::Gateway(assertion_verifier), Vec::new());
    Ok(spawn_component(
        shutdown,
        service_kit::serve(listener, router, shutdown.clone()),
    ))
}

/// The registry task may not have started accepting yet; wait briefly.
async fn wait_for_registry(client: &RegistryClient) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..50 {
        match client.list_teams().await {
            Ok(_) => return Ok(()),
            Err(e @ registry_client::ClientError::Api { .. }) => return Err(e.into()),
            Err(e) => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Err(anyhow::anyhow!(
        "the registry did not start: {}",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

/// The bundled sample teams (`sample/teams.toml`) that do not exist yet.
pub(crate) async fn seed_teams(client: &RegistryClient) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Sample {
        team: Vec<registry_api::Team>,
    }
    let sample: Sample = toml::from_str(include_str!("../../sample/teams.toml"))?;
    let existing: Vec<String> = client
        .list_teams()
        .await?
        .into_iter()
        .map(|t| t.name)
        .collect();
    for team in sample.team {
        if !existing.contains(&team.name) {
            client.put_team(&team).await?;
        }
    }
    Ok(())
}

/// Runs one component; when it stops, for whatever reason, the others are told to stop too.
fn spawn_component(
    shutdown: &service_kit::Shutdown,
    component: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let result = component.await;
        shutdown.cancel();
        result
    })
}
