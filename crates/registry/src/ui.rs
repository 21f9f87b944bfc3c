//! The registry's web UI, rendered on the server (askama templates in `templates/`, one small
//! stylesheet, no script): the catalog with search and filters, a page per server (owners,
//! support, posture, live status, tools with who may call them, reviews, recent usage), the
//! review queue where reviewers approve or reject, and sign-in with OpenID Connect (code + PKCE)
//! or, under `switchboard up`, a development sign-in. Every page acts as the signed-in person
//! with the same rules as the API; every form carries the session's CSRF token.

mod observe;
mod oidc;
mod pages;
pub(crate) mod session;

use std::sync::Arc;

use axum::{
    Router,
    routing::{get, post},
};
pub use oidc::OidcLogin;

use crate::RegistryState;

/// How people sign in to the web UI.
#[derive(Clone)]
pub struct UiConfig {
    /// Signs session cookies; every replica behind one address needs the same key.
    pub session_key: Vec<u8>,
    /// Mark cookies `Secure` (the UI is served over HTTPS).
    pub secure_cookies: bool,
    /// Sign in with OpenID Connect (authorization code + PKCE).
    pub oidc: Option<OidcLogin>,
    /// A form that signs anyone in as any user and groups: development only (`switchboard up`).
    pub dev_sign_in: bool,
}

impl std::fmt::Debug for UiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the session key.
        f.debug_struct("UiConfig")
            .field("secure_cookies", &self.secure_cookies)
            .field("oidc", &self.oidc)
            .field("dev_sign_in", &self.dev_sign_in)
            .finish_non_exhaustive()
    }
}

impl Default for UiConfig {
    /// A random session key (sessions end with the process), no sign-in method.
    fn default() -> UiConfig {
        UiConfig {
            session_key: session::random_token(32).into_bytes(),
            secure_cookies: false,
            oidc: None,
            dev_sign_in: false,
        }
    }
}

/// What the UI handlers need besides the registry's state.
pub(crate) struct Ui {
    pub(crate) signer: session::Signer,
    pub(crate) oidc: Option<oidc::OidcClient>,
    pub(crate) dev_sign_in: bool,
}

impl Ui {
    pub(crate) fn new(config: UiConfig) -> anyhow::Result<Ui> {
        anyhow::ensure!(
            config.session_key.len() >= 32,
            "the UI session key must be at least 32 bytes"
        );
        Ok(Ui {
            signer: session::Signer::new(&config.session_key, config.secure_cookies),
            oidc: config
                .oidc
                .map(oidc::OidcClient::new)
                .transpose()
                .map_err(|e| anyhow::anyhow!("OpenID Connect sign-in: {e}"))?,
            dev_sign_in: config.dev_sign_in,
        })
    }
}

/// The UI's routes, under `/ui`.
pub(crate) fn router() -> Router<Arc<RegistryState>> {
    Router::new()
        .route("/", get(pages::home))
        .route("/ui", get(pages::home))
        .route("/ui/", get(pages::catalog))
        .route("/ui/servers/{name}", get(pages::server))
        .route("/ui/reviews", get(pages::reviews))
        .route("/ui/reviews/{id}/decide", post(pages::decide))
        .route("/ui/approvals", get(pages::approvals))
        .route("/ui/approvals/decide", post(pages::decide_approvals))
        .route("/ui/insights", get(observe::insights))
        .route("/ui/audit", get(observe::audit))
        .route("/ui/audit/export", get(observe::export))
        .route("/ui/login", get(pages::login_page))
        .route("/ui/login/dev", post(pages::dev_sign_in))
        .route("/ui/login/oidc", get(pages::oidc_start))
        .route("/ui/callback", get(pages::oidc_callback))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/app.css", get(pages::stylesheet))
}
