//! Serving a governed server over streamable HTTP (both protocol eras, via rmcp), behind an
//! identity middleware that turns the gateway's signed assertion into a [`Caller`], plus `/metrics`,
//! `/healthz` and `/readyz`.

use std::{future::Future, pin::Pin, sync::Arc};

use axum::{
    Json, Router,
    extract::{Request, State},
    http::{HeaderMap, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use identity::{ASSERTION_HEADER, FORWARDED_GROUPS_HEADER, FORWARDED_USER_HEADER, Verifier};
use rmcp::{
    ServerHandler,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};

use crate::{Caller, Governance};

/// How the server establishes who is calling.
#[derive(Clone)]
pub enum IdentityMode {
    /// Every call must carry the gateway's assertion (audience = this server's name).
    Gateway(Arc<Verifier>),
    /// Calls without identity run as `anonymous`; an assertion, when present, is verified with the
    /// given verifier. Identity headers without a valid assertion are refused in every mode.
    Open(Option<Arc<Verifier>>),
}

pub struct HttpOptions {
    pub identity: IdentityMode,
    /// Host names the MCP endpoint answers to (DNS-rebinding protection); empty keeps rmcp's
    /// loopback-only default.
    pub allowed_hosts: Vec<String>,
    /// Whether the server can serve now (its backend is configured and answers); `/readyz`
    /// answers 503 with the reason while it cannot, and the gateway's live probes report it.
    /// `None`: ready whenever it runs.
    pub ready: Option<ReadyCheck>,
}

/// A readiness check: `Err(reason)` while the server cannot serve (for example "no Airflow is
/// connected: start it with --airflow-url").
pub type ReadyCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// The axum router of a governed server: `/mcp`, `/metrics`, `/healthz`, `/readyz` (beside
/// `/mcp`, where the gateway's live probes read it).
pub fn http_router<S, F>(factory: F, governance: Governance, options: HttpOptions) -> Router
where
    S: ServerHandler + Send + 'static,
    F: Fn() -> S + Send + Sync + 'static,
{
    // A 2026-07-28 answer that is the handler's only message goes out as one JSON body: one
    // write with its length, where an event stream takes a chunk, its framing and a closing
    // chunk, and every reader (the gateway, the client) parses the framing again. A handler that
    // sends anything first (progress, a log message, an elicitation) is answered as an event
    // stream from that message on, so nothing is held back or lost. 2025-11-25 sessions keep
    // their event streams.
    let mut config = StreamableHttpServerConfig::default().with_json_response(true);
    if !options.allowed_hosts.is_empty() {
        config = config.with_allowed_hosts(options.allowed_hosts);
    }
    let mcp = StreamableHttpService::new(
        move || Ok(factory()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let identify = Arc::new(options.identity);
    let telemetry = governance.telemetry().clone();
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(identify, identify_caller))
        .route("/metrics", get(move || async move { telemetry.encode() }))
        .merge(match options.ready {
            Some(check) => service_kit::readiness_routes(move || check()),
            None => service_kit::health_routes(),
        })
}

async fn identify_caller(
    State(mode): State<Arc<IdentityMode>>,
    mut request: Request,
    next: Next,
) -> Response {
    match establish(&mode, request.headers()).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(reason) => {
            tracing::warn!(%reason, "refused an MCP request without a verifiable identity");
            let body = serde_json::json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": { "code": -32001, "message": format!("unauthenticated: {reason}") }
            });
            (StatusCode::UNAUTHORIZED, Json(body)).into_response()
        }
    }
}

/// Decides who is calling from the request headers.
async fn establish(mode: &IdentityMode, headers: &HeaderMap) -> Result<Caller, String> {
    let header = |name: &str| -> Result<Option<&str>, String> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| format!("header {name} is not valid ASCII"))
            })
            .transpose()
    };
    let user = header(FORWARDED_USER_HEADER)?;
    let groups = header(FORWARDED_GROUPS_HEADER)?;
    let Some(assertion) = header(ASSERTION_HEADER)? else {
        if user.is_some() || groups.is_some() {
            return Err(
                "X-Forwarded-User/X-Forwarded-Groups were sent without a gateway assertion; identity headers are accepted only from the Switchboard gateway".into(),
            );
        }
        return match mode {
            IdentityMode::Open(_) => Ok(Caller::anonymous()),
            IdentityMode::Gateway(_) => {
                Err("this server accepts calls only through the Switchboard gateway (no identity assertion)".into())
            }
        };
    };
    let verifier = match mode {
        IdentityMode::Gateway(v) | IdentityMode::Open(Some(v)) => v,
        IdentityMode::Open(None) => {
            return Err("an identity assertion was sent but this server trusts no gateway".into());
        }
    };
    let claims = verifier
        .verify(assertion)
        .await
        .map_err(|e| format!("the gateway assertion is invalid: {e}"))?;
    if let Some(user) = user
        && user != claims.sub
    {
        return Err("X-Forwarded-User does not match the gateway's assertion".into());
    }
    if let Some(groups) = groups {
        let mut sent = catalog::parse_groups(groups);
        let mut asserted = claims.groups.clone();
        sent.sort();
        asserted.sort();
        if sent != asserted {
            return Err("X-Forwarded-Groups does not match the gateway's assertion".into());
        }
    }
    Ok(Caller {
        user: claims.sub,
        groups: claims.groups,
        surface: claims.surface,
        channel: claims.channel,
        confirmation: claims.confirmation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity::{Claims, KeySource, SigningKey, TrustedIssuer, jwks_document};

    fn setup() -> (SigningKey, IdentityMode) {
        let key = SigningKey::generate().unwrap();
        let verifier = Verifier::new(
            "knowledge",
            vec![TrustedIssuer::new(
                "gw",
                KeySource::Static(jwks_document(&[&key])),
            )],
        )
        .unwrap();
        (key, IdentityMode::Gateway(verifier))
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[tokio::test]
    async fn trusts_headers_only_with_a_matching_assertion() {
        let (key, mode) = setup();
        let good = key
            .sign(&Claims::new(
                "gw",
                "bob",
                "knowledge",
                vec!["finance".into(), "eng".into()],
                60,
            ))
            .unwrap();
        let caller = establish(
            &mode,
            &headers(&[
                ("x-forwarded-user", "bob"),
                ("x-forwarded-groups", "eng, finance"),
                (ASSERTION_HEADER, &good),
            ]),
        )
        .await
        .unwrap();
        assert_eq!(caller.user, "bob");

        let forged = establish(&mode, &headers(&[("x-forwarded-user", "admin")]))
            .await
            .unwrap_err();
        assert!(forged.contains("without a gateway assertion"), "{forged}");
        let mismatch = establish(
            &mode,
            &headers(&[("x-forwarded-user", "admin"), (ASSERTION_HEADER, &good)]),
        )
        .await
        .unwrap_err();
        assert!(mismatch.contains("does not match"), "{mismatch}");
        let groups = establish(
            &mode,
            &headers(&[("x-forwarded-groups", "admins"), (ASSERTION_HEADER, &good)]),
        )
        .await
        .unwrap_err();
        assert!(groups.contains("Groups does not match"), "{groups}");

        let other_server = key
            .sign(&Claims::new("gw", "bob", "presto", vec![], 60))
            .unwrap();
        let wrong = establish(&mode, &headers(&[(ASSERTION_HEADER, &other_server)]))
            .await
            .unwrap_err();
        assert!(wrong.contains("audience"), "{wrong}");
        let none = establish(&mode, &headers(&[])).await.unwrap_err();
        assert!(
            none.contains("only through the Switchboard gateway"),
            "{none}"
        );
        assert_eq!(
            establish(&IdentityMode::Open(None), &headers(&[]))
                .await
                .unwrap(),
            Caller::anonymous()
        );
    }
}
