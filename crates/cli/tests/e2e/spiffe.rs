//! Workload identity over mTLS: services present SPIFFE X.509-SVIDs (minted here with rcgen) to
//! the gateway's mTLS listener. A service may call only read-only tools its policies allow; a
//! trusted proxy may vouch for end users with X-Forwarded-User/-Groups; nobody else may send those
//! headers; and an SVID from a foreign trust domain's CA is refused at the handshake.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use serde_json::{Value, json};

use crate::harness::{Platform, spawn};

const REPORTER: &str = "spiffe://corp.test/ns/etl/sa/reporter";
const ENVOY: &str = "spiffe://corp.test/ns/mesh/sa/envoy";

/// A trust domain's CA.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// (certificate PEM, key PEM) signed by `ca`: an SVID for `spiffe_id`, or a server certificate for 127.0.0.1.
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, spiffe_id: Option<&str>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    match spiffe_id {
        Some(id) => {
            params.subject_alt_names = vec![SanType::URI(id.try_into().unwrap())];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        None => {
            params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
    }
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn client(ca_pem: &str, svid: &(String, String)) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .identity(reqwest::Identity::from_pem(format!("{}{}", svid.0, svid.1).as_bytes()).unwrap())
        .build()
        .unwrap()
}

async fn call(
    http: &reqwest::Client,
    url: &str,
    tool: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {"query": "spark"},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let mut request = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&body);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    // SSE or JSON: take the JSON-RPC message.
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .next_back();
    (
        status,
        json.unwrap_or_else(|| serde_json::from_str(&text).unwrap_or(Value::String(text))),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn services_call_read_only_tools_and_trusted_proxies_vouch_for_users() {
    let mut platform = Platform::start();
    platform.start_conformance_fixture();
    let dir = tempfile::tempdir().unwrap();
    let corp = ca("corp.test");
    let server = leaf(&corp, None);
    let data = platform.data_dir();
    let (gateway, ready) = spawn(
        dir.path(),
        "mtls-gateway",
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--mtls-listen",
            "127.0.0.1:0",
            "--registry-url",
            &platform.registry_url,
            "--dev-issuer",
            "--data-dir",
            data.to_str().unwrap(),
            // A replica of the platform's gateway: same assertion key (in the data dir), same issuer.
            "--issuer",
            &platform.gateway_url,
            "--mtls-cert",
            &write(dir.path(), "gateway.pem", &server.0),
            "--mtls-key",
            &write(dir.path(), "gateway.key", &server.1),
            "--trust-bundle",
            &write(dir.path(), "bundle.pem", &corp.pem()),
            "--mtls-reload-secs",
            "1",
            "--trusted-proxy",
            ENVOY,
            "--service-group",
            &format!("{REPORTER}=finance"),
        ],
    );
    let mtls = ready["mtls_url"].as_str().unwrap().to_owned();
    let knowledge = format!("{mtls}/servers/knowledge/mcp");
    let reporter = client(&corp.pem(), &leaf(&corp, Some(REPORTER)));

    // A service calls a read-only tool as itself...
    let (status, reply) = call(&reporter, &knowledge, "search_docs", &[]).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    // ...but not a tool that is not marked read-only.
    let (_, reply) = call(
        &reporter,
        &format!("{mtls}/servers/conformance/mcp"),
        "test_simple_text",
        &[],
    )
    .await;
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("denied by policy platform/services-read-only"),
        "{reply}"
    );
    // A service may not claim to be a person.
    let (status, _) = call(
        &reporter,
        &knowledge,
        "search_docs",
        &[("x-forwarded-user", "alice")],
    )
    .await;
    assert_eq!(status, 403);

    // The trusted proxy vouches for alice.
    let envoy = client(&corp.pem(), &leaf(&corp, Some(ENVOY)));
    let vouched = [("x-forwarded-user", "alice"), ("x-forwarded-groups", "eng")];
    let (status, reply) = call(&envoy, &knowledge, "search_docs", &vouched).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["isError"], false, "{reply}");

    // Identity headers on the plain listener are refused, token or not.
    let plain = reqwest::Client::new();
    let token = platform.token("mallory", &[]);
    let (status, _) = call(
        &plain,
        &platform.mcp_url,
        "search_docs",
        &[
            ("x-forwarded-user", "alice"),
            ("authorization", &format!("Bearer {token}")),
        ],
    )
    .await;
    assert_eq!(status, 403);

    // An SVID from another trust domain's CA never gets past the handshake.
    let foreign = ca("evil.test");
    let stranger = client(
        &corp.pem(),
        &leaf(&foreign, Some("spiffe://evil.test/ns/x/sa/y")),
    );
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    assert!(stranger.post(&knowledge).json(&body).send().await.is_err());

    // The trust domain rotates its CA: new bundle, new gateway certificate, written in place.
    let rotated = ca("corp.test");
    let server = leaf(&rotated, None);
    write(dir.path(), "bundle.pem", &rotated.pem());
    write(dir.path(), "gateway.key", &server.1);
    write(dir.path(), "gateway.pem", &server.0);
    let renewed = client(&rotated.pem(), &leaf(&rotated, Some(REPORTER)));
    let mut status = 0;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
        if let Ok(response) = renewed.post(&knowledge).json(&body).send().await {
            status = response.status().as_u16();
            break;
        }
    }
    assert_ne!(status, 0, "the rotated certificates were not picked up");
    let (status, reply) = call(&renewed, &knowledge, "search_docs", &[]).await;
    assert_eq!(status, 200, "{reply}");
    // An SVID from the retired CA no longer gets in.
    let retired = client(&rotated.pem(), &leaf(&corp, Some(REPORTER)));
    assert!(
        retired
            .post(&knowledge)
            .json(&json!({}))
            .send()
            .await
            .is_err()
    );

    let records = platform.audit("knowledge");
    let users: Vec<&str> = records
        .iter()
        .map(|r| r["user"].as_str().unwrap())
        .collect();
    assert!(
        users.contains(&REPORTER) && users.contains(&"alice"),
        "{records:#?}"
    );
    let reporter_record = records.iter().find(|r| r["user"] == REPORTER).unwrap();
    assert_eq!(reporter_record["surface"], "service");
    drop(gateway);
}

/// A stand-in for a SPIRE agent: the SPIFFE Workload API's `FetchX509SVID` over gRPC (HTTP/2 on a
/// Unix socket), streaming whatever SVID and bundle the test last set.
mod agent {
    use std::{convert::Infallible, path::Path};

    use bytes::Bytes;
    use futures::StreamExt;
    use http_body_util::StreamBody;
    use hyper::body::Frame;
    use hyper_util::{
        rt::{TokioExecutor, TokioIo},
        server::conn::auto::Builder,
    };
    use tokio::sync::watch;

    /// What the agent hands out: the workload's SVID (chain and PKCS#8 key) and its trust bundle.
    pub struct Material {
        pub spiffe_id: String,
        pub chain: Vec<u8>,
        pub key: Vec<u8>,
        pub bundle: Vec<u8>,
    }

    /// Starts the agent on `socket`; send new material to rotate it.
    pub fn start(socket: &Path, first: Material) -> watch::Sender<Vec<u8>> {
        let (tx, rx) = watch::channel(grpc_frame(&response(&first)));
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let rx = rx.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        let mut rx = rx.clone();
                        async move {
                            // Every message the agent sends on this stream: the current one, then each rotation.
                            let first = rx.borrow_and_update().clone();
                            let rest = futures::stream::unfold(rx, |mut rx| async move {
                                rx.changed().await.ok()?;
                                let next = rx.borrow_and_update().clone();
                                Some((next, rx))
                            });
                            let frames = futures::stream::once(async move { first })
                                .chain(rest)
                                .map(|bytes| Ok::<_, Infallible>(Frame::data(Bytes::from(bytes))));
                            let response = hyper::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(StreamBody::new(frames))
                                .unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        tx
    }

    pub fn encode(material: &Material) -> Vec<u8> {
        grpc_frame(&response(material))
    }

    /// `X509SVIDResponse { svids: [X509SVID { spiffe_id, x509_svid, x509_svid_key, bundle }] }`.
    fn response(m: &Material) -> Vec<u8> {
        let mut svid = Vec::new();
        field(1, m.spiffe_id.as_bytes(), &mut svid);
        field(2, &m.chain, &mut svid);
        field(3, &m.key, &mut svid);
        field(4, &m.bundle, &mut svid);
        let mut out = Vec::new();
        field(1, &svid, &mut out);
        out
    }

    /// A length-delimited protobuf field.
    fn field(number: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint((number << 3) | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn varint(mut value: u64, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    /// A gRPC message: not compressed, 4-byte big-endian length, the message.
    fn grpc_frame(message: &[u8]) -> Vec<u8> {
        let mut out = vec![0];
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
        out
    }
}

/// The gateway's SVID: a SPIFFE ID, and 127.0.0.1 so clients can check the server's name.
fn gateway_svid(ca: &CertifiedIssuer<'static, KeyPair>) -> agent::Material {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![
        SanType::URI(
            "spiffe://corp.test/ns/platform/sa/gateway"
                .try_into()
                .unwrap(),
        ),
        SanType::IpAddress("127.0.0.1".parse().unwrap()),
    ];
    // A SPIFFE X.509-SVID is a leaf that says so (basic constraints, not a CA) and signs.
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, ca).unwrap();
    agent::Material {
        spiffe_id: "spiffe://corp.test/ns/platform/sa/gateway".into(),
        chain: cert.der().to_vec(),
        key: key.serialize_der(),
        bundle: ca.der().to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_workload_api_supplies_and_rotates_the_gateway_identity() {
    let platform = Platform::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let corp = ca("corp.test");
    let agent = agent::start(&socket, gateway_svid(&corp));
    let data = platform.data_dir();
    let endpoint = format!("unix://{}", socket.display());
    let (gateway, ready) = spawn(
        dir.path(),
        "workload-gateway",
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--mtls-listen",
            "127.0.0.1:0",
            "--spiffe-workload-api",
            "--spiffe-endpoint-socket",
            &endpoint,
            "--registry-url",
            &platform.registry_url,
            "--dev-issuer",
            "--data-dir",
            data.to_str().unwrap(),
            "--issuer",
            &platform.gateway_url,
            "--service-group",
            &format!("{REPORTER}=finance"),
        ],
    );
    let knowledge = format!(
        "{}/servers/knowledge/mcp",
        ready["mtls_url"].as_str().unwrap()
    );
    let reporter = client(&corp.pem(), &leaf(&corp, Some(REPORTER)));
    let (status, reply) = call(&reporter, &knowledge, "search_docs", &[]).await;
    assert_eq!(status, 200, "{reply}");

    // The agent rotates to a new CA; the gateway follows without a restart.
    let rotated = ca("corp.test");
    agent.send(agent::encode(&gateway_svid(&rotated))).unwrap();
    let renewed = client(&rotated.pem(), &leaf(&rotated, Some(REPORTER)));
    let mut answered = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if renewed
            .post(&knowledge)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .is_ok()
        {
            answered = true;
            break;
        }
    }
    assert!(answered, "the rotated SVID was not picked up");
    let (status, reply) = call(&renewed, &knowledge, "search_docs", &[]).await;
    assert_eq!(status, 200, "{reply}");
    drop(gateway);
}
