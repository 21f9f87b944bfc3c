//! Ed25519 signing keys: generated with aws-lc-rs, persisted as PKCS#8 with owner-only permissions,
//! and published as JWKs so that verifiers anywhere can check what they signed.

use std::path::Path;

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::AuthError;

pub struct SigningKey {
    kid: String,
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    pkcs8: String,
}

impl SigningKey {
    pub fn generate() -> Result<SigningKey, AuthError> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| AuthError::Key("generate an Ed25519 key".into()))?;
        let kid = uuid::Uuid::new_v4().simple().to_string();
        SigningKey::from_pkcs8(kid, pkcs8.as_ref().to_vec())
    }

    pub fn from_pkcs8(kid: String, pkcs8: Vec<u8>) -> Result<SigningKey, AuthError> {
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|_| AuthError::Key("parse the Ed25519 PKCS#8 key".into()))?;
        let public = pair.public_key().as_ref().to_vec();
        let encoding = EncodingKey::from_ed_der(&pkcs8);
        Ok(SigningKey {
            kid,
            pkcs8,
            public,
            encoding,
        })
    }

    /// Loads the key stored at `path`, or creates one there (readable by the owner only).
    pub fn load_or_create(path: &Path) -> Result<SigningKey, AuthError> {
        let io = |what: &str, e: std::io::Error| {
            AuthError::Key(format!("{what} {}: {e}", path.display()))
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let stored: StoredKey = serde_json::from_str(&text).map_err(|e| {
                    AuthError::Key(format!("parse key file {}: {e}", path.display()))
                })?;
                let der = URL_SAFE_NO_PAD
                    .decode(stored.pkcs8.as_bytes())
                    .map_err(|e| {
                        AuthError::Key(format!("decode key file {}: {e}", path.display()))
                    })?;
                SigningKey::from_pkcs8(stored.kid, der)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = SigningKey::generate()?;
                let stored = StoredKey {
                    kid: key.kid.clone(),
                    pkcs8: URL_SAFE_NO_PAD.encode(&key.pkcs8),
                };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| io("create directory for", e))?;
                }
                let text = serde_json::to_string(&stored).expect("a stored key always serializes");
                write_private(path, text.as_bytes()).map_err(|e| io("write key file", e))?;
                Ok(key)
            }
            Err(e) => Err(io("read key file", e)),
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (RFC 8037 OKP key).
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.public),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }

    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| AuthError::Key(format!("sign token: {e}")))
    }

    /// Verifies a token this key signed for itself (state a service hands out and takes back,
    /// such as an opaque session id): signature, `aud` = `audience`, `exp`; returns its claims.
    pub fn verify_own<C: DeserializeOwned>(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<C, AuthError> {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "aud"]);
        validation.leeway = 0;
        let key = DecodingKey::from_ed_der(&self.public);
        jsonwebtoken::decode::<C>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidAudience => AuthError::Audience,
                jsonwebtoken::errors::ErrorKind::InvalidSignature => AuthError::Signature,
                _ => AuthError::Malformed(e.to_string()),
            })
    }
}

/// A JWKS document (`{"keys": [...]}`) publishing the given keys.
pub fn jwks_document(keys: &[&SigningKey]) -> serde_json::Value {
    serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() })
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct State {
        aud: String,
        exp: u64,
        note: String,
    }

    #[test]
    fn a_key_verifies_only_its_own_unexpired_tokens_for_their_audience() {
        let key = SigningKey::generate().unwrap();
        let state = State {
            aud: "bridge".into(),
            exp: crate::now_seconds() + 60,
            note: "hello".into(),
        };
        let token = key.sign(&state).unwrap();
        assert_eq!(key.verify_own::<State>(&token, "bridge").unwrap(), state);
        assert!(matches!(
            key.verify_own::<State>(&token, "other"),
            Err(AuthError::Audience)
        ));
        let stranger = SigningKey::generate().unwrap();
        assert!(matches!(
            stranger.verify_own::<State>(&token, "bridge"),
            Err(AuthError::Signature)
        ));
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 3, 'x');
        assert!(key.verify_own::<State>(&tampered, "bridge").is_err());
        let expired = key
            .sign(&State {
                exp: crate::now_seconds() - 1,
                ..state
            })
            .unwrap();
        assert!(matches!(
            key.verify_own::<State>(&expired, "bridge"),
            Err(AuthError::Expired)
        ));
    }
}
