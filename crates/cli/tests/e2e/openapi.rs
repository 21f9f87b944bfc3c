//! The registry's OpenAPI document is generated from its handlers: `switchboard openapi` prints
//! it, the registry serves it at `/v1/openapi.json`, and it passes a real OpenAPI 3.1 validator
//! (openapi-spec-validator, installed by `.ci/run`).

use std::process::Command;

use serde_json::Value;

use crate::harness::{Platform, available, bin, blocking_get, python_with};

#[test]
fn the_registry_api_is_described_by_a_valid_generated_openapi_document() {
    let out = Command::new(bin()).arg("openapi").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = printed["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for expected in [
        "/v1/servers",
        "/v1/servers/{name}",
        "/v1/reviews/{id}/approve",
        "/v1/teams/{name}",
        "/v1/discovery",
        "/v1/access",
        "/v1/changes",
        "/v1/status",
        "/v0.1/servers",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} is missing from {paths:?}"
        );
    }
    let register = &printed["paths"]["/v1/servers"]["post"];
    assert_eq!(register["operationId"], "registerServer");
    assert!(register["responses"]["422"].is_object());
    assert!(printed["components"]["schemas"]["ServerView"].is_object());

    // The running registry serves the same document.
    let platform = Platform::start();
    let served = blocking_get(
        &format!("{}/v1/openapi.json", platform.registry_url),
        &platform.token,
    );
    assert_eq!(served, printed);

    let python = python_with("import openapi_spec_validator");
    if !available("openapi-spec-validator (Python)", python.is_some()) {
        return;
    }
    let file = platform.dir.path().join("openapi.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let check = Command::new(python.unwrap())
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "the OpenAPI document is invalid:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
