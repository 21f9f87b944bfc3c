//! End-user tokens from a real OpenID Connect provider (npm `oidc-provider`, started on loopback):
//! discovery, JWKS, RS256/ES256/EdDSA, groups read from a nested claim, and the JWT attack suite.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::harness::{
    FINANCE_DOCS, Platform, available, call, connect, node_tools_dir, tool_names,
};

const CLIENTS: &str = r#"[
    {"id": "alice", "secret": "alice-secret", "groups": ["finance"], "alg": "RS256"},
    {"id": "bob", "secret": "bob-secret", "groups": ["eng"], "alg": "ES256"},
    {"id": "carol", "secret": "carol-secret", "groups": ["finance", "finance-leads"], "alg": "EdDSA"}
]"#;

/// The provider process, killed on drop.
pub struct Provider {
    child: Child,
    pub issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_provider() -> Option<Provider> {
    start_provider_with(CLIENTS, None)
}

/// The provider with these client_credentials clients and, optionally, a browser sign-in client
/// (`{"id": ..., "users": {"name": ["group", ...]}}`).
pub fn start_provider_with(clients: &str, login: Option<&str>) -> Option<Provider> {
    let Some(tools) = node_tools_dir() else {
        available("node 22 and the oidc-provider package", false);
        return None;
    };
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/node/oidc-provider.mjs"
    );
    let mut command = Command::new(tools.join("node_modules/.bin/node"));
    command
        .arg(script)
        .env("SWITCHBOARD_NODE_TOOLS", &tools)
        .env("OIDC_CLIENTS", clients);
    if let Some(login) = login {
        command.env("OIDC_LOGIN_CLIENT", login);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // Keep draining: the provider logs its interactions to stdout, and a closed pipe kills it.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let ready: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("provider said {line:?}: {e}"));
    Some(Provider {
        child,
        issuer: ready["issuer"].as_str().unwrap().to_owned(),
    })
}

/// A client_credentials access token for `client` (a JWT for `urn:switchboard`).
async fn token(provider: &Provider, client: &str) -> String {
    token_for(provider, client, "urn:switchboard").await
}

/// A client_credentials access token for `client`, issued for `resource` (RFC 8707).
async fn token_for(provider: &Provider, client: &str, resource: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(client, Some(format!("{client}-secret")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&scope=mcp:tools&resource={resource}"
        ))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {body}"))
        .to_owned()
}

fn platform_trusting(provider: &Provider) -> Platform {
    Platform::start_with(&[
        "--trust-issuer",
        &provider.issuer,
        "--groups-claim",
        "realm_access.roles",
        "--audience",
        "urn:switchboard",
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_tokens_reach_tools_with_groups_from_a_nested_claim() {
    let Some(provider) = start_provider() else {
        return;
    };
    let mut platform = platform_trusting(&provider);
    platform.start_knowledge(FINANCE_DOCS);
    let url = format!("{}/servers/finance-docs/mcp", platform.gateway_url);
    // RS256, ES256 and EdDSA keys, all found through discovery.
    let expected: [(&str, &[&str]); 3] = [
        ("alice", &["search_docs"]),
        ("bob", &[]),
        ("carol", &["get_doc", "search_docs"]),
    ];
    for (client, tools) in expected {
        let session = connect(&url, &token(&provider, client).await, true).await;
        assert_eq!(tool_names(&session).await, tools, "{client}");
        session.cancel().await.unwrap();
    }
    let session = connect(&url, &token(&provider, "alice").await, false).await;
    let denied = call(
        &session,
        "get_doc",
        json!({"path": "guides/presto-access.md"}),
    )
    .await
    .unwrap_err();
    assert!(
        denied
            .message
            .contains("denied by policy finance-docs/finance-leads"),
        "{}",
        denied.message
    );
    session.cancel().await.unwrap();
    let records = platform.audit("finance-docs");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["user"], "alice");
    assert_eq!(records[0]["groups"], json!(["finance"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jwt_attack_suite_is_refused_with_401_and_never_logged() {
    let Some(provider) = start_provider() else {
        return;
    };
    let platform = platform_trusting(&provider);
    let dev =
        identity::SigningKey::load_or_create(&platform.data_dir().join("keys/dev-issuer.json"))
            .unwrap();
    let claims = |edit: &dyn Fn(&mut identity::Claims)| {
        let mut c = identity::Claims::new(
            "urn:switchboard:dev-issuer",
            "mallory",
            "switchboard",
            vec!["finance".into()],
            300,
        );
        edit(&mut c);
        dev.sign(&c).unwrap()
    };
    let real = token(&provider, "alice").await;
    let parts: Vec<&str> = real.split('.').collect();
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();

    // HS256 "signed" with the provider's RSA public key, naming the RSA key: the key-confusion attack.
    let jwks: Value = reqwest::get(format!("{}/jwks", provider.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap()
        .clone();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = rsa["kid"].as_str().map(str::to_owned);
    let confused = jsonwebtoken::encode(
        &header,
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(rsa.to_string().as_bytes()),
    )
    .unwrap();

    let mut tampered_payload = payload.clone();
    tampered_payload["realm_access"]["roles"] =
        json!(["finance", "finance-leads", "platform-admins"]);
    let attacks = [
        (
            "expired",
            claims(&|c| c.exp = identity::now_seconds() - 3600),
        ),
        (
            "not yet valid",
            claims(&|c| c.nbf = Some(identity::now_seconds() + 3600)),
        ),
        ("wrong issuer", claims(&|c| c.iss = provider.issuer.clone())),
        (
            "wrong audience",
            claims(&|c| c.aud = "another-service".into()),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(json!({"alg": "none", "typ": "JWT"})),
                parts[1]
            ),
        ),
        ("HS256 with the RSA public key", confused),
        (
            "unknown kid",
            identity::SigningKey::generate()
                .unwrap()
                .sign(&payload)
                .unwrap(),
        ),
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], b64(tampered_payload), parts[2]),
        ),
        (
            "oversized",
            format!("{}.{}.{}", parts[0], "a".repeat(20_000), parts[2]),
        ),
    ];
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    for (name, token) in &attacks {
        let response = http
            .post(&platform.mcp_url)
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{name} was not refused");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer "), "{name}: {challenge}");
    }
    // The genuine token still works, so the refusals above were about the attacks.
    let session = connect(&platform.mcp_url, &real, true).await;
    assert_eq!(tool_names(&session).await, ["get_doc", "search_docs"]);
    session.cancel().await.unwrap();

    let log = std::fs::read_to_string(platform.dir.path().join("up.log")).unwrap();
    assert_eq!(
        log.matches("rejected a caller").count(),
        attacks.len(),
        "{log}"
    );
    for (name, token) in &attacks {
        let tail = &token[token.len().saturating_sub(24)..];
        assert!(
            tail.is_empty() || !log.contains(tail),
            "the {name} token leaked into the log"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_find_the_authorization_server_and_the_scopes_they_need() {
    let Some(provider) = start_provider() else {
        return;
    };
    let platform = Platform::start_with(&[
        "--trust-issuer",
        &provider.issuer,
        "--groups-claim",
        "realm_access.roles",
        "--audience",
        "urn:switchboard",
        "--required-scope",
        "mcp:tools",
    ]);
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let post = |token: Option<String>| {
        let mut request = http
            .post(&platform.mcp_url)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    // 401 points at the route's protected-resource metadata (RFC 9728).
    let response = post(None).await.unwrap();
    assert_eq!(response.status(), 401);
    let metadata_url = format!(
        "{}/.well-known/oauth-protected-resource/servers/knowledge/mcp",
        platform.gateway_url
    );
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
        "{challenge}"
    );
    assert!(
        !challenge.contains("error="),
        "no error code without credentials: {challenge}"
    );
    let metadata: Value = http
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], platform.mcp_url);
    assert_eq!(metadata["authorization_servers"], json!([provider.issuer]));
    assert_eq!(metadata["scopes_supported"], json!(["mcp:tools"]));
    let root: Value = http
        .get(format!(
            "{}/.well-known/oauth-protected-resource",
            platform.gateway_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(root["resource"], platform.gateway_url);

    // A valid token without the scope: 403 insufficient_scope, naming the scope to ask for.
    let response = post(Some(platform.token("dora", &["eng"]))).await.unwrap();
    assert_eq!(response.status(), 403);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"mcp:tools\""),
        "{challenge}"
    );

    // The provider's tokens carry the scope; one issued for the route itself (RFC 8707) works too.
    for token in [
        token(&provider, "bob").await,
        token_for(&provider, "bob", &platform.mcp_url).await,
    ] {
        let session = connect(&platform.mcp_url, &token, true).await;
        assert_eq!(tool_names(&session).await, ["get_doc", "search_docs"]);
        session.cancel().await.unwrap();
    }
    // A token for another route is not valid here.
    let elsewhere = token_for(
        &provider,
        "bob",
        &format!("{}/servers/other/mcp", platform.gateway_url),
    )
    .await;
    assert_eq!(post(Some(elsewhere)).await.unwrap().status(), 401);
}
