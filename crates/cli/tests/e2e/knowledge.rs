//! The Knowledge server over a folder of its own, through the gateway: hits are passages cited by
//! document, section and lines, and a document restricted to some groups (front matter `groups`)
//! is searched and read only by their members: the caller's groups reach the server in the
//! gateway's signed assertion. Documents added, changed or removed in the folder are re-indexed
//! while the server runs.

use serde_json::{Value, json};

use crate::harness::{Platform, call, connect};

const MANIFEST: &str = r##"
[server]
name = "handbook"
description = "The company handbook"
owner_team = "agent-foundations"
support_channel = "#handbook"

[tools.search_docs]
minutes_saved = 3.0

[tools.get_doc]
minutes_saved = 1.0
"##;

#[tokio::test(flavor = "multi_thread")]
async fn passages_are_cited_and_restricted_documents_reach_only_their_groups() {
    let mut platform = Platform::start();
    let docs = platform.dir.path().join("handbook");
    std::fs::create_dir_all(docs.join("finance")).unwrap();
    std::fs::write(
        docs.join("expenses.md"),
        "# Expenses\n\n## Travel\nBook trains under four hours.\n\n## Meals\nReceipts over 25 USD.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("finance/close.md"),
        "---\ntitle: Month-end close\ngroups: finance\n---\n# Close\n\n## Ledger\nReconcile the ledger before the quarterly close.\n",
    )
    .unwrap();
    platform.start_knowledge_with(
        MANIFEST,
        &[
            "--docs",
            docs.to_str().unwrap(),
            "--reindex-every-secs",
            "1",
        ],
    );
    let url = format!("{}/servers/handbook/mcp", platform.gateway_url);

    let engineer = connect(&url, &platform.token("eve", &["employees"]), true).await;
    let travel = call(&engineer, "search_docs", json!({"query": "train travel"}))
        .await
        .unwrap();
    let hit = &travel.structured_content.clone().unwrap_or(Value::Null)["hits"][0];
    assert_eq!(hit["path"], "expenses.md", "{hit}");
    assert_eq!(hit["section"], "Expenses › Travel");
    assert_eq!(
        hit["citation"],
        "expenses.md § Expenses › Travel (lines 3-4)"
    );
    let hidden = call(
        &engineer,
        "search_docs",
        json!({"query": "reconcile ledger"}),
    )
    .await
    .unwrap();
    assert_eq!(
        hidden.structured_content.clone().unwrap()["hits"],
        json!([]),
        "a restricted document reached someone outside its groups"
    );
    let refused = call(&engineer, "get_doc", json!({"path": "finance/close.md"}))
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true));
    let said = refused.content[0].as_text().unwrap().text.clone();
    assert!(said.contains("no document"), "{said}");

    let accountant = connect(
        &url,
        &platform.token("fin", &["employees", "finance"]),
        true,
    )
    .await;
    let found = call(
        &accountant,
        "search_docs",
        json!({"query": "reconcile ledger"}),
    )
    .await
    .unwrap();
    let hit = &found.structured_content.clone().unwrap()["hits"][0];
    assert_eq!(hit["title"], "Month-end close");
    assert_eq!(
        hit["citation"],
        "finance/close.md § Close › Ledger (lines 7-8)"
    );
    let read = call(&accountant, "get_doc", json!({"path": "finance/close.md"}))
        .await
        .unwrap();
    assert!(
        read.structured_content.unwrap()["content"]
            .as_str()
            .unwrap()
            .contains("Reconcile the ledger")
    );

    // The folder changes under the running server: a new page, an edited one, a removed one.
    std::fs::write(
        docs.join("onboarding.md"),
        "# Onboarding\n\n## Laptop\nCollect your laptop from the kestrel desk.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("expenses.md"),
        "# Expenses\n\n## Travel\nBook flights over four hours.\n",
    )
    .unwrap();
    std::fs::remove_file(docs.join("finance/close.md")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let paths = |result: rmcp::model::CallToolResult| -> Vec<String> {
            result.structured_content.unwrap()["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h["path"].as_str().unwrap().to_owned())
                .collect()
        };
        let new = paths(
            call(&engineer, "search_docs", json!({"query": "kestrel laptop"}))
                .await
                .unwrap(),
        );
        let edited = paths(
            call(&engineer, "search_docs", json!({"query": "flights"}))
                .await
                .unwrap(),
        );
        let gone = paths(
            call(
                &accountant,
                "search_docs",
                json!({"query": "reconcile ledger"}),
            )
            .await
            .unwrap(),
        );
        if new == ["onboarding.md"] && edited == ["expenses.md"] && gone.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the folder's changes were not re-indexed: {new:?} {edited:?} {gone:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    engineer.cancel().await.unwrap();
    accountant.cancel().await.unwrap();
}

fn git(repo: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A git repository as the source: its Markdown and HTML pages are indexed (HTML headings become
/// sections), and a new commit is fetched and indexed while the server runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_git_repository_of_markdown_and_html_is_indexed_and_followed() {
    let mut platform = Platform::start();
    let repo = platform.dir.path().join("wiki-repo");
    std::fs::create_dir_all(repo.join("ops")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.email", "wiki@example.com"]);
    git(&repo, &["config", "user.name", "Wiki"]);
    std::fs::write(
        repo.join("ops/paging.html"),
        "<html><head><script>var x = 1;</script></head><body><h1>Paging</h1><p>Intro.</p>\
         <h2>Escalation</h2><p>Page the secondary after fifteen minutes of silence.</p></body></html>",
    )
    .unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "paging"]);
    let manifest = MANIFEST.replace("handbook", "wiki");
    platform.start_knowledge_with(
        &manifest,
        &[
            "--docs-git",
            repo.to_str().unwrap(),
            "--docs-git-branch",
            "main",
            "--reindex-every-secs",
            "1",
        ],
    );
    let url = format!("{}/servers/wiki/mcp", platform.gateway_url);
    let agent = connect(&url, &platform.token("eve", &["employees"]), true).await;
    let found = call(
        &agent,
        "search_docs",
        json!({"query": "page the secondary"}),
    )
    .await
    .unwrap();
    let hit = &found.structured_content.clone().unwrap()["hits"][0];
    assert_eq!(hit["path"], "ops/paging.html", "{hit}");
    assert_eq!(hit["section"], "Paging › Escalation", "{hit}");
    let scripts = call(&agent, "search_docs", json!({"query": "var"}))
        .await
        .unwrap();
    assert_eq!(
        scripts.structured_content.clone().unwrap()["hits"],
        json!([])
    );

    // A new commit reaches the index without a restart.
    std::fs::write(
        repo.join("ops/rotation.md"),
        "# Rotation\nSwap shifts on Thursdays.\n",
    )
    .unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "rotation"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found = call(
            &agent,
            "search_docs",
            json!({"query": "swap shifts thursdays"}),
        )
        .await
        .unwrap();
        if found.structured_content.clone().unwrap()["hits"][0]["path"] == "ops/rotation.md" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new commit was not indexed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    agent.cancel().await.unwrap();
}
