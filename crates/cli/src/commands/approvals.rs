//! `switchboard approvals list|approve|reject`: the calls waiting for a person's approval, decided
//! one at a time or in batches.

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
    /// One line per proposal you may decide (pending ones unless --state says otherwise).
    List {
        #[arg(long)]
        server: Option<String>,
        /// `pending`, `approved`, `rejected`, `expired`, `running`, `done`, `failed` or `all`.
        #[arg(long, default_value = "pending")]
        state: String,
        /// Every proposal you may see (your own too), not only those you may decide.
        #[arg(long)]
        all_visible: bool,
    },
    /// Approve proposals: by id, or every pending one you may decide on --server.
    Approve {
        ids: Vec<String>,
        #[arg(long)]
        server: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Reject proposals, saying why (the agents are told).
    Reject {
        #[arg(required = true)]
        ids: Vec<String>,
        #[arg(long)]
        comment: String,
    },
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let client = args.registry.client()?;
    match args.action {
        Action::List {
            server,
            state,
            all_visible,
        } => {
            let state = (state != "all").then_some(state);
            let proposals = client
                .list_proposals(state.as_deref(), server.as_deref(), !all_visible)
                .await?;
            println!(
                "{:<38} {:<9} {:<14} {:<20} {:<12} {:<16} ARGUMENTS",
                "ID", "STATE", "SERVER", "TOOL", "USER", "APPROVER"
            );
            for p in proposals {
                let args = p.proposal.arguments.to_string();
                let args: String = args.chars().take(60).collect();
                println!(
                    "{:<38} {:<9} {:<14} {:<20} {:<12} {:<16} {args}",
                    p.proposal.id,
                    p.state.as_str(),
                    p.proposal.server,
                    p.proposal.tool,
                    p.proposal.user,
                    p.proposal.approver.to_string()
                );
                if let Some(summary) = p
                    .proposal
                    .preview
                    .as_ref()
                    .and_then(|v| v.get("summary"))
                    .and_then(serde_json::Value::as_str)
                {
                    println!("{:<38} would change: {summary}", "");
                }
            }
        }
        Action::Approve {
            mut ids,
            server,
            comment,
        } => {
            if let Some(server) = &server {
                ids.extend(
                    client
                        .list_proposals(Some("pending"), Some(server), true)
                        .await?
                        .into_iter()
                        .map(|p| p.proposal.id),
                );
            }
            anyhow::ensure!(
                !ids.is_empty(),
                "name the proposals to approve, or --server with pending ones you may decide"
            );
            report(client.decide_proposals(&ids, true, &comment).await?)?;
        }
        Action::Reject { ids, comment } => {
            report(client.decide_proposals(&ids, false, &comment).await?)?;
        }
    }
    Ok(())
}

/// Prints what a batch did; fails when any proposal was refused.
fn report(outcome: registry_api::BatchOutcome) -> anyhow::Result<()> {
    for p in &outcome.decided {
        println!("{} {}", p.state.as_str(), p.proposal.id);
    }
    for r in &outcome.refused {
        eprintln!("not decided {}: {}", r.id, r.reason);
    }
    anyhow::ensure!(
        outcome.refused.is_empty(),
        "{} of {} proposals were not decided",
        outcome.refused.len(),
        outcome.refused.len() + outcome.decided.len()
    );
    Ok(())
}
