//! Signing in to the web UI with OpenID Connect: the authorization code flow with PKCE (S256),
//! `state` against login CSRF and `nonce` against ID token replay. The ID token is verified like
//! every token (signature by the provider's keys, issuer, audience = our client id, expiry).

use std::sync::Arc;

use identity::{KeySource, TrustedIssuer, Verifier};
use serde::Deserialize;

use crate::ui::session::{PendingLogin, pkce_challenge, random_token, same_secret};

/// The UI's OpenID Connect client registration.
#[derive(Debug, Clone)]
pub struct OidcLogin {
    /// The provider's issuer URL (its discovery document is at
    /// `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    /// For confidential clients (sent with HTTP Basic); public clients rely on PKCE alone.
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: `<registry public URL>/ui/callback`.
    pub redirect_url: String,
    /// Where the ID token keeps the user's groups (a claim or a dotted path).
    pub groups_claim: String,
    /// Scopes to ask for besides `openid`.
    pub scopes: Vec<String>,
}

/// The endpoints of the provider's discovery document the flow needs.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

/// The flow's client: discovery (fetched once per login, since providers rotate endpoints rarely
/// but a stale cache would break sign-in), and ID token verification.
pub(crate) struct OidcClient {
    pub(crate) config: OidcLogin,
    http: reqwest::Client,
    verifier: Arc<Verifier>,
}

/// A signed-in identity from the provider.
pub(crate) struct SignedIn {
    pub(crate) user: String,
    pub(crate) groups: Vec<String>,
}

impl OidcClient {
    pub(crate) fn new(config: OidcLogin) -> Result<OidcClient, String> {
        let verifier = Verifier::new(
            config.client_id.clone(),
            vec![
                TrustedIssuer::new(config.issuer.clone(), KeySource::Discovery)
                    .with_groups_claim(&config.groups_claim),
            ],
        )
        .map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(OidcClient {
            config,
            http,
            verifier,
        })
    }

    async fn discovery(&self) -> Result<Discovery, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("the identity provider is unreachable: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "the identity provider's discovery document answered {}",
                response.status()
            ));
        }
        response
            .json()
            .await
            .map_err(|e| format!("the identity provider's discovery document is invalid: {e}"))
    }

    /// Where to send the browser, and the login to remember until it comes back.
    pub(crate) async fn start(&self, now: u64) -> Result<(String, PendingLogin), String> {
        let discovery = self.discovery().await?;
        let pending = PendingLogin {
            state: random_token(24),
            verifier: random_token(48),
            nonce: random_token(24),
            exp: now + crate::ui::session::LOGIN_SECONDS,
        };
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(self.config.scopes.iter().cloned());
        let mut url = reqwest::Url::parse(&discovery.authorization_endpoint)
            .map_err(|e| format!("the authorization endpoint is not a URL: {e}"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_url)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pkce_challenge(&pending.verifier))
            .append_pair("code_challenge_method", "S256");
        Ok((url.into(), pending))
    }

    /// Completes a login: the callback's `state` must be the pending one; the code is exchanged
    /// with the PKCE verifier; the ID token must verify and carry the pending nonce.
    pub(crate) async fn finish(
        &self,
        pending: &PendingLogin,
        state: &str,
        code: &str,
    ) -> Result<SignedIn, String> {
        if !same_secret(state, &pending.state) {
            return Err("the sign-in response does not belong to this browser's sign-in".into());
        }
        let discovery = self.discovery().await?;
        let mut request = self.http.post(&discovery.token_endpoint).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.config.redirect_url.as_str()),
            ("client_id", self.config.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ]);
        if let Some(secret) = &self.config.client_secret {
            request = request.basic_auth(&self.config.client_id, Some(secret));
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("the token endpoint is unreachable: {e}"))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let reason: String = body.chars().take(300).collect();
            return Err(format!(
                "the identity provider refused the code ({status}): {reason}"
            ));
        }
        let tokens: TokenResponse = response
            .json()
            .await
            .map_err(|e| format!("the token response is invalid: {e}"))?;
        let id_token = tokens
            .id_token
            .ok_or("the identity provider returned no ID token")?;
        let claims = self
            .verifier
            .verify(&id_token)
            .await
            .map_err(|e| format!("the ID token is not valid: {e}"))?;
        match &claims.nonce {
            Some(nonce) if same_secret(nonce, &pending.nonce) => {}
            _ => return Err("the ID token's nonce does not match this sign-in".into()),
        }
        Ok(SignedIn {
            user: claims.sub,
            groups: claims.groups,
        })
    }
}
