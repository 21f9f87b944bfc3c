//! The command line: one subcommand per component, plus `up` (everything on loopback) and the
//! developer helpers `token` and `servers`.

mod approvals;
mod bench;
mod chat;
pub(crate) mod connect;
mod deploy;
mod gateway;
mod key;
mod policy;
mod registry;
mod report;
mod review;
mod server;
mod servers;
mod teams;
mod token;
mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A governed MCP platform: registry, gateway and domain servers"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the whole platform on loopback: registry, gateway and the Knowledge server.
    Up(up::Args),
    /// Run the registry service.
    Registry(registry::Args),
    /// Run the gateway.
    Gateway(gateway::Args),
    /// Run one of the bundled MCP servers.
    Server(server::Args),
    /// Mint a development token from the local development issuer.
    Token(token::Args),
    /// List, show or register servers in a registry.
    Servers(servers::Args),
    /// Calls waiting for a person's approval: list them, approve or reject them in batches.
    Approvals(approvals::Args),
    /// The review queue: list, approve and reject the reviews servers pass before production.
    Review(review::Args),
    /// Teams that own servers: list, or create and change one.
    Teams(teams::Args),
    /// Print the registry API's OpenAPI document (also served at `/v1/openapi.json`).
    Openapi,
    /// Explain policy decisions: what would be decided and by which policies, who can call a tool.
    Policy(policy::Args),
    /// The month's north-star report: time saved per tool, server and team, active users,
    /// error and approval-rejection rates, latency.
    Report(report::ReportArgs),
    /// The audit of every call: export it as JSON lines or CSV.
    Audit(report::AuditArgs),
    /// Rate a tool's answer, thumbs up or down (shown beside its minutes-saved estimate).
    Feedback(report::FeedbackArgs),
    /// One MCP server over stdio for an IDE: every tool you may use, as `<server>__<tool>`,
    /// forwarded to the gateway as you.
    Connect(connect::Args),
    /// Print the configuration that plugs `switchboard connect` into an IDE.
    IdeConfig(connect::IdeConfigArgs),
    /// Run the web chat and the chat bots (Slack-compatible Events API, generic webhook).
    Chat(chat::Args),
    /// Render a server's Kubernetes objects from its manifest and register it (opening its
    /// reviews).
    Deploy(deploy::Args),
    /// Signing keys several replicas share (`key generate --out gateway.json`).
    Key(key::Args),
    /// Measure the gateway, direct to a server and through the gateway, under load: throughput,
    /// latency percentiles, CPU and memory (and IBM ContextForge's, with --contextforge).
    Bench(bench::Args),
}

/// Options shared by commands that keep state on disk.
#[derive(clap::Args, Clone)]
pub(crate) struct DataDir {
    /// Where keys, the SQLite database and spools live.
    #[arg(
        long,
        env = "SWITCHBOARD_DATA_DIR",
        default_value = ".switchboard",
        global = true
    )]
    pub(crate) data_dir: PathBuf,
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Registry(args) => registry::run(args).await,
        Command::Gateway(args) => gateway::run(args).await,
        Command::Server(args) => server::run(args).await,
        Command::Token(args) => token::run(args),
        Command::Servers(args) => servers::run(args).await,
        Command::Review(args) => review::run(args).await,
        Command::Approvals(args) => approvals::run(args).await,
        Command::Teams(args) => teams::run(args).await,
        Command::Policy(args) => policy::run(args).await,
        Command::Report(args) => report::report(args).await,
        Command::Audit(args) => report::audit(args).await,
        Command::Feedback(args) => report::feedback(args).await,
        Command::Connect(args) => connect::run(args).await,
        Command::IdeConfig(args) => connect::print_ide_config(args),
        Command::Chat(args) => chat::run(args).await,
        Command::Deploy(args) => deploy::run(args).await,
        Command::Key(args) => key::run(args),
        Command::Bench(args) => bench::run(args).await,
        Command::Openapi => {
            use std::io::Write;
            let document = ::registry::openapi().to_pretty_json()?;
            match writeln!(std::io::stdout(), "{document}") {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
    }
}

/// Where a surface (`connect`, `chat`) reaches the platform, as the people it serves.
#[derive(clap::Args, Clone)]
pub(crate) struct PlatformUrls {
    /// The gateway.
    #[arg(
        long,
        env = "SWITCHBOARD_GATEWAY_URL",
        default_value = "http://127.0.0.1:7701"
    )]
    pub(crate) gateway_url: String,
    /// The registry (for discovering the servers and tools people may use).
    #[arg(
        long,
        env = "SWITCHBOARD_REGISTRY_URL",
        default_value = "http://127.0.0.1:7700"
    )]
    pub(crate) registry_url: String,
}

/// How an operator command reaches the registry.
#[derive(clap::Args)]
pub(crate) struct RegistryAccess {
    /// The registry's base URL.
    #[arg(
        long,
        env = "SWITCHBOARD_REGISTRY_URL",
        default_value = "http://127.0.0.1:7700",
        global = true
    )]
    registry_url: String,
    /// A bearer token for the registry; without one, a development token is minted.
    #[arg(long, env = "SWITCHBOARD_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    data: DataDir,
}

impl RegistryAccess {
    /// A registry client with the given token, or an operator's development token.
    pub(crate) fn client(&self) -> anyhow::Result<registry_client::RegistryClient> {
        let token = match &self.token {
            Some(t) => t.clone(),
            None => crate::dev::mint(
                &crate::dev::load_key(&self.data.data_dir)?,
                "operator",
                vec![crate::dev::ADMINS_GROUP.into()],
                300,
            )?,
        };
        Ok(registry_client::RegistryClient::new(
            &self.registry_url,
            registry_client::Credentials::Static(token),
        ))
    }
}

/// How long the registry keeps audit records, shared by `up` and the registry.
#[derive(clap::Args, Clone)]
pub(crate) struct RetentionArgs {
    /// Days audit records are kept; older ones are deleted hourly (0: kept for ever). Export
    /// them first (`switchboard audit export`) where they must be archived.
    #[arg(long, default_value_t = 400)]
    audit_retention_days: u64,
}

impl RetentionArgs {
    pub(crate) fn retention(&self) -> Option<std::time::Duration> {
        (self.audit_retention_days > 0)
            .then(|| std::time::Duration::from_secs(self.audit_retention_days * 86_400))
    }
}

/// Who governs the catalog, shared by `up` and the registry.
#[derive(clap::Args)]
pub(crate) struct GovernanceArgs {
    /// Groups that may create and change teams.
    #[arg(long, value_delimiter = ',', default_values_t = [crate::dev::ADMINS_GROUP.to_owned()])]
    admin_groups: Vec<String>,
    /// Who decides a kind of review: `KIND=GROUP[,GROUP...]` with KIND `security`,
    /// `legal-privacy` or `genai`. Repeat per kind; kinds not named keep their default groups
    /// (`security-reviewers`, `privacy-reviewers`, `genai-reviewers`).
    #[arg(long = "reviewers")]
    reviewers: Vec<String>,
    /// Surfaces that count as development: there, owners reach their servers and tools before
    /// they are approved for production.
    #[arg(long, value_delimiter = ',', default_values_t = ["dev".to_owned()])]
    dev_surfaces: Vec<String>,
    /// Seconds a gateway's claim on an approved call lasts without a result before another
    /// gateway may run it (the first died while running it; servers dedupe by proposal id).
    #[arg(long, default_value_t = 120)]
    proposal_claim_lease_secs: u64,
}

impl GovernanceArgs {
    pub(crate) fn governance(&self) -> anyhow::Result<::registry::Governance> {
        let mut governance = ::registry::Governance::new(self.admin_groups.clone());
        governance.dev_surfaces = self.dev_surfaces.clone();
        governance.claim_lease =
            std::time::Duration::from_secs(self.proposal_claim_lease_secs.max(1));
        for value in &self.reviewers {
            let (kind, groups) = value.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--reviewers takes KIND=GROUP[,GROUP...], got {value:?}")
            })?;
            let kind = registry_api::ReviewKind::parse(kind).ok_or_else(|| {
                anyhow::anyhow!(
                    "--reviewers: unknown review kind {kind:?}; use security, legal-privacy or genai"
                )
            })?;
            governance
                .reviewer_groups
                .insert(kind, catalog::parse_groups(groups));
        }
        Ok(governance)
    }
}

/// How the registry publishes its approved catalog in the official MCP Registry API (`/v0.1`).
#[derive(clap::Args)]
pub(crate) struct PublicationArgs {
    /// The reverse-DNS namespace of published server names (`<namespace>/<server>`).
    #[arg(long, default_value = "local.switchboard")]
    catalog_namespace: String,
    /// Let `/v0.1/servers` be read without a token (it then lists every approved server).
    #[arg(long)]
    anonymous_catalog: bool,
}

impl PublicationArgs {
    pub(crate) fn publication(&self, gateway_url: Option<String>) -> ::registry::Publication {
        ::registry::Publication {
            namespace: self.catalog_namespace.clone(),
            gateway_url,
            anonymous: self.anonymous_catalog,
        }
    }
}

/// How people sign in to the registry's web UI, shared by `up` and the registry.
#[derive(clap::Args)]
pub(crate) struct UiArgs {
    /// The file holding the key that signs UI session cookies (created, owner-only, if missing).
    /// Replicas behind one address must share it. Default: `<data-dir>/ui-session.key`.
    #[arg(long)]
    ui_session_key_file: Option<PathBuf>,
    /// Sign in to the UI with this OpenID Connect provider (authorization code + PKCE).
    #[arg(long)]
    ui_oidc_issuer: Option<String>,
    /// The UI's client id at the provider.
    #[arg(long, default_value = "switchboard-registry")]
    ui_oidc_client_id: String,
    /// The UI's client secret, for a confidential client.
    #[arg(
        long,
        env = "SWITCHBOARD_UI_OIDC_CLIENT_SECRET",
        hide_env_values = true
    )]
    ui_oidc_client_secret: Option<String>,
    /// Where the provider returns the browser; default `<registry URL>/ui/callback`.
    #[arg(long)]
    ui_oidc_redirect_url: Option<String>,
    /// Scopes to ask for besides `openid`.
    #[arg(long = "ui-oidc-scope", default_values_t = ["profile".to_owned()])]
    ui_oidc_scopes: Vec<String>,
    /// Where the ID token keeps the user's groups (a claim or a dotted path).
    #[arg(long, default_value = "groups")]
    ui_oidc_groups_claim: String,
}

impl UiArgs {
    /// The UI configuration for a registry reachable at `registry_url`.
    pub(crate) fn ui(
        &self,
        data: &DataDir,
        registry_url: &str,
        dev_sign_in: bool,
    ) -> anyhow::Result<::registry::UiConfig> {
        let key_file = self
            .ui_session_key_file
            .clone()
            .unwrap_or_else(|| data.data_dir.join("ui-session.key"));
        Ok(::registry::UiConfig {
            session_key: load_or_create_secret(&key_file)?,
            secure_cookies: registry_url.starts_with("https://"),
            oidc: self
                .ui_oidc_issuer
                .as_ref()
                .map(|issuer| ::registry::OidcLogin {
                    issuer: issuer.clone(),
                    client_id: self.ui_oidc_client_id.clone(),
                    client_secret: self.ui_oidc_client_secret.clone(),
                    redirect_url: self.ui_oidc_redirect_url.clone().unwrap_or_else(|| {
                        format!("{}/ui/callback", registry_url.trim_end_matches('/'))
                    }),
                    groups_claim: self.ui_oidc_groups_claim.clone(),
                    scopes: self.ui_oidc_scopes.clone(),
                }),
            dev_sign_in,
        })
    }
}

/// The 32-byte secret in `path`, created (owner-only) with fresh random bytes if missing.
fn load_or_create_secret(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    match std::fs::read(path) {
        Ok(secret) => {
            anyhow::ensure!(
                secret.len() >= 32,
                "{} must hold at least 32 bytes",
                path.display()
            );
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut secret = vec![0u8; 32];
            getrandom_fill(&mut secret)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Ok(mut file) => {
                    file.write_all(&secret)?;
                    file.sync_all()?;
                    Ok(secret)
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read(path)?),
                Err(e) => Err(anyhow::anyhow!("create {}: {e}", path.display())),
            }
        }
        Err(e) => Err(anyhow::anyhow!("read {}: {e}", path.display())),
    }
}

fn getrandom_fill(buffer: &mut [u8]) -> anyhow::Result<()> {
    use aws_lc_rs::rand::SecureRandom;
    aws_lc_rs::rand::SystemRandom::new()
        .fill(buffer)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))
}

/// External token issuers to trust, shared by `up`, the registry and the gateway.
#[derive(clap::Args)]
pub(crate) struct ExternalTrust {
    /// Trust tokens from this issuer. `ISSUER` alone finds its keys through OpenID Connect
    /// discovery; `ISSUER=JWKS_URL` names them. Repeat for several issuers.
    #[arg(long = "trust-issuer")]
    trust_issuers: Vec<String>,
    /// Where those issuers put the caller's groups: a claim (`groups`, `roles`) or a dotted path
    /// into nested claims (`realm_access.roles`).
    #[arg(long, default_value = "groups")]
    groups_claim: String,
    /// An audience tokens may be issued for. Repeat for several.
    #[arg(long = "audience", default_values_t = [crate::dev::PLATFORM_AUDIENCE.to_owned()])]
    pub(crate) audiences: Vec<String>,
}

impl ExternalTrust {
    pub(crate) fn issuers(&self) -> anyhow::Result<Vec<identity::TrustedIssuer>> {
        self.trust_issuers
            .iter()
            .map(|value| {
                let (issuer, keys) = match value.split_once('=') {
                    Some((issuer, url)) => (issuer, identity::KeySource::Url(url.to_owned())),
                    None => (value.as_str(), identity::KeySource::Discovery),
                };
                anyhow::ensure!(
                    issuer.starts_with("https://") || issuer.starts_with("http://") || issuer.starts_with("urn:"),
                    "--trust-issuer takes ISSUER or ISSUER=JWKS_URL with ISSUER a URL, got {value:?}"
                );
                Ok(identity::TrustedIssuer::new(issuer, keys).with_groups_claim(&self.groups_claim))
            })
            .collect()
    }
}

/// Which token issuers a service trusts: external ones, and optionally the development issuer.
#[derive(clap::Args)]
pub(crate) struct Trust {
    #[command(flatten)]
    pub(crate) external: ExternalTrust,
    /// Also trust the local development issuer (never in production).
    #[arg(long)]
    pub(crate) dev_issuer: bool,
}

impl Trust {
    /// The trusted issuers, and the development issuer's key when it is trusted.
    pub(crate) fn issuers(
        &self,
        data: &DataDir,
    ) -> anyhow::Result<(Vec<identity::TrustedIssuer>, Option<identity::SigningKey>)> {
        let mut issuers = self.external.issuers()?;
        let dev_key = if self.dev_issuer {
            let key = crate::dev::load_key(&data.data_dir)?;
            issuers.push(crate::dev::trusted_issuer(&key));
            Some(key)
        } else {
            None
        };
        anyhow::ensure!(
            !issuers.is_empty(),
            "trust at least one issuer (--trust-issuer ISSUER[=JWKS_URL] or --dev-issuer)"
        );
        Ok((issuers, dev_key))
    }
}

/// The Cedar policies in `path`, or none.
pub(crate) fn read_policies(path: Option<&std::path::Path>) -> anyhow::Result<String> {
    match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("read policies {}: {e}", p.display())),
        None => Ok(String::new()),
    }
}

/// Writes `{"url": ...}` (and any extra fields) to the ready file, if one was asked for.
pub(crate) fn write_ready(
    path: Option<&std::path::Path>,
    value: serde_json::Value,
) -> anyhow::Result<()> {
    match path {
        Some(p) => service_kit::write_ready_file(p, &value),
        None => Ok(()),
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
