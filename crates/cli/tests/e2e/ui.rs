//! The registry's web UI in a real browser: headless Chromium (Debian's, driven by playwright-core
//! from `tests/node/ui-browser.mjs`) signs in with OpenID Connect (authorization code + PKCE at a
//! real provider) and with the development form, finds a server, approves its reviews, and leaves
//! screenshots in `$SWITCHBOARD_ARTIFACTS/ui-screenshots` (CI keeps them) or the test target dir.

use std::{path::PathBuf, process::Command};

use serde_json::{Value, json};

use crate::{
    harness::{Platform, available, node_tools_dir},
    oidc::start_provider_with,
};

/// Whether the browser tests can run here: node tools (with playwright-core) and Chromium; says
/// what is skipped otherwise (and fails under `CI=true`).
pub fn browser_available() -> bool {
    available("node 22 and playwright-core", node_tools_dir().is_some())
        && available("chromium (Debian package)", chromium().is_some())
}

/// Runs `tests/node/<script>` with `args` in headless Chromium and returns the JSON line it
/// printed; fails the test, with what the script saw, when it fails.
pub fn run_browser(script: &str, args: &[&std::ffi::OsStr]) -> Value {
    let tools = node_tools_dir().expect("browser_available was checked");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/node")
        .join(script);
    let run = Command::new(tools.join("node_modules/.bin/node"))
        .arg(&script)
        .args(args)
        .env("SWITCHBOARD_NODE_TOOLS", &tools)
        .env(
            "CHROMIUM",
            chromium().expect("browser_available was checked"),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| {
            panic!(
                "{} said {stdout:?} ({e}); stderr: {}",
                script.display(),
                String::from_utf8_lossy(&run.stderr)
            )
        });
    assert!(run.status.success(), "the browser run failed: {seen}");
    seen
}

fn chromium() -> Option<PathBuf> {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")))
        .filter(|p| p.exists())
}

/// A fresh folder for one browser test's screenshots, under `ui-screenshots/`.
pub fn screenshots(test: &str) -> PathBuf {
    let root = match std::env::var_os("SWITCHBOARD_ARTIFACTS") {
        Some(dir) => PathBuf::from(dir).join("ui-screenshots"),
        None => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots"),
    };
    let dir = root.join(test);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test(flavor = "multi_thread")]
async fn reviewers_sign_in_find_a_server_and_approve_its_reviews_in_a_browser() {
    if !browser_available() {
        return;
    }
    let login = json!({
        "id": "switchboard-registry",
        "users": {"rita": ["employees", "security-reviewers"]}
    })
    .to_string();
    let Some(provider) = start_provider_with("[]", Some(&login)) else {
        return;
    };
    let platform = Platform::start_with(&[
        "--ui-oidc-issuer",
        &provider.issuer,
        "--ui-oidc-client-id",
        "switchboard-registry",
        "--ui-oidc-scope",
        "groups",
    ]);

    // A server waiting for review.
    let dir = platform.dir.path();
    std::fs::write(
        dir.join("ledger.toml"),
        "[server]\nname = \"ledger\"\ntitle = \"Ledger\"\ndescription = \"Balances and revenue\"\nowner_team = \"finance-eng\"\nsupport_channel = \"#ledger\"\ndata_classification = \"confidential\"\n[tools.balance]\nminutes_saved = 2\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("ledger-tools.json"),
        json!([{"name": "balance", "description": "Current balance of an account.",
                "inputSchema": {"type": "object", "properties": {"account": {"type": "string"}},
                                "additionalProperties": false},
                "annotations": {"readOnlyHint": true}}])
        .to_string(),
    )
    .unwrap();
    let (code, out) = platform.cli(&[
        "servers",
        "register",
        "--manifest",
        dir.join("ledger.toml").to_str().unwrap(),
        "--endpoint",
        "http://127.0.0.1:9/mcp",
        "--tools",
        dir.join("ledger-tools.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");

    let shots = screenshots("reviews");
    let seen = run_browser(
        "ui-browser.mjs",
        &[
            platform.registry_url.as_ref(),
            shots.as_os_str(),
            "ledger".as_ref(),
        ],
    );
    assert_eq!(seen["oidcUser"], "rita", "{seen}");
    assert_eq!(seen["results"], "1 of 5 servers", "{seen}");
    assert_eq!(seen["links"], json!(["Ledger"]), "{seen}");
    assert_eq!(seen["approvalBefore"], "Not approved", "{seen}");
    assert_eq!(seen["notice"], "Done: ledger.1.security approved", "{seen}");
    assert!(
        seen["privacyBlocked"]
            .as_str()
            .unwrap()
            .contains("legal-privacy reviews are decided by [privacy-reviewers]"),
        "{seen}"
    );
    assert_eq!(seen["devUser"], "priya", "{seen}");
    assert_eq!(
        seen["secondNotice"], "Done: ledger.1.legal-privacy approved",
        "{seen}"
    );
    // The GenAI review is still open.
    assert_eq!(seen["approvalAfter"], "Not approved", "{seen}");

    // What the browser did is what the registry recorded.
    let registry = registry_client::RegistryClient::new(
        &platform.registry_url,
        registry_client::Credentials::Static(platform.token.clone()),
    );
    let reviews = registry.list_reviews(Some("ledger"), None).await.unwrap();
    let by = |kind: &str| {
        let r = reviews.iter().find(|r| r.kind.as_str() == kind).unwrap();
        (r.state.as_str(), r.decided_by.clone(), r.comment.clone())
    };
    assert_eq!(
        by("security"),
        (
            "approved",
            Some("rita".to_owned()),
            Some("Threat model reviewed in the browser".to_owned())
        )
    );
    assert_eq!(by("legal-privacy").1.as_deref(), Some("priya"));
    assert_eq!(by("genai").0, "pending");

    for name in [
        "01-sign-in",
        "02-provider-login",
        "03-catalog",
        "04-search",
        "05-server",
        "06-review-queue",
        "07-approved",
        "08-server-approved",
    ] {
        let file = shots.join(format!("{name}.png"));
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(
            size > 1000,
            "screenshot {} is missing or empty",
            file.display()
        );
    }
    eprintln!("screenshots: {}", shots.display());
}
