//! `switchboard policy check|who-can`: the registry's policy explanations from the command line.

use registry_api::{PolicyQuery, WhoCanQuery};

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
    /// What would the policies decide, and which policies decide it? Without --tool: may the
    /// caller connect to the server; with --tool: is the tool listed; with --args: may it be called.
    Check {
        /// The user (or with --service, the SPIFFE ID of a service).
        #[arg(long)]
        user: String,
        #[arg(long)]
        service: bool,
        /// Comma-separated groups.
        #[arg(long, default_value = "")]
        groups: String,
        #[arg(long, default_value = "api")]
        surface: String,
        #[arg(long)]
        channel: Option<String>,
        #[arg(long)]
        server: String,
        #[arg(long)]
        tool: Option<String>,
        /// The call's arguments, as a JSON object.
        #[arg(long)]
        args: Option<String>,
    },
    /// Which groups may call a tool (from a surface and channel)?
    WhoCan {
        #[arg(long)]
        server: String,
        #[arg(long)]
        tool: String,
        #[arg(long, default_value = "api")]
        surface: String,
        #[arg(long)]
        channel: Option<String>,
    },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.registry.client()?;
    match args.action {
        Action::Check {
            user,
            service,
            groups,
            surface,
            channel,
            server,
            tool,
            args,
        } => {
            let answer = client
                .policy_check(&PolicyQuery {
                    user,
                    service,
                    groups,
                    surface,
                    channel,
                    server,
                    tool,
                    args,
                })
                .await?;
            println!("{}", if answer.allowed { "ALLOW" } else { "DENY" });
            println!("  reason:   {}", answer.reason);
            let policies = if answer.policies.is_empty() {
                "(none)".to_owned()
            } else {
                answer.policies.join(", ")
            };
            println!("  policies: {policies}");
            if let Some(approver) = &answer.approval {
                println!(
                    "  needs approval by {approver} ({})",
                    answer.approval_policies.join(", ")
                );
            }
            if !answer.allowed {
                std::process::exit(2);
            }
        }
        Action::WhoCan {
            server,
            tool,
            surface,
            channel,
        } => {
            let who = client
                .who_can(&WhoCanQuery {
                    server,
                    tool,
                    surface,
                    channel,
                })
                .await?;
            if who.any_user {
                println!("any authenticated user");
            }
            for group in who.groups {
                println!("group {group}");
            }
            for service in who.services {
                println!("service {service}");
            }
        }
    }
    Ok(())
}
