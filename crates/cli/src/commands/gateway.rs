//! `switchboard gateway`: run the gateway in front of the registered servers.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use gateway::GatewayConfig;
use identity::{SigningKey, Verifier};
use registry_client::{Credentials, RegistryClient};

use crate::{
    commands::{DataDir, Trust, write_ready},
    dev,
};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[arg(
        long,
        env = "SWITCHBOARD_GATEWAY_LISTEN",
        default_value = "127.0.0.1:7701"
    )]
    listen: SocketAddr,
    /// The registry's base URL.
    #[arg(
        long,
        env = "SWITCHBOARD_REGISTRY_URL",
        default_value = "http://127.0.0.1:7700"
    )]
    registry_url: String,
    /// The gateway's own bearer token for the registry (a service token).
    #[arg(long, env = "SWITCHBOARD_REGISTRY_TOKEN", hide_env_values = true)]
    registry_token: Option<String>,
    /// Which issuers' end-user tokens to trust; with --dev-issuer the registry token is minted
    /// from the development issuer too.
    #[command(flatten)]
    trust: Trust,
    /// The gateway's external base URL, as clients reach it (default: http://<listen address>).
    #[arg(long, env = "SWITCHBOARD_GATEWAY_PUBLIC_URL")]
    public_url: Option<String>,
    /// A scope every end-user token must carry; tokens without it get 403 insufficient_scope.
    #[arg(long = "required-scope")]
    required_scopes: Vec<String>,
    /// Also listen for workloads over mTLS (SPIFFE X.509-SVIDs) on this address.
    #[arg(long)]
    mtls_listen: Option<SocketAddr>,
    /// The gateway's certificate chain for the mTLS listener (PEM).
    #[arg(long)]
    mtls_cert: Option<PathBuf>,
    /// The private key of that certificate (PEM).
    #[arg(long)]
    mtls_key: Option<PathBuf>,
    /// CA certificates workload SVIDs must chain to: the SPIFFE trust bundle (PEM).
    #[arg(long)]
    trust_bundle: Option<PathBuf>,
    /// Take the gateway's SVID and trust bundle from the SPIFFE Workload API (a SPIRE agent)
    /// instead of files.
    #[arg(long)]
    spiffe_workload_api: bool,
    /// The Workload API endpoint, e.g. `unix:///run/spire/agent.sock` (default:
    /// SPIFFE_ENDPOINT_SOCKET).
    #[arg(long)]
    spiffe_endpoint_socket: Option<String>,
    /// How often (seconds) the mTLS certificate, key and trust bundle files are checked for
    /// rotation.
    #[arg(long, default_value_t = 30)]
    mtls_reload_secs: u64,
    /// An mTLS peer (SPIFFE ID) trusted to vouch for end users with X-Forwarded-User/-Groups.
    #[arg(long = "trusted-proxy")]
    trusted_proxies: Vec<String>,
    /// The groups of a service calling as itself: `SPIFFE_ID=group1,group2`. Repeat.
    #[arg(long = "service-group")]
    service_groups: Vec<String>,
    /// The `iss` of the identity assertions sent to servers (default: this gateway's URL).
    #[arg(long)]
    issuer: Option<String>,
    /// Browser origins allowed to call MCP routes.
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// Host names the gateway answers to (DNS-rebinding protection). Default: the loopback
    /// names when listening on loopback, else any host.
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// `enforce`: serve only tools whose definitions match the registry's (a changed or new tool
    /// is withheld until reviewed). `off`: serve whatever servers list.
    #[arg(long, value_enum, default_value_t = Pinning::Enforce, env = "SWITCHBOARD_TOOL_PINNING")]
    tool_pinning: Pinning,
    /// Seconds a call awaiting approval waits for a decision before it expires.
    #[arg(long, default_value_t = 86_400)]
    approval_ttl_secs: u64,
    /// Seconds a call that needs approval holds on for a decision (with progress to agents that
    /// ask for it) before answering with a pending proposal (0: answer at once).
    #[arg(long, default_value_t = 20)]
    approval_wait_secs: u64,
    /// Seconds between live status probes of every server (0: no probes).
    #[arg(long, default_value_t = 30)]
    probe_every_secs: u64,
    /// Hosts live status probes may reach: a name or address, or `*.domain` for every name under
    /// it. Repeat or separate with commas. Servers elsewhere are reported as not probed.
    #[arg(long = "probe-host", value_delimiter = ',')]
    probe_hosts: Vec<String>,
    /// Seconds between checks of the registry's catalog version (the catalog itself is re-read
    /// only when it changed).
    #[arg(long, default_value_t = 2)]
    catalog_refresh_secs: u64,
    /// Tool calls a minute each user may make, across every replica behind one address (each
    /// replica takes its share, learning from the registry how many replicas are alive).
    #[arg(long, env = "SWITCHBOARD_RATE_LIMIT_PER_MINUTE")]
    rate_limit_per_minute: Option<u32>,
    /// Seconds between this replica's announcements to the registry.
    #[arg(long, default_value_t = 5)]
    replica_heartbeat_secs: u64,
    /// Seconds a server may take to answer a request; then the caller gets a JSON-RPC error.
    #[arg(long, default_value_t = 120)]
    upstream_timeout_secs: u64,
    /// How durable a call's audit record is before the call is answered. `disk`: synced to
    /// disk (survives a crash of the machine). `os`: written to the journal and synced to
    /// disk within 0.1 s without the call waiting (survives a crash of the gateway; a crash of
    /// the machine can lose up to the last 0.1 s of records), for a lower latency floor.
    #[arg(long, value_enum, default_value_t = AuditSyncArg::Disk, env = "SWITCHBOARD_AUDIT_SYNC")]
    audit_sync: AuditSyncArg,
    /// Write `{"url": ...}` here once listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

/// Where the gateway's signing key (its identity assertions, sealed session ids) lives; replicas
/// share it.
pub(crate) fn assertion_key_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("keys").join("gateway.json")
}

/// `--audit-sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AuditSyncArg {
    Disk,
    Os,
}

impl AuditSyncArg {
    /// The flag's value, as written on a command line.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuditSyncArg::Disk => "disk",
            AuditSyncArg::Os => "os",
        }
    }
}

impl From<AuditSyncArg> for gateway::AuditSync {
    fn from(arg: AuditSyncArg) -> gateway::AuditSync {
        match arg {
            AuditSyncArg::Disk => gateway::AuditSync::Disk,
            AuditSyncArg::Os => gateway::AuditSync::Os,
        }
    }
}

/// Whether the gateway pins tool definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Pinning {
    Enforce,
    Off,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let (issuers, dev_key) = args.trust.issuers(&args.data)?;
    let credentials = match (dev_key, args.registry_token) {
        (_, Some(token)) => Credentials::Static(token),
        (Some(key), None) => dev_service_credentials(key, "gateway"),
        (None, None) => anyhow::bail!(
            "--registry-token (or SWITCHBOARD_REGISTRY_TOKEN) is required without --dev-issuer"
        ),
    };
    let listener = service_kit::bind(args.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let config = GatewayConfig {
        registry: RegistryClient::new(&args.registry_url, credentials),
        verifier: Verifier::for_audiences(args.trust.external.audiences.clone(), issuers)?,
        assertion_key: SigningKey::load_or_create(&assertion_key_path(&args.data.data_dir))?,
        issuer: args.issuer.unwrap_or_else(|| url.clone()),
        public_url: args.public_url.unwrap_or_else(|| url.clone()),
        required_scopes: args.required_scopes,
        workloads: gateway::WorkloadTrust {
            trusted_proxies: args.trusted_proxies,
            service_groups: args
                .service_groups
                .iter()
                .map(|v| {
                    let (id, groups) = v.split_once('=').ok_or_else(|| {
                        anyhow::anyhow!("--service-group takes SPIFFE_ID=group1,group2, got {v:?}")
                    })?;
                    Ok((id.to_owned(), catalog::parse_groups(groups)))
                })
                .collect::<anyhow::Result<_>>()?,
        },
        allowed_origins: args.allowed_origins,
        allowed_hosts: if args.allowed_hosts.is_empty() && args.listen.ip().is_loopback() {
            gateway::loopback_hosts()
        } else {
            args.allowed_hosts
        },
        catalog_refresh: Duration::from_secs(args.catalog_refresh_secs.max(1)),
        audit_spool: args.data.data_dir.join("audit-spool.jsonl"),
        audit_sync: args.audit_sync.into(),
        pin_tools: args.tool_pinning == Pinning::Enforce,
        probes: gateway::ProbeConfig {
            every: (args.probe_every_secs > 0).then(|| Duration::from_secs(args.probe_every_secs)),
            allowed_hosts: args.probe_hosts,
        },
        approval_ttl: Duration::from_secs(args.approval_ttl_secs.max(1)),
        approval_wait: Duration::from_secs(args.approval_wait_secs),
        demo_clock: false,
        rate_limit_per_minute: args.rate_limit_per_minute,
        replica_heartbeat: Duration::from_secs(args.replica_heartbeat_secs.max(1)),
        upstream_timeout: Duration::from_secs(args.upstream_timeout_secs.max(1)),
    };
    let shutdown = service_kit::shutdown_on_signal();
    let mut ready =
        serde_json::json!({ "url": url, "jwks_url": format!("{url}/.well-known/jwks.json") });
    let mtls = match args.mtls_listen {
        Some(addr) => {
            let source = if args.spiffe_workload_api {
                gateway::MtlsSource::WorkloadApi {
                    endpoint: args.spiffe_endpoint_socket,
                }
            } else {
                let need = |path: Option<PathBuf>, flag: &str| {
                    path.ok_or_else(|| {
                        anyhow::anyhow!("--mtls-listen needs {flag} (or --spiffe-workload-api)")
                    })
                };
                gateway::MtlsSource::Files(gateway::MtlsFiles {
                    certificate: need(args.mtls_cert, "--mtls-cert")?,
                    private_key: need(args.mtls_key, "--mtls-key")?,
                    trust_bundle: need(args.trust_bundle, "--trust-bundle")?,
                })
            };
            let (tls, certificates) = gateway::tls_config(source).await?;
            certificates.spawn_reload(
                Duration::from_secs(args.mtls_reload_secs.max(1)),
                shutdown.clone(),
            );
            let mtls_listener = service_kit::bind(addr).await?;
            ready["mtls_url"] = format!("https://{}", mtls_listener.local_addr()?).into();
            Some((mtls_listener, tls))
        }
        None => None,
    };
    let (router, audit) = gateway::build(config, shutdown.clone()).await?;
    write_ready(args.ready_file.as_deref(), ready)?;
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    let served = match mtls {
        Some((mtls_listener, tls)) => {
            let plain = service_kit::serve(listener, router.clone(), shutdown.clone());
            let secure = gateway::serve_mtls(router, mtls_listener, tls, shutdown);
            let (plain, secure) = tokio::join!(plain, secure);
            plain.and(secure)
        }
        None => service_kit::serve(listener, router, shutdown).await,
    };
    // The calls answered while shutting down are journaled; deliver them before exiting.
    audit.drain().await;
    served
}

/// Credentials that mint a short-lived service token from the development issuer per request.
pub(crate) fn dev_service_credentials(key: SigningKey, service: &str) -> Credentials {
    dev::credentials(key, service, vec![dev::SERVICES_GROUP.into()])
}
