//! A declarative server from its files to a tool call through the gateway: a team writes a
//! manifest and a tools file for an HTTP API (here a billing API the test serves on loopback),
//! `switchboard server http` serves and registers it, and an MCP client calls its tools as a
//! user, with the gateway's policies, the API's token and the caller passed on.

use std::sync::{Arc, Mutex};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::harness::{Platform, call, connect, tool_names};

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
[tools.list_invoices]
minutes_saved = 2.0
[tools.create_refund]
minutes_saved = 6.0
approval = "self"
[tools.invoice_status]
minutes_saved = 1.0
"##;

/// The billing API's OpenAPI document, of which one tool names an operation.
const OPENAPI: &str = r##"{
  "openapi": "3.0.3",
  "info": {"title": "Billing", "version": "1"},
  "paths": {
    "/invoices/{id}": {
      "get": {
        "operationId": "getInvoice",
        "summary": "The status of an invoice",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"},
                        "description": "The invoice id"}],
        "responses": {"200": {"description": "The invoice"}}
      }
    }
  }
}"##;

const TOOLS: &str = r##"
openapi = "billing-openapi.json"
[auth]
bearer_env = "BILLING_API_TOKEN"

[tools.get_invoice]
description = "One invoice by its id: amount, currency and status"
path = "/invoices/{id}"
[tools.get_invoice.arguments.id]
description = "The invoice id, e.g. inv-42"
in = "path"
required = true
[tools.get_invoice.response]
select = "/data"
fields = ["id", "amount", "currency", "status"]

[tools.list_invoices]
description = "Invoices of a customer, newest first"
path = "/invoices"
[tools.list_invoices.arguments.customer]
required = true
[tools.list_invoices.arguments.status]
enum = ["open", "paid"]
[tools.list_invoices.response]
select = "/data"
fields = ["id", "amount"]
max_items = 2

[tools.create_refund]
description = "Refund part or all of an invoice"
method = "POST"
path = "/invoices/{id}/refunds"
[tools.create_refund.arguments.id]
in = "path"
required = true
[tools.create_refund.arguments.amount]
type = "number"
required = true

[tools.invoice_status]
operation = "getInvoice"
[tools.invoice_status.response]
select = "/data/status"
"##;

#[derive(Default)]
struct Billing {
    /// (who the gateway said called, the API token, what was asked) per request.
    seen: Mutex<Vec<(String, String, String)>>,
}

fn note(billing: &Billing, headers: &HeaderMap, what: String) {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    billing
        .seen
        .lock()
        .unwrap()
        .push((header("x-forwarded-user"), header("authorization"), what));
}

async fn start_billing() -> (String, Arc<Billing>) {
    let billing = Arc::new(Billing::default());
    let app = Router::new()
        .route(
            "/invoices/{id}",
            get(
                |State(b): State<Arc<Billing>>, Path(id): Path<String>, headers: HeaderMap| async move {
                    note(&b, &headers, format!("get {id}"));
                    if id != "inv-42" {
                        return (StatusCode::NOT_FOUND, Json(json!({"error": "no such invoice"})))
                            .into_response();
                    }
                    Json(json!({"data": {"id": "inv-42", "amount": 120.5, "currency": "EUR",
                        "status": "open", "internal_notes": "do not show"}}))
                    .into_response()
                },
            ),
        )
        .route(
            "/invoices",
            get(
                |State(b): State<Arc<Billing>>,
                 axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
                 headers: HeaderMap| async move {
                    note(&b, &headers, format!("list {q:?}"));
                    Json(json!({"data": [
                        {"id": "inv-44", "amount": 10, "customer": "acme"},
                        {"id": "inv-43", "amount": 20, "customer": "acme"},
                        {"id": "inv-42", "amount": 120.5, "customer": "acme"}
                    ]}))
                },
            ),
        )
        .route(
            "/invoices/{id}/refunds",
            post(
                |State(b): State<Arc<Billing>>,
                 Path(id): Path<String>,
                 headers: HeaderMap,
                 Json(body): Json<Value>| async move {
                    note(&b, &headers, format!("refund {id} {body}"));
                    (StatusCode::CREATED, Json(json!({"refund": "ref-1", "invoice": id})))
                },
            ),
        )
        .with_state(billing.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, billing)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declarative_server_goes_from_its_files_to_a_tool_call_through_the_gateway() {
    let (api, billing) = start_billing().await;
    let mut platform = Platform::start_with(&["--approval-wait-secs", "0"]);
    let manifest = platform.dir.path().join("billing.toml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let tools = platform.dir.path().join("billing-tools.toml");
    std::fs::write(&tools, TOOLS).unwrap();
    std::fs::write(platform.dir.path().join("billing-openapi.json"), OPENAPI).unwrap();
    platform.start_server_with_env(
        &[
            "http",
            "--tools",
            tools.to_str().unwrap(),
            "--base-url",
            &api,
            "--manifest",
            manifest.to_str().unwrap(),
        ],
        &[("BILLING_API_TOKEN", "billing-secret")],
    );
    let url = format!("{}/servers/billing/mcp", platform.gateway_url);

    let fiona = connect(&url, &platform.token("fiona", &["finance"]), true).await;
    assert_eq!(
        tool_names(&fiona).await,
        [
            "create_refund",
            "get_invoice",
            "invoice_status",
            "list_invoices",
            "switchboard_proposal"
        ]
    );
    // A tool from an OpenAPI operation: its description and path parameter come from there.
    let listed = fiona.list_all_tools().await.unwrap();
    let status_tool = listed.iter().find(|t| t.name == "invoice_status").unwrap();
    assert_eq!(
        status_tool.description.as_deref(),
        Some("The status of an invoice")
    );
    assert_eq!(status_tool.input_schema["required"], json!(["id"]));
    let status = call(&fiona, "invoice_status", json!({"id": "inv-42"}))
        .await
        .unwrap();
    assert_eq!(status.content[0].as_text().unwrap().text, "\"open\"");
    let invoice = call(&fiona, "get_invoice", json!({"id": "inv-42"}))
        .await
        .unwrap();
    assert_eq!(invoice.is_error, Some(false));
    let text = invoice.content[0].as_text().unwrap().text.clone();
    let shown: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        shown,
        json!({"id": "inv-42", "amount": 120.5, "currency": "EUR", "status": "open"})
    );
    // The API got the caller from the gateway's assertion and its own token.
    assert_eq!(
        billing.seen.lock().unwrap()[1],
        (
            "fiona".to_owned(),
            "Bearer billing-secret".to_owned(),
            "get inv-42".to_owned()
        )
    );

    let listed = call(
        &fiona,
        "list_invoices",
        json!({"customer": "acme", "status": "open"}),
    )
    .await
    .unwrap();
    let text = &listed.content[0].as_text().unwrap().text;
    assert!(
        text.contains("inv-44") && text.contains("inv-43") && !text.contains("inv-42"),
        "{text}"
    );
    assert!(text.ends_with("(showing 2 of 3 items)"), "{text}");

    // The API's refusal and bad arguments are clear tool errors.
    let missing = call(&fiona, "get_invoice", json!({"id": "inv-1"}))
        .await
        .unwrap();
    assert_eq!(missing.is_error, Some(true));
    assert!(
        missing.content[0]
            .as_text()
            .unwrap()
            .text
            .starts_with("the API answered 404 Not Found"),
        "{missing:?}"
    );
    let wrong = call(&fiona, "list_invoices", json!({"customer": 7}))
        .await
        .unwrap();
    assert_eq!(wrong.is_error, Some(true));
    assert_eq!(
        wrong.content[0].as_text().unwrap().text,
        "the argument \"customer\" must be of type string"
    );

    // Policies hold as for any server: outside finance, nothing is listed or callable.
    let outsider = connect(&url, &platform.token("otto", &["employees"]), true).await;
    assert!(
        call(&outsider, "get_invoice", json!({"id": "inv-42"}))
            .await
            .is_err()
    );

    // A refund needs the caller's own approval first; nothing reaches the API before it.
    let refund = call(
        &fiona,
        "create_refund",
        json!({"id": "inv-42", "amount": 20.0}),
    )
    .await
    .unwrap();
    let text = &refund.content[0].as_text().unwrap().text;
    assert!(text.contains("needs approval by self"), "{text}");
    assert!(
        !billing
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|(_, _, what)| what.starts_with("refund")),
    );

    // Approved, it runs once, as fiona, with its arguments in the API's JSON body.
    let proposal = refund.meta.as_ref().unwrap().0["dev.switchboard/proposal"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out) = platform.cli(&[
        "approvals",
        "approve",
        "--server",
        "billing",
        "--comment",
        "ok",
        "--token",
        &platform.token("fiona", &["finance"]),
    ]);
    assert_eq!(code, 0, "{out}");
    let done = call(&fiona, "switchboard_proposal", json!({"id": proposal}))
        .await
        .unwrap();
    let text = &done.content[0].as_text().unwrap().text;
    assert!(text.contains("ref-1"), "{text}");
    let refunds: Vec<(String, String, String)> = billing
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, _, what)| what.starts_with("refund"))
        .cloned()
        .collect();
    assert_eq!(
        refunds,
        [(
            "fiona".to_owned(),
            "Bearer billing-secret".to_owned(),
            r#"refund inv-42 {"amount":20.0}"#.to_owned()
        )]
    );

    // Every call is audited with the owner's minutes-saved estimate.
    let audit = platform.audit("billing");
    assert!(
        audit.iter().any(|r| r["tool"] == "get_invoice"
            && r["outcome"] == "ok"
            && r["minutes_saved"] == 4.0),
        "{audit:?}"
    );
}
