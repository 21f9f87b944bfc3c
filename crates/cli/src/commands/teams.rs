//! `switchboard teams list|put`: the teams that own servers.

use registry_api::Team;

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
    /// One line per team.
    List,
    /// Create or replace a team.
    Put {
        name: String,
        #[arg(long)]
        title: Option<String>,
        /// Users who own the team's servers (comma-separated).
        #[arg(long, value_delimiter = ',')]
        owners: Vec<String>,
        /// Groups whose members belong to the team (comma-separated).
        #[arg(long, value_delimiter = ',')]
        member_groups: Vec<String>,
        #[arg(long)]
        support_channel: String,
    },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.registry.client()?;
    match args.action {
        Action::List => {
            println!(
                "{:<24} {:<26} {:<30} MEMBER GROUPS",
                "NAME", "SUPPORT", "OWNERS"
            );
            for t in client.list_teams().await? {
                println!(
                    "{:<24} {:<26} {:<30} {}",
                    t.name,
                    t.support_channel,
                    t.owners.join(","),
                    t.member_groups.join(",")
                );
            }
        }
        Action::Put {
            name,
            title,
            owners,
            member_groups,
            support_channel,
        } => {
            let team = client
                .put_team(&Team {
                    name,
                    title,
                    owners,
                    member_groups,
                    support_channel,
                    updated_at_ms: 0,
                })
                .await?;
            println!("saved team {}", team.name);
        }
    }
    Ok(())
}
