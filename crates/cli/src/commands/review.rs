//! `switchboard review list|show|approve|reject`: the review queue, for reviewers.

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
    /// One line per review, newest first (pending ones unless --state says otherwise).
    List {
        #[arg(long)]
        server: Option<String>,
        /// `pending`, `approved`, `rejected`, `superseded` or `all`.
        #[arg(long, default_value = "pending")]
        state: String,
    },
    /// One review in full, with the tool definitions and automated findings under review.
    Show { id: String },
    /// Approve reviews: by id, or every pending review of --server.
    Approve {
        ids: Vec<String>,
        #[arg(long)]
        server: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Reject a review, saying what the owners must change.
    Reject {
        id: String,
        #[arg(long)]
        comment: String,
    },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.registry.client()?;
    match args.action {
        Action::List { server, state } => {
            let state = (state != "all").then_some(state);
            let reviews = client
                .list_reviews(server.as_deref(), state.as_deref())
                .await?;
            println!(
                "{:<40} {:<10} {:<8} {:<16} REASON",
                "ID", "STATE", "SCOPE", "DECIDED BY"
            );
            for r in reviews {
                println!(
                    "{:<40} {:<10} {:<8} {:<16} {}{}",
                    r.id,
                    r.state.as_str(),
                    r.scope.as_str(),
                    r.decided_by.as_deref().unwrap_or("-"),
                    r.reason,
                    if r.findings.is_empty() {
                        String::new()
                    } else {
                        format!(" [{} automated findings]", r.findings.len())
                    }
                );
            }
        }
        Action::Show { id } => {
            let review = client.get_review(&id).await?;
            println!("{}", serde_json::to_string_pretty(&review)?);
        }
        Action::Approve {
            mut ids,
            server,
            comment,
        } => {
            if let Some(server) = &server {
                ids.extend(
                    client
                        .list_reviews(Some(server), Some("pending"))
                        .await?
                        .into_iter()
                        .map(|r| r.id),
                );
            }
            anyhow::ensure!(
                !ids.is_empty() || server.is_some(),
                "name the reviews to approve, or --server to approve its pending ones"
            );
            if ids.is_empty() {
                println!("no pending reviews");
            }
            for id in ids {
                let review = client.decide_review(&id, true, &comment).await?;
                println!("approved {}", review.id);
            }
        }
        Action::Reject { id, comment } => {
            let review = client.decide_review(&id, false, &comment).await?;
            println!("rejected {}", review.id);
        }
    }
    Ok(())
}
