//! The gateway's mTLS listener for workloads (SPIFFE X.509-SVIDs). A peer must present a
//! certificate that chains to the trust bundle and carries exactly one `spiffe://` URI SAN; its
//! SPIFFE ID is attached to every request on the connection as a [`PeerIdentity`]. What that
//! identity may do (call as a service, or vouch for end users as a trusted proxy) is decided by
//! the MCP route.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwap;

use anyhow::Context;
use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    client::danger::HandshakeSignatureValid,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{
        ClientHello, ResolvesServerCert, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};
use service_kit::Shutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The verified SPIFFE ID of the mTLS peer a request arrived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity(pub String);

/// The certificates of the mTLS listener, as PEM files.
#[derive(Debug, Clone)]
pub struct MtlsFiles {
    /// The gateway's certificate chain.
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    /// The CA certificates workload SVIDs must chain to (the SPIFFE trust bundle).
    pub trust_bundle: PathBuf,
}

/// A TLS configuration that requires client certificates chaining to the bundle, and the
/// certificates behind it, which [`MtlsCertificates::spawn_reload`] re-reads when the files change
/// (SPIRE's spiffe-helper rotates SVIDs and bundles on disk).
pub fn tls_config(files: MtlsFiles) -> anyhow::Result<(Arc<ServerConfig>, MtlsCertificates)> {
    let (verifier, certified) = load(&files)?;
    let certificates = MtlsCertificates {
        inner: Arc::new(Loaded {
            verifier: ArcSwap::from_pointee(verifier),
            certified: ArcSwap::new(certified),
            stamp: std::sync::Mutex::new(stamp(&files)),
            files,
        }),
    };
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("choose TLS versions")?
        .with_client_cert_verifier(Arc::new(certificates.clone()))
        .with_cert_resolver(Arc::new(certificates.clone()));
    Ok((Arc::new(config), certificates))
}

/// The listener's current certificates; cheap to clone.
#[derive(Clone)]
pub struct MtlsCertificates {
    inner: Arc<Loaded>,
}

struct Loaded {
    files: MtlsFiles,
    verifier: ArcSwap<Arc<dyn ClientCertVerifier>>,
    certified: ArcSwap<CertifiedKey>,
    /// Modification times of the files as last loaded.
    stamp: std::sync::Mutex<Vec<Option<SystemTime>>>,
}

impl std::fmt::Debug for MtlsCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtlsCertificates")
            .field("files", &self.inner.files)
            .finish_non_exhaustive()
    }
}

impl MtlsCertificates {
    /// Re-reads the files every `every` when they changed, until `shutdown`. A set of files that
    /// does not load (half-written, mismatched) is logged and the previous certificates stay.
    pub fn spawn_reload(&self, every: Duration, shutdown: Shutdown) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => this.reload_if_changed(),
                }
            }
        });
    }

    fn reload_if_changed(&self) {
        let loaded = &self.inner;
        let now = stamp(&loaded.files);
        let mut last = loaded.stamp.lock().unwrap_or_else(|p| p.into_inner());
        if *last == now {
            return;
        }
        match load(&loaded.files) {
            Ok((verifier, certified)) => {
                loaded.verifier.store(Arc::new(verifier));
                loaded.certified.store(certified);
                *last = now;
                tracing::info!("reloaded the mTLS certificates and trust bundle");
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "kept the previous mTLS certificates")
            }
        }
    }
}

impl ClientCertVerifier for MtlsCertificates {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional; clients present their SVID regardless.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .verifier
            .load()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verifier
            .load()
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner
            .verifier
            .load()
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.verifier.load().supported_verify_schemes()
    }
}

impl ResolvesServerCert for MtlsCertificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.inner.certified.load_full())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn stamp(files: &MtlsFiles) -> Vec<Option<SystemTime>> {
    [&files.certificate, &files.private_key, &files.trust_bundle]
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

/// Reads the three files: a verifier over the bundle, and the gateway's certified key.
fn load(files: &MtlsFiles) -> anyhow::Result<(Arc<dyn ClientCertVerifier>, Arc<CertifiedKey>)> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("read {}", path.display()));
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read(&files.certificate)?)
            .collect::<Result<_, _>>()
            .context("parse the gateway certificate")?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{} holds no certificate",
        files.certificate.display()
    );
    let key = PrivateKeyDer::from_pem_slice(&read(&files.private_key)?)
        .context("parse the gateway private key")?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&read(&files.trust_bundle)?) {
        roots
            .add(cert.context("parse the trust bundle")?)
            .context("add a trust bundle certificate")?;
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "the trust bundle {} holds no certificate",
        files.trust_bundle.display()
    );
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("build the client certificate verifier")?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .context("load the gateway private key")?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .context("the gateway certificate and key do not match")?;
    Ok((verifier, Arc::new(certified)))
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
