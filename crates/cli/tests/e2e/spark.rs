//! The Spark server that `switchboard up` ships, through the gateway: an agent finds the failed
//! applications among the sample event logs (written by real failing pyspark jobs), and gets each
//! failure diagnosed with its category and the evidence quoted from the log, in either protocol
//! era. A diagnosis recorded with `record_rca` is found by the Knowledge server's `search_docs`
//! for a later, similar failure.

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

    // Recorded, the analysis becomes knowledge the next engineer finds.
    let agent = connect(&url, &platform.token, true).await;
    let recorded = call(
        &agent,
        "record_rca",
        json!({"app_id": "app-20261122212828-0000", "note": "The widen UDF built 400 MB strings; fixed by streaming the rows (ticket DATA-1234)."}),
    )
    .await
    .unwrap();
    assert_ne!(recorded.is_error, Some(true), "{recorded:?}");
    assert_eq!(
        recorded.structured_content.clone().unwrap()["file"],
        "app-20261122212828-0000.md"
    );
    let knowledge = connect(
        &format!("{}/servers/knowledge/mcp", platform.gateway_url),
        &platform.token,
        true,
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let hit = loop {
        let found = call(
            &knowledge,
            "search_docs",
            json!({"query": "executor exited with code 52 java.lang.OutOfMemoryError Java heap space python UDF", "limit": 5}),
        )
        .await
        .unwrap();
        let hits = found.structured_content.clone().unwrap()["hits"].clone();
        if let Some(hit) = hits
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["path"] == "records/spark/app-20261122212828-0000.md")
        {
            break hit.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the recorded analysis was not found: {hits}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert!(
        hit["title"]
            .as_str()
            .unwrap()
            .starts_with("Spark RCA: nightly-out-of-memory"),
        "{hit}"
    );
    let record = call(&knowledge, "get_doc", json!({"path": hit["path"]}))
        .await
        .unwrap();
    let text = record.structured_content.unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("ticket DATA-1234"), "{text}");
    assert!(
        text.contains("recorded_by") || text.contains("Notes from developer"),
        "{text}"
    );
    agent.cancel().await.unwrap();
    knowledge.cancel().await.unwrap();
}
