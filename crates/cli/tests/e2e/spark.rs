//! The Spark server that `switchboard up` ships, through the gateway: an agent finds the failed
//! applications among the sample event logs (written by real failing pyspark jobs), and gets each
//! failure diagnosed with its category and the evidence quoted from the log, in either protocol
//! era.

use serde_json::{Value, json};

use crate::harness::{Platform, call, connect, python_agent, python_output};

#[tokio::test(flavor = "multi_thread")]
async fn agents_diagnose_the_sample_failures_through_the_gateway() {
    let platform = Platform::start();
    let url = format!("{}/servers/spark/mcp", platform.gateway_url);
    let agent = connect(&url, &platform.token, true).await;
    let listed = call(&agent, "list_applications", json!({"status": "failed"}))
        .await
        .unwrap();
    let apps = listed.structured_content.clone().unwrap_or(Value::Null);
    let ids: Vec<&str> = apps["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        server_spark::samples::APPLICATIONS.len(),
        "{apps}"
    );
    for (id, kind, expected) in server_spark::samples::APPLICATIONS {
        assert!(ids.contains(id), "{id} missing from {ids:?}");
        let diagnosed = call(&agent, "diagnose_failure", json!({"app_id": id}))
            .await
            .unwrap();
        let diagnosis = diagnosed.structured_content.clone().unwrap();
        let category = diagnosis["category"].as_str().unwrap();
        assert_eq!(
            category,
            expected.as_str(),
            "{id} (a {kind} failure) was diagnosed as {category}"
        );
        assert!(!diagnosis["evidence"].as_array().unwrap().is_empty());
    }
    let unknown = call(&agent, "get_application", json!({"app_id": "../etc"}))
        .await
        .unwrap();
    assert_eq!(unknown.is_error, Some(true));
    agent.cancel().await.unwrap();

    if let Some(python) = crate::harness::python() {
        let out = python_output(
            python_agent(
                &python,
                &url,
                "legacy",
                &platform.token,
                "diagnose_failure",
                &json!({"app_id": "app-20261122212828-0000"}),
                None,
            )
            .output()
            .unwrap(),
        );
        assert_eq!(out["structured"]["category"], "out_of_memory", "{out}");
        assert!(
            out["text"][0]
                .as_str()
                .unwrap()
                .contains("java.lang.OutOfMemoryError: Java heap space"),
            "{out}"
        );
    } else {
        crate::harness::available("the official MCP Python SDK (pip install mcp)", false);
    }
    assert!(platform.audit("spark").len() >= 7);
}
