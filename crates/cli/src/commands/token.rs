//! `switchboard token`: mint a development token for any user and groups.

use crate::{commands::DataDir, dev};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The user the token names.
    #[arg(long)]
    user: String,
    /// Comma-separated business groups, e.g. `finance,ads-eng`.
    #[arg(long, default_value = "")]
    groups: String,
    /// The surface the token is for: `web-chat`, `bot`, `ide`, `api` (policies can tell them apart).
    #[arg(long)]
    surface: Option<String>,
    /// Space-separated OAuth scopes to grant, e.g. `mcp:tools`.
    #[arg(long)]
    scope: Option<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    #[command(flatten)]
    data: DataDir,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let key = dev::load_key(&args.data.data_dir)?;
    let mut claims = identity::Claims::new(
        dev::DEV_ISSUER,
        &args.user,
        dev::PLATFORM_AUDIENCE,
        catalog::parse_groups(&args.groups),
        args.ttl,
    );
    claims.scope = args.scope;
    claims.surface = args.surface;
    println!("{}", key.sign(&claims)?);
    Ok(())
}
