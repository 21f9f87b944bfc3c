//! Verifying bearer tokens from trusted issuers. Keys come from a static JWKS, a JWKS URL, or the
//! issuer's discovery document (OpenID Connect, else RFC 8414); fetched keys are cached and
//! refreshed at most once per 30 s when a token names an unknown key, so a stream of forged `kid`s
//! cannot turn into a stream of fetches. Where an issuer keeps groups (`groups`, `roles`,
//! `realm_access.roles`) is configured per issuer.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    errors::ErrorKind,
    jwk::{JwkSet, KeyAlgorithm},
};
use serde_json::Value;

use crate::{Claims, Remembered};

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
const REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
const KEYS_MAX_AGE: Duration = Duration::from_secs(600);
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 30;
/// How long a verified token is taken on its earlier verification (its expiry still checked
/// on every use): an agent's calls share one token, and an Ed25519 or RSA verification is most
/// of what authenticating a call costs. A key withdrawn from an issuer's JWKS stops working
/// within this long.
const VERIFIED_FOR: Duration = Duration::from_secs(60);
/// Tokens remembered at most; when full, expired ones are dropped, then all.
const VERIFIED_MAX: usize = 50_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token was presented")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("the token uses algorithm {0}, which is not accepted")]
    Algorithm(String),
    #[error("the token is signed by an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was not issued for this audience")]
    Audience,
    #[error("the token's issuer is not trusted")]
    Issuer,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("could not fetch signing keys: {0}")]
    KeysUnavailable(String),
    #[error("key error: {0}")]
    Key(String),
}

/// Where an issuer's public keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS document known up front.
    Static(Value),
    /// A JWKS URL, fetched on first use and refreshed as keys rotate.
    Url(String),
    /// Discovery: the issuer's `/.well-known/openid-configuration` (else
    /// `/.well-known/oauth-authorization-server`) names the JWKS URL.
    Discovery,
}

#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// The exact `iss` value tokens from this issuer carry.
    pub issuer: String,
    pub keys: KeySource,
    /// Where the caller's groups are in this issuer's tokens: a claim name (`groups`, `roles`) or
    /// a dotted path into nested claims (`realm_access.roles`).
    pub groups_claim: String,
}

impl TrustedIssuer {
    /// Trust `issuer`, reading groups from the `groups` claim.
    pub fn new(issuer: impl Into<String>, keys: KeySource) -> TrustedIssuer {
        TrustedIssuer {
            issuer: issuer.into(),
            keys,
            groups_claim: "groups".into(),
        }
    }

    pub fn with_groups_claim(mut self, path: impl Into<String>) -> TrustedIssuer {
        self.groups_claim = path.into();
        self
    }
}

/// Verifies tokens issued for its audiences by a set of trusted issuers.
pub struct Verifier {
    audiences: Vec<String>,
    issuers: Vec<IssuerKeys>,
    http: reqwest::Client,
    /// Tokens verified lately: SHA-256 of the token (and of the resource asked for) → its
    /// claims, and until when the earlier verification stands.
    verified: Remembered<Claims>,
}

struct IssuerKeys {
    issuer: TrustedIssuer,
    cache: ArcSwap<KeyCache>,
    refresh: tokio::sync::Mutex<RefreshTimes>,
    /// The JWKS URL, once discovery found it.
    jwks_url: tokio::sync::OnceCell<String>,
}

/// When keys were last fetched, for rate limiting.
#[derive(Default)]
struct RefreshTimes {
    /// Any fetch attempt, successful or not.
    attempt: Option<Instant>,
    /// The last fetch caused by a token naming an unknown key.
    unknown_key: Option<Instant>,
}

/// Why keys are being fetched.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// Never fetched, or older than [`KEYS_MAX_AGE`].
    Stale,
    /// A token named a key the cache does not hold: maybe the issuer rotated.
    UnknownKey,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
}

impl Verifier {
    /// A verifier accepting tokens issued for `audience` by any of `issuers`.
    pub fn new(
        audience: impl Into<String>,
        issuers: Vec<TrustedIssuer>,
    ) -> Result<Arc<Verifier>, AuthError> {
        Verifier::for_audiences(vec![audience.into()], issuers)
    }

    /// A verifier accepting tokens issued for any of `audiences`.
    pub fn for_audiences(
        audiences: Vec<String>,
        issuers: Vec<TrustedIssuer>,
    ) -> Result<Arc<Verifier>, AuthError> {
        let issuers = issuers
            .into_iter()
            .map(|issuer| {
                let cache = match &issuer.keys {
                    KeySource::Static(doc) => KeyCache {
                        keys: parse_jwks(doc)?,
                        fetched: Some(Instant::now()),
                    },
                    KeySource::Url(_) | KeySource::Discovery => KeyCache::default(),
                };
                Ok(IssuerKeys {
                    issuer,
                    cache: ArcSwap::from_pointee(cache),
                    refresh: tokio::sync::Mutex::new(RefreshTimes::default()),
                    jwks_url: tokio::sync::OnceCell::new(),
                })
            })
            .collect::<Result<Vec<_>, AuthError>>()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AuthError::KeysUnavailable(format!("build HTTP client: {e}")))?;
        Ok(Arc::new(Verifier {
            audiences,
            issuers,
            http,
            verified: Remembered::new(VERIFIED_MAX),
        }))
    }

    /// The audiences tokens must be issued for.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The trusted issuers' `iss` values.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|i| i.issuer.issuer.as_str())
    }

    /// Verifies signature, issuer, audience, expiry and not-before; returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_for(token, None).await
    }

    /// Like [`Verifier::verify`], also accepting tokens issued for `resource` (RFC 8707: an OAuth
    /// client asks for a token for the exact MCP endpoint it calls).
    pub async fn verify_for(
        &self,
        token: &str,
        resource: Option<&str>,
    ) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        let remembered =
            Remembered::<Claims>::key(&[token.as_bytes(), resource.unwrap_or_default().as_bytes()]);
        if let Some(claims) = self.verified.get(&remembered) {
            // Expiry is checked on every use, as a fresh verification would.
            if claims.exp + LEEWAY_SECONDS < crate::now_seconds() {
                return Err(AuthError::Expired);
            }
            return Ok(claims);
        }
        let claims = self.verify_uncached(token, resource).await?;
        self.verified
            .insert(remembered, claims.clone(), VERIFIED_FOR);
        Ok(claims)
    }

    async fn verify_uncached(
        &self,
        token: &str,
        resource: Option<&str>,
    ) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::Json(_) if token.split('.').count() == 3 => {
                AuthError::Algorithm("an unsupported one (for example none)".into())
            }
            _ => AuthError::Malformed(e.to_string()),
        })?;
        // Only asymmetric algorithms: an HMAC token "signed" with a public key is refused here.
        if !matches!(
            header.alg,
            Algorithm::EdDSA | Algorithm::RS256 | Algorithm::ES256 | Algorithm::PS256
        ) {
            return Err(AuthError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Malformed("the header has no kid".into()))?;

        for attempt in 0..2 {
            for issuer in &self.issuers {
                if attempt == 0 {
                    issuer.ensure_fresh(&self.http).await;
                }
                let cache = issuer.cache.load();
                if let Some((key, alg)) = cache.keys.get(&kid) {
                    if *alg != header.alg {
                        return Err(AuthError::Algorithm(format!(
                            "{:?} (the key is for {alg:?})",
                            header.alg
                        )));
                    }
                    return self.decode(token, key, *alg, &issuer.issuer, resource);
                }
            }
            if attempt == 0 {
                // Unknown key: maybe an issuer rotated. Refresh fetched key sets, rate-limited.
                let mut refreshed = false;
                for issuer in &self.issuers {
                    refreshed |= issuer
                        .refresh_if_allowed(&self.http, Refresh::UnknownKey)
                        .await;
                }
                if !refreshed {
                    break;
                }
            }
        }
        Err(AuthError::UnknownKey)
    }

    fn decode(
        &self,
        token: &str,
        key: &DecodingKey,
        alg: Algorithm,
        issuer: &TrustedIssuer,
        resource: Option<&str>,
    ) -> Result<Claims, AuthError> {
        let mut audiences: Vec<&str> = self.audiences.iter().map(String::as_str).collect();
        audiences.extend(resource);
        let mut validation = Validation::new(alg);
        validation.set_audience(&audiences);
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let raw = jsonwebtoken::decode::<Value>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidAudience => AuthError::Audience,
                ErrorKind::InvalidIssuer => AuthError::Issuer,
                ErrorKind::InvalidSignature => AuthError::Signature,
                ErrorKind::InvalidAlgorithm => AuthError::Algorithm(format!("{alg:?}")),
                _ => AuthError::Invalid(e.to_string()),
            })?;
        claims_from(&raw, &audiences, &issuer.groups_claim)
    }
}

/// Reads verified claims, wherever this issuer keeps groups and scopes.
fn claims_from(raw: &Value, audiences: &[&str], groups_claim: &str) -> Result<Claims, AuthError> {
    let text = |name: &str| raw.get(name).and_then(Value::as_str).map(str::to_owned);
    let number = |name: &str| raw.get(name).and_then(Value::as_u64);
    let sub = text("sub")
        .ok_or_else(|| AuthError::Invalid("the token has no string sub claim".into()))?;
    // `aud` may be a string or an array; keep the audience that matched.
    let aud = match raw.get("aud") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .find(|a| audiences.contains(a))
            .map(str::to_owned),
        Some(Value::String(a)) => Some(a.clone()),
        _ => None,
    }
    .ok_or(AuthError::Audience)?;
    let groups = groups_claim
        .split('.')
        .try_fold(raw, |value, key| value.get(key))
        .map(names)
        .unwrap_or_default();
    // OAuth's `scope` is space-delimited; some issuers use `scp`, as a string or an array.
    let scope = match (raw.get("scope"), raw.get("scp")) {
        (Some(Value::String(s)), _) => Some(s.clone()),
        (_, Some(scp)) => Some(names(scp).join(" ")),
        _ => None,
    };
    Ok(Claims {
        iss: text("iss").unwrap_or_default(),
        sub,
        aud,
        exp: number("exp").unwrap_or_default(),
        iat: number("iat").unwrap_or_default(),
        nbf: number("nbf"),
        jti: text("jti").unwrap_or_default(),
        groups,
        surface: text("surface"),
        channel: text("channel"),
        scope,
        nonce: text("nonce"),
        confirmation: text("confirmation"),
    })
}

/// A claim holding a list of names: an array of strings, or one string of space-separated names.
fn names(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

impl IssuerKeys {
    /// Fetches keys on first use and when they are older than [`KEYS_MAX_AGE`].
    async fn ensure_fresh(&self, http: &reqwest::Client) {
        let stale = match self.cache.load().fetched {
            None => true,
            Some(at) => at.elapsed() > KEYS_MAX_AGE,
        };
        if stale {
            self.refresh_if_allowed(http, Refresh::Stale).await;
        }
    }

    /// Refreshes a fetched key set, at most once per cooldown for each reason: a failing issuer
    /// is not retried on every request, and forged `kid`s cannot force fetches, while a real
    /// rotation is picked up by the first token that names the new key. Returns whether a fetch
    /// succeeded.
    async fn refresh_if_allowed(&self, http: &reqwest::Client, reason: Refresh) -> bool {
        if matches!(self.issuer.keys, KeySource::Static(_)) {
            return false;
        }
        let mut times = self.refresh.lock().await;
        let last = match reason {
            Refresh::Stale => times.attempt,
            Refresh::UnknownKey => times.unknown_key,
        };
        if last.is_some_and(|at| at.elapsed() < REFRESH_COOLDOWN) {
            return false;
        }
        if reason == Refresh::Stale
            && self
                .cache
                .load()
                .fetched
                .is_some_and(|at| at.elapsed() <= KEYS_MAX_AGE)
        {
            return false; // another request refreshed while this one waited for the lock
        }
        times.attempt = Some(Instant::now());
        if reason == Refresh::UnknownKey {
            times.unknown_key = times.attempt;
        }
        let fetched = match self.jwks_url(http).await {
            Ok(url) => fetch_jwks(http, &url).await,
            Err(e) => Err(e),
        };
        match fetched {
            Ok(keys) => {
                self.cache.store(Arc::new(KeyCache {
                    keys,
                    fetched: Some(Instant::now()),
                }));
                true
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer.issuer, error = %e, "failed to refresh signing keys");
                false
            }
        }
    }

    /// The JWKS URL: configured, or found once through discovery.
    async fn jwks_url(&self, http: &reqwest::Client) -> Result<String, AuthError> {
        match &self.issuer.keys {
            KeySource::Url(url) => Ok(url.clone()),
            KeySource::Static(_) => Err(AuthError::Key("static keys have no URL".into())),
            KeySource::Discovery => self
                .jwks_url
                .get_or_try_init(|| discover_jwks_url(http, &self.issuer.issuer))
                .await
                .cloned(),
        }
    }
}

/// Reads the issuer's discovery document (OpenID Connect first, then RFC 8414) and returns its
/// `jwks_uri`. The document must name the same issuer, or its keys are not this issuer's.
async fn discover_jwks_url(http: &reqwest::Client, issuer: &str) -> Result<String, AuthError> {
    let base = issuer.trim_end_matches('/');
    let mut last_error = String::new();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let url = format!("{base}{path}");
        let response = match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                last_error = format!("GET {url}: HTTP {}", r.status());
                continue;
            }
            Err(e) => {
                last_error = format!("GET {url}: {e}");
                continue;
            }
        };
        let doc: Value = response
            .json()
            .await
            .map_err(|e| AuthError::KeysUnavailable(format!("parse {url}: {e}")))?;
        if doc.get("issuer").and_then(Value::as_str) != Some(issuer) {
            return Err(AuthError::KeysUnavailable(format!(
                "{url} names another issuer"
            )));
        }
        return doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| AuthError::KeysUnavailable(format!("{url} has no jwks_uri")));
    }
    Err(AuthError::KeysUnavailable(last_error))
}

async fn fetch_jwks(
    http: &reqwest::Client,
    url: &str,
) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| AuthError::KeysUnavailable(format!("GET {url}: {e}")))?;
    if !response.status().is_success() {
        return Err(AuthError::KeysUnavailable(format!(
            "GET {url}: HTTP {}",
            response.status()
        )));
    }
    let doc: Value = response
        .json()
        .await
        .map_err(|e| AuthError::KeysUnavailable(format!("parse JWKS from {url}: {e}")))?;
    parse_jwks(&doc)
}

fn parse_jwks(doc: &Value) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
    let set: JwkSet = serde_json::from_value(doc.clone())
        .map_err(|e| AuthError::Key(format!("parse JWKS: {e}")))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            // A key without kid cannot be matched safely; skip it.
            continue;
        };
        // Take the algorithm the key declares; keys that declare none get their family's default.
        let alg = match (jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(KeyAlgorithm::EdDSA), _) => Algorithm::EdDSA,
            (Some(KeyAlgorithm::RS256), _) => Algorithm::RS256,
            (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
            (Some(KeyAlgorithm::PS256), _) => Algorithm::PS256,
            (Some(_), _) => continue,
            (None, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) => Algorithm::RS256,
            (None, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_)) => Algorithm::ES256,
            (None, jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
            (None, _) => continue,
        };
        // Only signing keys: an encryption key is never a verification key.
        if matches!(
            jwk.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        ) {
            continue;
        }
        let key =
            DecodingKey::from_jwk(jwk).map_err(|e| AuthError::Key(format!("key {kid}: {e}")))?;
        keys.insert(kid, (key, alg));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SigningKey, jwks_document, now_seconds};

    fn verifier(key: &SigningKey) -> Arc<Verifier> {
        Verifier::new(
            "switchboard",
            vec![TrustedIssuer::new(
                "https://issuer.test",
                KeySource::Static(jwks_document(&[key])),
            )],
        )
        .unwrap()
    }

    fn claims() -> Claims {
        Claims::new(
            "https://issuer.test",
            "alice",
            "switchboard",
            vec!["ads-eng".into()],
            60,
        )
    }

    #[tokio::test]
    async fn accepts_a_good_token() {
        let key = SigningKey::generate().unwrap();
        let got = verifier(&key)
            .verify(&key.sign(&claims()).unwrap())
            .await
            .unwrap();
        assert_eq!(got.sub, "alice");
        assert_eq!(got.groups, vec!["ads-eng"]);
    }

    #[tokio::test]
    async fn a_remembered_token_is_still_checked_for_what_it_was_verified_for() {
        let key = SigningKey::generate().unwrap();
        let v = verifier(&key);
        let token = key.sign(&claims()).unwrap();
        assert_eq!(v.verify(&token).await.unwrap().sub, "alice");
        // The second use is answered from memory, with the same claims.
        assert_eq!(
            v.verify(&token).await.unwrap(),
            v.verify(&token).await.unwrap()
        );
        // A token for one MCP endpoint, remembered as verified for it, is still refused where
        // the platform's audience is required.
        let mut for_resource = claims();
        for_resource.aud = "https://gw.test/servers/sql/mcp".into();
        let token = key.sign(&for_resource).unwrap();
        let resource = Some("https://gw.test/servers/sql/mcp");
        assert!(v.verify_for(&token, resource).await.is_ok());
        assert!(v.verify_for(&token, resource).await.is_ok());
        assert_eq!(v.verify(&token).await, Err(AuthError::Audience));
        // A remembered token past its expiry (and the leeway) is refused.
        let mut short = claims();
        short.exp = now_seconds() + 1;
        let token = key.sign(&short).unwrap();
        assert!(v.verify(&token).await.is_ok());
        v.verified
            .update_all(|claims, _| claims.exp = now_seconds() - LEEWAY_SECONDS - 1);
        assert_eq!(v.verify(&token).await, Err(AuthError::Expired));
    }

    #[tokio::test]
    async fn rejects_bad_tokens() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let v = verifier(&key);
        let check = |c: Claims| key.sign(&c).unwrap();

        let mut expired = claims();
        expired.exp = now_seconds() - 3600;
        assert_eq!(v.verify(&check(expired)).await, Err(AuthError::Expired));

        let mut future = claims();
        future.nbf = Some(now_seconds() + 3600);
        assert_eq!(v.verify(&check(future)).await, Err(AuthError::NotYetValid));

        let mut aud = claims();
        aud.aud = "another-service".into();
        assert_eq!(v.verify(&check(aud)).await, Err(AuthError::Audience));

        let mut iss = claims();
        iss.iss = "https://evil.test".into();
        assert_eq!(v.verify(&check(iss)).await, Err(AuthError::Issuer));

        assert_eq!(
            v.verify(&other.sign(&claims()).unwrap()).await,
            Err(AuthError::UnknownKey)
        );

        // Tamper with the payload: same header and signature, different subject.
        let token = check(claims());
        let parts: Vec<&str> = token.split('.').collect();
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["sub"] = "mallory".into();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        assert_eq!(v.verify(&forged).await, Err(AuthError::Signature));

        // alg=none
        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(matches!(
            v.verify(&unsigned).await,
            Err(AuthError::Algorithm(_))
        ));

        assert_eq!(
            v.verify(&"a".repeat(20_000)).await,
            Err(AuthError::TooLarge)
        );
        assert!(matches!(
            v.verify("not-a-token").await,
            Err(AuthError::Malformed(_))
        ));
        assert_eq!(v.verify("").await, Err(AuthError::Missing));
    }

    #[test]
    fn key_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/dev.json");
        let a = SigningKey::load_or_create(&path).unwrap();
        let b = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(a.kid(), b.kid());
        assert_eq!(a.jwk(), b.jwk());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(!format!("{a:?}").contains("pkcs8"));
    }
}
