//! The paved path: `switchboard deploy` turns a declarative server's manifest and tools file into
//! Kubernetes objects, validated against the Kubernetes schemas (the `kubernetes-validate`
//! package, strict), and registers the server at its Service address with its reviews open.

use std::process::Command;

use crate::harness::{Platform, available, python_with};

const MANIFEST: &str = r##"
[server]
name = "billing"
description = "Invoices and refunds from the billing API"
owner_team = "finance-eng"
support_channel = "#billing"
[access]
allowed_groups = ["finance"]
[tools.get_invoice]
minutes_saved = 4.0
"##;

const TOOLS: &str = r##"
base_url = "http://billing-api.finance.svc.cluster.local"
[tools.get_invoice]
description = "One invoice by its id"
path = "/invoices/{id}"
[tools.get_invoice.arguments.id]
in = "path"
required = true
"##;

/// Validates `file` strictly against the schemas of Kubernetes `version`; its report.
fn kubernetes_validate(
    python: &std::path::Path,
    version: &str,
    file: &std::path::Path,
) -> (bool, String) {
    let out = Command::new(python)
        .args(["-m", "kubernetes_validate", "--strict", "-k", version])
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_becomes_valid_kubernetes_objects_and_a_registered_server_under_review() {
    let python = python_with("import kubernetes_validate");
    if !available("the kubernetes-validate Python package", python.is_some()) {
        return;
    }
    let python = python.unwrap();
    let platform = Platform::start();
    let dir = platform.dir.path();
    std::fs::write(dir.join("billing.toml"), MANIFEST).unwrap();
    std::fs::write(dir.join("billing-tools.toml"), TOOLS).unwrap();
    let out = dir.join("billing.yaml");
    let (code, printed) = platform.cli(&[
        "deploy",
        "--manifest",
        dir.join("billing.toml").to_str().unwrap(),
        "--declarative-tools",
        dir.join("billing-tools.toml").to_str().unwrap(),
        "--image",
        "ghcr.io/example/switchboard:0.1.0",
        "--namespace",
        "mcp",
        "--trust-domain",
        "example.org",
        "--env",
        "SWITCHBOARD_GATEWAY_JWKS=http://gateway.switchboard.svc:7701/.well-known/jwks.json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{printed}");

    // Every object is valid for the Kubernetes versions clusters run today.
    for version in ["1.31.0", "1.34.0"] {
        let (ok, report) = kubernetes_validate(&python, version, &out);
        assert!(ok, "Kubernetes {version}: {report}");
    }
    let yaml = std::fs::read_to_string(&out).unwrap();
    let objects: Vec<serde_json::Value> = yaml
        .split("\n---\n")
        .map(|doc| serde_json::from_str(doc).unwrap())
        .collect();
    let kinds: Vec<&str> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "ServiceAccount",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "NetworkPolicy"
        ]
    );
    assert_eq!(
        objects[1]["metadata"]["annotations"]["switchboard.dev/spiffe-id"],
        "spiffe://example.org/ns/mcp/sa/billing"
    );
    // The validator does catch a broken object: the check can fail.
    let broken = dir.join("broken.yaml");
    std::fs::write(
        &broken,
        yaml.replacen(
            "\"containerPort\": 8080",
            "\"containerPort\": \"eighty\"",
            1,
        ),
    )
    .unwrap();
    assert!(!kubernetes_validate(&python, "1.34.0", &broken).0);

    // Registered at its Service address, with its tool, and its reviews open.
    let (code, shown) = platform.cli(&["servers", "show", "billing"]);
    assert_eq!(code, 0, "{shown}");
    assert!(
        shown.contains("http://billing.mcp.svc.cluster.local:8080/mcp"),
        "{shown}"
    );
    assert!(shown.contains("get_invoice"), "{shown}");
    let (code, reviews) = platform.cli(&["review", "list", "--server", "billing"]);
    assert_eq!(code, 0, "{reviews}");
    assert!(reviews.contains("pending"), "{reviews}");
}
