//! How every Switchboard component boots: structured logging, binding listeners before anything is
//! served (so tests can pass `127.0.0.1:0` and read the real address back), ready files, and serving
//! an axum router until a shutdown signal.

use std::{net::SocketAddr, path::Path};

use anyhow::Context;
pub use connections::serve;
use tokio::net::TcpListener;
/// The shutdown signal every component takes: cancel once, every clone sees it.
pub use tokio_util::sync::CancellationToken as Shutdown;

pub mod connections;
pub mod metrics;
pub mod trace;

/// What is logged unless `SWITCHBOARD_LOG` says otherwise: Switchboard's own events from `info`
/// up, and rmcp's from `warn` up. rmcp logs a stateless request's service starting, its input
/// ending and its serving finishing at `info`: three lines for every 2026-07-28 call a server
/// answers, each formatted and written to stderr on the call's path.
pub const DEFAULT_LOG_FILTER: &str = "info,rmcp=warn";

/// Installs the global tracing subscriber. `SWITCHBOARD_LOG` (or `RUST_LOG`) sets the filter;
/// `SWITCHBOARD_LOG_FORMAT=json` switches to one JSON object per line. With
/// `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans are also exported over OTLP/HTTP ([`trace`]); call
/// [`trace::flush`] before exiting.
pub fn init_tracing() {
    use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, util::SubscriberInitExt};
    let filter = std::env::var("SWITCHBOARD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| DEFAULT_LOG_FILTER.to_owned());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let json = std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|v| v == "json");
    let plain = (!json).then(|| fmt::layer().with_writer(std::io::stderr).with_target(true));
    let structured = json.then(|| {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .with_target(true)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(plain)
        .with(structured)
        .with(trace::layer("switchboard"))
        .try_init();
}

pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))
}

/// Writes `value` as JSON to `path` atomically (write to a temporary file, then rename), so a reader
/// polling for the file never sees it half-written.
pub fn write_ready_file(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    Ok(())
}

/// Runs `task` every `every` (the first run after one period; a slow run delays the next rather
/// than bunching them) until `shutdown`. For background refreshes and re-sends.
pub fn spawn_every<F, Fut>(every: std::time::Duration, shutdown: Shutdown, mut task: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => task().await,
            }
        }
    });
}

/// A shutdown token that fires on Ctrl-C or SIGTERM.
pub fn shutdown_on_signal() -> Shutdown {
    let token = Shutdown::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let ctrl_c = async {
            // If the handler cannot be installed, wait on SIGTERM alone rather than stop at once.
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! { _ = ctrl_c => {}, _ = term => {} }
        tracing::info!("shutting down");
        trigger.cancel();
    });
    token
}

/// `/healthz` (the process is up) and `/readyz` (it can serve), for a component that is ready as
/// soon as it listens.
pub fn health_routes() -> axum::Router {
    readiness_routes(|| async { Ok(()) })
}

/// `/healthz` and a `/readyz` that answers 503 with the reason while `check` fails.
pub fn readiness_routes<F, Fut>(check: F) -> axum::Router
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    use axum::{http::StatusCode, routing::get};
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let check = check.clone();
                async move {
                    match check().await {
                        Ok(()) => (StatusCode::OK, "ready".to_owned()),
                        Err(reason) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {reason}"),
                        ),
                    }
                }
            }),
        )
}
