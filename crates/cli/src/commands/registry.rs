//! `switchboard registry`: run the registry service.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use identity::Verifier;
use registry::{RegistryConfig, RegistryState};
use registry_store::SqlStore;

use crate::{
    commands::{
        DataDir, GovernanceArgs, PublicationArgs, RetentionArgs, Trust, UiArgs, read_policies,
        write_ready,
    },
    dev,
};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[arg(
        long,
        env = "SWITCHBOARD_REGISTRY_LISTEN",
        default_value = "127.0.0.1:7700"
    )]
    listen: SocketAddr,
    /// The database: a `postgres://user@host/db` URL, or a SQLite file (default:
    /// `<data-dir>/registry.db`).
    #[arg(long, env = "SWITCHBOARD_REGISTRY_DATABASE")]
    database: Option<String>,
    #[command(flatten)]
    trust: Trust,
    /// Groups that may register servers and write audit records.
    #[arg(long, value_delimiter = ',', default_values_t = [dev::ADMINS_GROUP.to_owned(), dev::SERVICES_GROUP.to_owned()])]
    writer_groups: Vec<String>,
    /// Groups that may read every caller's audit records.
    #[arg(long, value_delimiter = ',', default_values_t = [dev::ADMINS_GROUP.to_owned()])]
    auditor_groups: Vec<String>,
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
    /// The registry's own public base URL (for sign-in redirects); default `http://<listen>`.
    #[arg(long)]
    public_url: Option<String>,
    /// The gateway's public base URL, for the remotes of published catalog entries.
    #[arg(long, env = "SWITCHBOARD_GATEWAY_URL")]
    gateway_url: Option<String>,
    /// Write `{"url": ...}` here once listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let (issuers, dev_key) = args.trust.issuers(&args.data)?;
    let dev_jwks = dev_key.map(|key| identity::jwks_document(&[&key]));
    // A PostgreSQL URL, or a SQLite file (by default in the data directory).
    let store = match args.database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            SqlStore::postgres(&url).await?
        }
        database => {
            let path = database
                .map(PathBuf::from)
                .unwrap_or_else(|| args.data.data_dir.join("registry.db"));
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            SqlStore::sqlite(&path).await?
        }
    };
    let state = RegistryConfig {
        store: Arc::new(store),
        verifier: Verifier::for_audiences(args.trust.external.audiences.clone(), issuers)?,
        writer_groups: args.writer_groups,
        auditor_groups: args.auditor_groups,
        dev_issuer_jwks: dev_jwks,
        platform_policies: read_policies(args.platform_policies.as_deref())?,
        governance: args.governance.governance()?,
        publication: args.publication.publication(args.gateway_url.clone()),
        ui: args.ui.ui(
            &args.data,
            &args
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", args.listen)),
            false,
        )?,
        audit_retention: args.retention.retention(),
    };
    let state = RegistryState::new(state).await?;
    let listener = service_kit::bind(args.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    write_ready(
        args.ready_file.as_deref(),
        serde_json::json!({ "url": url }),
    )?;
    registry::run(state, listener, service_kit::shutdown_on_signal()).await
}
