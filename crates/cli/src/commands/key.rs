//! `switchboard key generate`: a new Ed25519 signing key in Switchboard's key file format, for
//! keys that several replicas share (the gateway's, mounted from one Kubernetes Secret).

use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Write a new key to a file that does not exist yet (owner-only permissions).
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::Generate { out } => {
            anyhow::ensure!(
                !out.exists(),
                "{} exists already: a key is never overwritten",
                out.display()
            );
            let key = identity::SigningKey::load_or_create(&out)?;
            eprintln!("wrote key {} to {}", key.kid(), out.display());
            Ok(())
        }
    }
}
