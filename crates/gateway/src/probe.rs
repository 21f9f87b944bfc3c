//! Live status: the gateway probes each server in the catalog on a schedule, as it would carry a
//! call (`server/discover`, falling back to `initialize`, then `tools/list`, with a signed
//! assertion for the `switchboard-probe` identity), and reports latency and the last error to
//! the registry. Tools it finds changed are reported for review like those seen in traffic. It
//! then reads the server's readiness (`/readyz` beside its MCP endpoint, as the server SDK serves
//! it): a server that answers MCP but cannot serve (its backend is not connected) is reported
//! with the reason it gives.
//! **Invariant:** a probe goes only to endpoints whose host is on the operator's allow-list and
//! never follows redirects, so a registration cannot point the prober at arbitrary hosts.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use registry_api::LiveStatus;
use service_kit::Shutdown;

use crate::{Gateway, catalog_cache::Server};

/// The identity probes present to servers.
pub const PROBE_USER: &str = "switchboard-probe";

/// How long one probe may take before it counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the prober does: how often, and which endpoint hosts it may contact.
#[derive(Debug, Clone, Default)]
pub struct ProbeConfig {
    /// Time between rounds; `None` turns probing off.
    pub every: Option<Duration>,
    /// Hosts probes may reach: an exact name or address (`10.0.0.5`, `presto.internal`), or
    /// `*.suffix` for every name under a domain. Empty: nothing is probed.
    pub allowed_hosts: Vec<String>,
}

/// Why `endpoint` may not be probed, if it may not.
pub(crate) fn refusal(endpoint: &str, allowed: &[String]) -> Option<String> {
    let url = match reqwest::Url::parse(endpoint) {
        Ok(url) => url,
        Err(e) => return Some(format!("the endpoint is not a URL: {e}")),
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Some(format!(
            "the endpoint's scheme {} is not http(s)",
            url.scheme()
        ));
    }
    let Some(host) = url.host_str() else {
        return Some("the endpoint names no host".into());
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let permitted = allowed.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
            None => host == pattern,
        }
    });
    (!permitted).then(|| format!("host {host} is not on the probe allow-list"))
}

/// Probes every server once per round until `shutdown`.
pub(crate) fn spawn(gateway: Arc<Gateway>, config: ProbeConfig, shutdown: Shutdown) {
    let Some(every) = config.every else {
        return;
    };
    let allowed = Arc::new(config.allowed_hosts);
    service_kit::spawn_every(every, shutdown, move || {
        let (gateway, allowed) = (gateway.clone(), allowed.clone());
        async move { probe_all(gateway, allowed).await }
    });
}

/// One round: every server, a bounded number at a time.
async fn probe_all(gateway: Arc<Gateway>, allowed: Arc<Vec<String>>) {
    let mut round = tokio::task::JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    for server in gateway.catalog.servers() {
        let (gateway, allowed, limit) = (gateway.clone(), allowed.clone(), limit.clone());
        round.spawn(async move {
            let Ok(_permit) = limit.acquire_owned().await else {
                return;
            };
            let status = probe(&gateway, &server, &allowed).await;
            if let Err(e) = gateway.registry.report_status(&status).await {
                tracing::warn!(server = %server.name, error = %e, "could not report a probe result");
            }
        });
    }
    while round.join_next().await.is_some() {}
}

/// One probe of `server`.
pub(crate) async fn probe(gateway: &Gateway, server: &Server, allowed: &[String]) -> LiveStatus {
    let started = Instant::now();
    let mut status = LiveStatus {
        server: server.name.clone(),
        ok: false,
        latency_ms: 0,
        error: None,
        checked_at_ms: crate::proxy::now_ms(),
        last_ok_at_ms: None,
        tools: 0,
        protocol_version: None,
        not_ready: None,
    };
    if let Some(why) = refusal(&server.endpoint, allowed) {
        status.error = Some(format!("not probed: {why}"));
        return status;
    }
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, run(gateway, server)).await;
    status.latency_ms = started.elapsed().as_millis().min(u128::from(u64::MAX)) as u64;
    match outcome {
        Ok(Ok((tools, version))) => {
            status.ok = true;
            status.tools = tools;
            status.protocol_version = Some(version);
            status.not_ready = not_ready(&server.endpoint).await;
        }
        Ok(Err(e)) => status.error = Some(e),
        Err(_) => status.error = Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
    }
    if !status.ok {
        tracing::info!(server = %server.name, error = ?status.error, "probe failed");
    }
    status
}

/// Where a server with MCP at `endpoint` answers readiness: beside it (`…/mcp` → `…/readyz`).
fn readiness_url(endpoint: &str) -> Option<reqwest::Url> {
    let mut url = reqwest::Url::parse(endpoint).ok()?;
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .pop()
        .push("readyz");
    Some(url)
}

/// Why the server at `endpoint` says it cannot serve, if it says so (`/readyz` answering 503).
/// A server without a readiness endpoint, or one that cannot be read, counts as ready: the MCP
/// probe already tells whether it answers.
async fn not_ready(endpoint: &str) -> Option<String> {
    static HTTP: std::sync::OnceLock<Option<reqwest::Client>> = std::sync::OnceLock::new();
    let http = HTTP
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(5))
                .build()
                .ok()
        })
        .as_ref()?;
    let response = http.get(readiness_url(endpoint)?).send().await.ok()?;
    if response.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let body = response.text().await.unwrap_or_default();
    let reason = body.trim().trim_start_matches("not ready:").trim();
    Some(if reason.is_empty() {
        "the server says it is not ready".to_owned()
    } else {
        reason.chars().take(500).collect()
    })
}

/// Connects as the probe identity, lists the tools, and reports changed definitions. Returns
/// how many tools there are and the protocol version spoken.
async fn run(gateway: &Gateway, server: &Server) -> Result<(u32, String), String> {
    let client = crate::upstream::connect(
        gateway,
        server,
        &crate::upstream::ActingAs {
            user: PROBE_USER,
            groups: &[],
            surface: "probe",
            channel: None,
            confirmation: None,
        },
    )
    .await?;
    let version = client
        .peer_info()
        .map(|info| info.protocol_version.to_string())
        .unwrap_or_default();
    let listed = client.list_all_tools().await;
    let _ = client.cancel().await;
    let tools = listed.map_err(|e| format!("tools/list: {e}"))?;
    let mut changed = Vec::new();
    for tool in &tools {
        let Ok(value) = serde_json::to_value(tool) else {
            continue;
        };
        if gateway.pins.check_listed(server, &value).is_err()
            && let Some(definition) = gateway.pins.to_report(&server.name, &value)
        {
            changed.push(definition);
        }
    }
    if !changed.is_empty() {
        crate::proxy::report_observed(gateway.registry.clone(), &server.name, changed);
    }
    Ok((tools.len().min(u32::MAX as usize) as u32, version))
}

#[cfg(test)]
mod tests {
    use super::{readiness_url, refusal};

    #[test]
    fn readiness_is_read_beside_the_mcp_endpoint() {
        let url = |e: &str| readiness_url(e).map(|u| u.to_string());
        assert_eq!(
            url("http://127.0.0.1:7705/mcp").as_deref(),
            Some("http://127.0.0.1:7705/readyz")
        );
        assert_eq!(
            url("https://x.internal/servers/airflow/mcp/?a=1").as_deref(),
            Some("https://x.internal/servers/airflow/readyz")
        );
        assert_eq!(url("not a url"), None);
    }

    #[test]
    fn only_allow_listed_hosts_are_probed() {
        let allowed = ["127.0.0.1".to_owned(), "*.mcp.internal".to_owned()];
        assert_eq!(refusal("http://127.0.0.1:8080/mcp", &allowed), None);
        assert_eq!(refusal("https://presto.mcp.internal/mcp", &allowed), None);
        assert_eq!(refusal("https://PRESTO.MCP.INTERNAL/mcp", &allowed), None);
        for refused in [
            "http://169.254.169.254/latest/meta-data",
            "https://mcp.internal/mcp",
            "https://evilmcp.internal/mcp",
            "https://mcp.internal.evil.com/mcp",
            "http://127.0.0.1.nip.io/mcp",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(
                refusal(refused, &allowed).is_some(),
                "{refused} was allowed"
            );
        }
        assert!(refusal("http://127.0.0.1/mcp", &[]).is_some());
        assert_eq!(refusal("http://[::1]:9/mcp", &["::1".to_owned()]), None);
    }
}
