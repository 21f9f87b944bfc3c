//! `switchboard policy check|who-can`: the registry's policy explanations from the command line.

use registry_api::{PolicyQuery, WhoCanQuery};
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
