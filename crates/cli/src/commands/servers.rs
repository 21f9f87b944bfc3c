//! `switchboard servers list|show`: read the registry's catalog.

use registry_client::{Credentials, RegistryClient};

use crate::{commands::DataDir, dev};

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
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

#[derive(clap::Subcommand)]
enum Action {
    /// One line per server.
    List,
    /// Everything the registry knows about one server, as JSON.
    Show { name: String },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let token = match args.token {
        Some(t) => t,
        None => dev::mint(
            &dev::load_key(&args.data.data_dir)?,
            "operator",
            vec![dev::ADMINS_GROUP.into()],
            300,
        )?,
    };
    let client = RegistryClient::new(&args.registry_url, Credentials::Static(token));
    match args.action {
        Action::List => {
            let servers = client.list_servers().await?;
            println!(
                "{:<20} {:<8} {:<22} {:<26} {:>5}  ALLOWED GROUPS",
                "NAME", "ENV", "OWNER", "SUPPORT", "TOOLS"
            );
            for s in servers {
                let groups = if s.allowed_groups.is_empty() {
                    "(all)".to_owned()
                } else {
                    s.allowed_groups.join(",")
                };
                println!(
                    "{:<20} {:<8} {:<22} {:<26} {:>5}  {groups}",
                    s.name,
                    s.environment,
                    s.owner_team,
                    s.support_channel,
                    s.tools.len()
                );
            }
        }
        Action::Show { name } => {
            let server = client.get_server(&name).await?;
            println!("{}", serde_json::to_string_pretty(&server)?);
        }
    }
    Ok(())
}
