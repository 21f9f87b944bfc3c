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

/// Where the listener's certificates come from.
#[derive(Debug, Clone)]
pub enum MtlsSource {
    /// PEM files, re-read when they change (SPIRE's spiffe-helper writes them).
    Files(MtlsFiles),
    /// The SPIFFE Workload API (a SPIRE agent's socket): the gateway's own SVID and its trust
    /// domain's bundle, updated as the agent rotates them. `None` uses `SPIFFE_ENDPOINT_SOCKET`.
    WorkloadApi { endpoint: Option<String> },
}

/// A TLS configuration that requires client certificates chaining to the trust bundle, and the
/// certificates behind it; [`MtlsCertificates::spawn_reload`] keeps them current.
pub async fn tls_config(
    source: MtlsSource,
) -> anyhow::Result<(Arc<ServerConfig>, MtlsCertificates)> {
    let (origin, (verifier, certified)) = match source {
        MtlsSource::Files(files) => {
            let loaded = load_files(&files)?;
            (
                Origin::Files {
                    stamp: std::sync::Mutex::new(stamp(&files)),
                    files,
                },
                loaded,
            )
        }
        MtlsSource::WorkloadApi { endpoint } => {
            let builder = spiffe::X509Source::builder();
            let builder = match endpoint {
                Some(e) => builder.endpoint(e),
                None => builder,
            };
            let source = builder
                .build()
                .await
                .context("connect to the SPIFFE Workload API")?;
            let loaded = load_workload(&source)?;
            (Origin::WorkloadApi(Arc::new(source)), loaded)
        }
    };
    let certificates = MtlsCertificates {
        inner: Arc::new(Loaded {
            verifier: ArcSwap::from_pointee(verifier),
            certified: ArcSwap::new(certified),
            origin,
        }),
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("choose TLS versions")?
        .with_client_cert_verifier(Arc::new(certificates.clone()))
        .with_cert_resolver(Arc::new(certificates.clone()));
    config.alpn_protocols = service_kit::connections::alpn_protocols();
    Ok((Arc::new(config), certificates))
}

/// The listener's current certificates; cheap to clone.
#[derive(Clone)]
pub struct MtlsCertificates {
    inner: Arc<Loaded>,
}

struct Loaded {
    verifier: ArcSwap<Arc<dyn ClientCertVerifier>>,
    certified: ArcSwap<CertifiedKey>,
    origin: Origin,
}

enum Origin {
    Files {
        files: MtlsFiles,
        /// Modification times of the files as last loaded.
        stamp: std::sync::Mutex<Vec<Option<SystemTime>>>,
    },
    WorkloadApi(Arc<spiffe::X509Source>),
}

impl std::fmt::Debug for MtlsCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = match &self.inner.origin {
            Origin::Files { files, .. } => format!("{files:?}"),
            Origin::WorkloadApi(_) => "workload API".to_owned(),
        };
        f.debug_struct("MtlsCertificates")
            .field("origin", &origin)
            .finish_non_exhaustive()
    }
}

impl MtlsCertificates {
    /// Keeps the certificates current until `shutdown`: files are checked every `every` and
    /// re-read when they changed; the Workload API pushes its rotations. Material that does not
    /// load (half-written files, a key that does not match) is logged and the previous stays.
    pub fn spawn_reload(&self, every: Duration, shutdown: Shutdown) {
        let this = self.clone();
        tokio::spawn(async move {
            match &this.inner.origin {
                Origin::Files { .. } => loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(every) => this.reload_files_if_changed(),
                    }
                },
                Origin::WorkloadApi(source) => {
                    let mut updates = source.updated();
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            changed = updates.changed() => match changed {
                                Ok(_) => {
                                    this.install(load_workload(source));
                                }
                                Err(e) => {
                                    tracing::error!(error = %e, "the SPIFFE Workload API source stopped");
                                    return;
                                }
                            },
                        }
                    }
                }
            }
        });
    }

    fn reload_files_if_changed(&self) {
        let Origin::Files { files, stamp: last } = &self.inner.origin else {
            return;
        };
        let now = stamp(files);
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        if *last != now && self.install(load_files(files)) {
            *last = now;
        }
    }

    /// Swaps in freshly loaded material; returns whether it loaded.
    fn install(
        &self,
        loaded: anyhow::Result<(Arc<dyn ClientCertVerifier>, Arc<CertifiedKey>)>,
    ) -> bool {
        match loaded {
            Ok((verifier, certified)) => {
                self.inner.verifier.store(Arc::new(verifier));
                self.inner.certified.store(certified);
                tracing::info!("reloaded the mTLS certificates and trust bundle");
                true
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "kept the previous mTLS certificates");
                false
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
fn load_files(
    files: &MtlsFiles,
) -> anyhow::Result<(Arc<dyn ClientCertVerifier>, Arc<CertifiedKey>)> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("read {}", path.display()));
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&read(&files.certificate)?)
            .collect::<Result<_, _>>()
            .context("parse the gateway certificate")?;
    let key = PrivateKeyDer::from_pem_slice(&read(&files.private_key)?)
        .context("parse the gateway private key")?;
    let roots = CertificateDer::pem_slice_iter(&read(&files.trust_bundle)?)
        .collect::<Result<Vec<_>, _>>()
        .context("parse the trust bundle")?;
    build(chain, key, roots).with_context(|| format!("load {}", files.certificate.display()))
}

/// The gateway's SVID and its trust domain's bundle, as the Workload API last sent them.
fn load_workload(
    source: &spiffe::X509Source,
) -> anyhow::Result<(Arc<dyn ClientCertVerifier>, Arc<CertifiedKey>)> {
    let svid = source
        .svid()
        .context("the Workload API has no SVID for the gateway")?;
    let bundle = source
        .bundle_set()
        .context("the Workload API has no bundles")?
        .get(svid.spiffe_id().trust_domain())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no bundle for trust domain {}",
                svid.spiffe_id().trust_domain_name()
            )
        })?;
    let chain = svid
        .cert_chain()
        .iter()
        .map(|c| CertificateDer::from(c.as_bytes().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(svid.private_key().as_bytes().to_vec().into());
    let roots = bundle
        .authorities()
        .iter()
        .map(|c| CertificateDer::from(c.as_bytes().to_vec()))
        .collect();
    build(chain, key, roots)
}

/// A verifier over `roots`, and the certified key of `chain` and `key`.
fn build(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Vec<CertificateDer<'static>>,
) -> anyhow::Result<(Arc<dyn ClientCertVerifier>, Arc<CertifiedKey>)> {
    anyhow::ensure!(!chain.is_empty(), "the certificate chain is empty");
    let mut store = RootCertStore::empty();
    for cert in roots {
        store.add(cert).context("add a trust bundle certificate")?;
    }
    anyhow::ensure!(!store.is_empty(), "the trust bundle holds no certificate");
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .context("build the client certificate verifier")?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .context("load the private key")?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified
        .keys_match()
        .context("the certificate and the key do not match")?;
    Ok((verifier, Arc::new(certified)))
}

/// Serves `router` over mTLS on `listener` until `shutdown`, then answers what is in flight (the
/// accept loop and its graceful shutdown are every listener's, `service_kit::connections`). HTTP/2
/// is spoken where the peer chose it by ALPN.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    tracing::info!(addr = %listener.local_addr()?, "gateway mTLS listening");
    service_kit::connections::serve_with(listener, router, shutdown, move |tcp, peer| {
        let acceptor = acceptor.clone();
        async move {
            let tls = acceptor.accept(tcp).await.map_err(|e| {
                tracing::info!(%peer, error = %e, "refused a TLS handshake");
                format!("TLS handshake: {e}")
            })?;
            let session = tls.get_ref().1;
            // The verifier requires a certificate, so a session without one cannot be here.
            let certificate = session
                .peer_certificates()
                .and_then(|c| c.first())
                .ok_or("no client certificate")?;
            let identity = spiffe::cert::spiffe_id_from_der(certificate.as_ref())
                .map(|id| PeerIdentity(id.to_string()))
                .map_err(|e| {
                    tracing::info!(%peer, error = %e, "refused a peer without exactly one SPIFFE ID");
                    format!("peer certificate: {e}")
                })?;
            let protocol = service_kit::connections::Protocol::of_alpn(session.alpn_protocol());
            Ok((tls, protocol, identity))
        }
    })
    .await
}
