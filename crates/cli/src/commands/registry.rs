//! `switchboard registry`: run the registry service.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use identity::Verifier;
use registry::RegistryState;
use registry_store::SqliteStore;

use crate::{
    commands::{DataDir, parse_trusted_issuer, write_ready},
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
    /// SQLite database file (default: `<data-dir>/registry.db`).
    #[arg(long, env = "SWITCHBOARD_REGISTRY_DATABASE")]
    database: Option<PathBuf>,
    /// Trust tokens from this issuer: `ISSUER=JWKS_URL`. Repeat for several issuers.
    #[arg(long = "trust-issuer")]
    trust_issuers: Vec<String>,
    /// Also trust the local development issuer, and serve its keys (never in production).
    #[arg(long)]
    dev_issuer: bool,
    /// The audience tokens must be issued for.
    #[arg(long, default_value = dev::PLATFORM_AUDIENCE)]
    audience: String,
    /// Groups that may register servers and write audit records.
    #[arg(long, value_delimiter = ',', default_values_t = [dev::ADMINS_GROUP.to_owned(), dev::SERVICES_GROUP.to_owned()])]
    writer_groups: Vec<String>,
    /// Groups that may read every caller's audit records.
    #[arg(long, value_delimiter = ',', default_values_t = [dev::ADMINS_GROUP.to_owned()])]
    auditor_groups: Vec<String>,
    /// Write `{"url": ...}` here once listening.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    #[command(flatten)]
    data: DataDir,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let mut issuers = args
        .trust_issuers
        .iter()
        .map(|v| parse_trusted_issuer(v))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut dev_jwks = None;
    if args.dev_issuer {
        let key = dev::load_key(&args.data.data_dir)?;
        let jwks = identity::jwks_document(&[&key]);
        issuers.push(identity::TrustedIssuer {
            issuer: dev::DEV_ISSUER.into(),
            keys: identity::KeySource::Static(jwks.clone()),
        });
        dev_jwks = Some(jwks);
    }
    anyhow::ensure!(
        !issuers.is_empty(),
        "trust at least one issuer (--trust-issuer ISSUER=JWKS_URL or --dev-issuer)"
    );
    let database = args
        .database
        .unwrap_or_else(|| args.data.data_dir.join("registry.db"));
    if let Some(dir) = database.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let state = RegistryState {
        store: Arc::new(SqliteStore::open(&database).await?),
        verifier: Verifier::new(args.audience, issuers)?,
        writer_groups: args.writer_groups,
        auditor_groups: args.auditor_groups,
        dev_issuer_jwks: dev_jwks,
    };
    let listener = service_kit::bind(args.listen).await?;
    let url = format!("http://{}", listener.local_addr()?);
    write_ready(
        args.ready_file.as_deref(),
        serde_json::json!({ "url": url }),
    )?;
    registry::run(Arc::new(state), listener, service_kit::shutdown_on_signal()).await
}
