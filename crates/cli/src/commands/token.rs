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
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    #[command(flatten)]
    data: DataDir,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let key = dev::load_key(&args.data.data_dir)?;
    println!(
        "{}",
        dev::mint(
            &key,
            &args.user,
            catalog::parse_groups(&args.groups),
            args.ttl
        )?
    );
    Ok(())
}
