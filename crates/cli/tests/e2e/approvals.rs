//! `switchboard approvals`: people list the proposals they may decide and approve or reject them
//! in batches, against a running registry.

use serde_json::json;

use crate::harness::Platform;

#[tokio::test(flavor = "multi_thread")]
async fn approvals_are_listed_and_decided_in_batches_from_the_command_line() {
    let platform = Platform::start();
    let service = platform.token("gateway", &["switchboard-services"]);
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 600_000;
    let http = reqwest::Client::new();
    for i in 0..5 {
        let response = http
            .post(format!("{}/v1/proposals", platform.registry_url))
            .bearer_auth(&service)
            .json(&json!({
                "id": format!("p-{i}"), "server": "knowledge", "tool": "get_doc",
                "arguments": {"path": format!("runbooks/{i}.md")}, "user": "ann", "groups": ["employees"],
                "surface": "ide", "reason": "knowledge/approval", "approver": "group:dba",
                "expires_at_ms": expires
            }))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap()
        );
    }
    let dba = platform.token("dora", &["dba"]);
    let (code, out) = platform.cli(&["approvals", "list", "--token", &dba]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 6, "{out}");
    assert!(
        out.contains("runbooks/3.md") && out.contains("group:dba"),
        "{out}"
    );
    // Someone else may decide none of them, and is told so.
    let (code, _) = platform.cli(&[
        "approvals",
        "reject",
        "p-0",
        "--comment",
        "no",
        "--token",
        &platform.token("eve", &["eng"]),
    ]);
    assert_ne!(code, 0);

    let (code, out) = platform.cli(&[
        "approvals",
        "reject",
        "p-4",
        "--comment",
        "not today",
        "--token",
        &dba,
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = platform.cli(&[
        "approvals",
        "approve",
        "--server",
        "knowledge",
        "--comment",
        "window",
        "--token",
        &dba,
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("approved p-")).count(),
        4,
        "{out}"
    );
    let (code, out) = platform.cli(&["approvals", "list", "--state", "all", "--token", &dba]);
    assert_eq!(code, 0);
    assert_eq!(out.matches(" approved ").count(), 4, "{out}");
    assert_eq!(out.matches(" rejected ").count(), 1, "{out}");
}
