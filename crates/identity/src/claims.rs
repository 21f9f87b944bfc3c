//! The claims Switchboard reads from and writes into tokens: end-user tokens, service tokens and the
//! gateway's assertions all share this shape.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default)]
    pub jti: String,
    /// Business groups of the subject.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The surface a call came from (assertions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<String>,
    /// (Gateway assertions only) the chat channel a bot call came from, a policy dimension the
    /// server's own policies see too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Granted OAuth scopes, space-delimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The OpenID Connect nonce (ID tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// (Gateway assertions only) the approved proposal this call runs: a person approved this
    /// very call, so the tool may take it as the user's confirmation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<String>,
}

impl Claims {
    /// Claims for `sub` valid from now for `ttl_seconds`.
    pub fn new(iss: &str, sub: &str, aud: &str, groups: Vec<String>, ttl_seconds: u64) -> Claims {
        let now = now_seconds();
        Claims {
            iss: iss.to_owned(),
            sub: sub.to_owned(),
            aud: aud.to_owned(),
            exp: now + ttl_seconds,
            iat: now,
            nbf: Some(now),
            jti: uuid::Uuid::new_v4().to_string(),
            groups,
            surface: None,
            channel: None,
            scope: None,
            nonce: None,
            confirmation: None,
        }
    }
}

impl Claims {
    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.as_deref().unwrap_or_default().split_whitespace()
    }
}

pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
