//! The gateway's mTLS listener for workloads (SPIFFE X.509-SVIDs). A peer must present a
//! certificate that chains to the trust bundle and carries exactly one `spiffe://` URI SAN; its
//! SPIFFE ID is attached to every request on the connection as a [`PeerIdentity`]. What that
//! identity may do (call as a service, or vouch for end users as a trusted proxy) is decided by
//! the MCP route.

use std::{path::Path, sync::Arc};

use anyhow::Context;
use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use service_kit::Shutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The verified SPIFFE ID of the mTLS peer a request arrived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity(pub String);

/// The certificates of the mTLS listener, as PEM files.
pub struct MtlsFiles<'a> {
    /// The gateway's certificate chain.
    pub certificate: &'a Path,
    pub private_key: &'a Path,
    /// The CA certificates workload SVIDs must chain to (the SPIFFE trust bundle).
    pub trust_bundle: &'a Path,
}

/// A TLS configuration that requires and verifies client certificates against the bundle.
pub fn tls_config(files: &MtlsFiles<'_>) -> anyhow::Result<Arc<ServerConfig>> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("read {}", path.display()));
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read(files.certificate)?)
            .collect::<Result<_, _>>()
            .context("parse the gateway certificate")?;
    let key = PrivateKeyDer::from_pem_slice(&read(files.private_key)?)
        .context("parse the gateway private key")?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read(files.trust_bundle)?) {
        roots
            .add(cert.context("parse the trust bundle")?)
            .context("add a trust bundle certificate")?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "the trust bundle {} holds no certificate",
        files.trust_bundle.display()
    );
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("build the client certificate verifier")?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choose TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("use the gateway certificate")?;
    Ok(Arc::new(config))
}

/// Serves `router` over mTLS on `listener` until `shutdown`.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    tracing::info!(addr = %listener.local_addr()?, "gateway mTLS listening");
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "failed to accept a connection");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::info!(%peer, error = %e, "refused a TLS handshake");
                    return;
                }
            };
            let identity = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                Some(cert) => match spiffe::cert::spiffe_id_from_der(cert.as_ref()) {
                    Ok(id) => PeerIdentity(id.to_string()),
                    Err(e) => {
                        tracing::info!(%peer, error = %e, "refused a peer without exactly one SPIFFE ID");
                        return;
                    }
                },
                None => return, // the verifier requires a certificate; this cannot happen
            };
            let service = tower::ServiceExt::map_request(
                router,
                move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(identity.clone());
                    request
                },
            );
            let connection = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(service))
                .await;
            if let Err(e) = connection {
                tracing::debug!(%peer, error = %e, "mTLS connection ended with an error");
            }
        });
    }
}
