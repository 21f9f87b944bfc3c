//! Verifying bearer tokens from trusted issuers. Keys come from a static JWKS or from a JWKS URL that
//! is fetched lazily, cached, and refreshed at most once per 30 s when a token names an unknown key,
//! so a stream of forged `kid`s cannot turn into a stream of fetches.

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

use crate::Claims;

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
const REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
const KEYS_MAX_AGE: Duration = Duration::from_secs(600);
const LEEWAY_SECONDS: u64 = 30;

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
    Static(serde_json::Value),
    /// A JWKS URL, fetched on first use and refreshed as keys rotate.
    Url(String),
}

#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// The exact `iss` value tokens from this issuer carry.
    pub issuer: String,
    pub keys: KeySource,
}

/// Verifies tokens for one audience from a set of trusted issuers.
pub struct Verifier {
    audience: String,
    issuers: Vec<IssuerKeys>,
    http: reqwest::Client,
}

struct IssuerKeys {
    issuer: TrustedIssuer,
    cache: ArcSwap<KeyCache>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    fetched: Option<Instant>,
}

impl Verifier {
    pub fn new(
        audience: impl Into<String>,
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
                    KeySource::Url(_) => KeyCache::default(),
                };
                Ok(IssuerKeys {
                    issuer,
                    cache: ArcSwap::from_pointee(cache),
                    refresh: tokio::sync::Mutex::new(None),
                })
            })
            .collect::<Result<Vec<_>, AuthError>>()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AuthError::KeysUnavailable(format!("build HTTP client: {e}")))?;
        Ok(Arc::new(Verifier {
            audience: audience.into(),
            issuers,
            http,
        }))
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Verifies signature, issuer, audience, expiry and not-before; returns the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TooLarge);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::Json(_) if token.split('.').count() == 3 => {
                AuthError::Algorithm("an unsupported one (for example none)".into())
            }
            _ => AuthError::Malformed(e.to_string()),
        })?;
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
                    return self.decode(token, key, *alg, &issuer.issuer.issuer);
                }
            }
            if attempt == 0 {
                // Unknown key: maybe an issuer rotated. Refresh URL-backed issuers, rate-limited.
                let mut refreshed = false;
                for issuer in &self.issuers {
                    refreshed |= issuer.refresh_if_allowed(&self.http).await;
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
        issuer: &str,
    ) -> Result<Claims, AuthError> {
        let mut validation = Validation::new(alg);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidAudience => AuthError::Audience,
                ErrorKind::InvalidIssuer => AuthError::Issuer,
                ErrorKind::InvalidSignature => AuthError::Signature,
                ErrorKind::InvalidAlgorithm => AuthError::Algorithm(format!("{alg:?}")),
                _ => AuthError::Invalid(e.to_string()),
            })
    }
}

impl IssuerKeys {
    /// Fetches keys on first use and when they are older than [`KEYS_MAX_AGE`].
    async fn ensure_fresh(&self, http: &reqwest::Client) {
        let stale = match self.cache.load().fetched {
            None => true,
            Some(at) => at.elapsed() > KEYS_MAX_AGE,
        };
        if stale && matches!(self.issuer.keys, KeySource::Url(_)) {
            self.refresh_if_allowed(http).await;
        }
    }

    /// Refreshes a URL-backed key set unless one was attempted within the cooldown. Returns whether
    /// a fetch succeeded.
    async fn refresh_if_allowed(&self, http: &reqwest::Client) -> bool {
        let KeySource::Url(url) = &self.issuer.keys else {
            return false;
        };
        let mut last = self.refresh.lock().await;
        if let Some(at) = *last
            && at.elapsed() < REFRESH_COOLDOWN
        {
            return false;
        }
        *last = Some(Instant::now());
        match fetch_jwks(http, url).await {
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
    let doc: serde_json::Value = response
        .json()
        .await
        .map_err(|e| AuthError::KeysUnavailable(format!("parse JWKS from {url}: {e}")))?;
    parse_jwks(&doc)
}

fn parse_jwks(
    doc: &serde_json::Value,
) -> Result<HashMap<String, (DecodingKey, Algorithm)>, AuthError> {
    let set: JwkSet = serde_json::from_value(doc.clone())
        .map_err(|e| AuthError::Key(format!("parse JWKS: {e}")))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), jwk.common.key_algorithm) else {
            // A key without kid or alg cannot be matched safely; skip it.
            continue;
        };
        let alg = match alg {
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
            KeyAlgorithm::RS256 => Algorithm::RS256,
            KeyAlgorithm::ES256 => Algorithm::ES256,
            KeyAlgorithm::PS256 => Algorithm::PS256,
            _ => continue,
        };
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
            vec![TrustedIssuer {
                issuer: "https://issuer.test".into(),
                keys: KeySource::Static(jwks_document(&[key])),
            }],
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
