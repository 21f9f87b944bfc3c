//! `switchboard servers list|show`: read the registry's catalog.

use crate::commands::RegistryAccess;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    registry: RegistryAccess,
}

#[derive(clap::Subcommand)]
enum Action {
    /// One line per server.
    List,
    /// Everything the registry knows about one server, as JSON.
    Show { name: String },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.registry.client()?;
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
