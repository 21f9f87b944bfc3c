//! Browser sessions of the web UI: a signed cookie (HMAC-SHA256 over its JSON) that names the
//! signed-in user, their groups, when it expires and the session's CSRF token. Also the short
//! cookie that carries an OpenID Connect login's state, PKCE verifier and nonce to the callback.
//! Nothing in a cookie is trusted unless its signature verifies and it has not expired.

use aws_lc_rs::{hmac, rand::SecureRandom};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

pub(crate) const SESSION_COOKIE: &str = "sb_session";
pub(crate) const LOGIN_COOKIE: &str = "sb_login";
/// How long a UI session lasts.
pub(crate) const SESSION_SECONDS: u64 = 8 * 3600;
/// How long a login may take at the identity provider.
pub(crate) const LOGIN_SECONDS: u64 = 600;
/// Browsers keep cookies up to about 4 KiB.
const MAX_COOKIE_BYTES: usize = 3800;

/// A signed-in person.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Session {
    pub(crate) user: String,
    pub(crate) groups: Vec<String>,
    pub(crate) exp: u64,
    /// Sent back in every form; a POST without it is refused.
    pub(crate) csrf: String,
    /// How the user signed in: `oidc` or `dev`.
    pub(crate) via: String,
}

/// An OpenID Connect login in flight.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct PendingLogin {
    pub(crate) state: String,
    pub(crate) verifier: String,
    pub(crate) nonce: String,
    pub(crate) exp: u64,
}

/// Signs and verifies cookies with one key (shared by every registry replica).
#[derive(Clone)]
pub(crate) struct Signer {
    key: hmac::Key,
    secure: bool,
}

impl Signer {
    pub(crate) fn new(secret: &[u8], secure: bool) -> Signer {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            secure,
        }
    }

    /// `name=<payload>.<signature>` as a `Set-Cookie` value, HttpOnly and SameSite=Lax.
    pub(crate) fn cookie<T: Serialize>(
        &self,
        name: &str,
        value: &T,
        max_age: u64,
    ) -> Result<HeaderValue, String> {
        let payload = B64.encode(serde_json::to_vec(value).map_err(|e| e.to_string())?);
        let tag = B64.encode(hmac::sign(&self.key, payload.as_bytes()).as_ref());
        let text = format!(
            "{name}={payload}.{tag}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
            if self.secure { "; Secure" } else { "" }
        );
        if text.len() > MAX_COOKIE_BYTES {
            return Err("the session is too large for a cookie (too many groups)".into());
        }
        HeaderValue::from_str(&text).map_err(|e| e.to_string())
    }

    /// A `Set-Cookie` value that deletes `name`.
    pub(crate) fn clear(&self, name: &str) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "{name}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
            if self.secure { "; Secure" } else { "" }
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The verified, unexpired value of cookie `name`.
    pub(crate) fn read<T: DeserializeOwned + Expiring>(
        &self,
        headers: &HeaderMap,
        name: &str,
    ) -> Option<T> {
        let raw = cookie_value(headers, name)?;
        let (payload, tag) = raw.split_once('.')?;
        let tag = B64.decode(tag).ok()?;
        hmac::verify(&self.key, payload.as_bytes(), &tag).ok()?;
        let value: T = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
        (value.expires_at() > identity::now_seconds()).then_some(value)
    }
}

pub(crate) trait Expiring {
    fn expires_at(&self) -> u64;
}

impl Expiring for Session {
    fn expires_at(&self) -> u64 {
        self.exp
    }
}

impl Expiring for PendingLogin {
    fn expires_at(&self) -> u64 {
        self.exp
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `bytes` random bytes, URL-safe base64.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    // The system RNG does not fail on supported platforms; a failure leaves zeros, which the
    // caller would notice as a login that never matches, never as a weak secret silently used.
    if aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut buffer)
        .is_err()
    {
        tracing::error!("the system random number generator failed");
    }
    B64.encode(buffer)
}

/// The PKCE S256 challenge of `verifier`.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Constant-time comparison of two secrets.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(exp: u64) -> Session {
        Session {
            user: "ann".into(),
            groups: vec!["eng".into()],
            exp,
            csrf: "c".into(),
            via: "dev".into(),
        }
    }

    fn headers(cookie: &HeaderValue) -> HeaderMap {
        let text = cookie
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {text}")).unwrap(),
        );
        headers
    }

    #[test]
    fn only_signed_unexpired_cookies_are_read() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef", false);
        let live = session(identity::now_seconds() + 60);
        let cookie = signer.cookie(SESSION_COOKIE, &live, 60).unwrap();
        assert!(cookie.to_str().unwrap().contains("HttpOnly; SameSite=Lax"));
        assert_eq!(
            signer.read::<Session>(&headers(&cookie), SESSION_COOKIE),
            Some(live.clone())
        );
        // Another key's cookie, a tampered payload, an expired session: all ignored.
        let other = Signer::new(b"another key, another registry...", false);
        assert_eq!(
            other.read::<Session>(&headers(&cookie), SESSION_COOKIE),
            None
        );
        let text = cookie
            .to_str()
            .unwrap()
            .replacen("sb_session=e", "sb_session=f", 1);
        assert_eq!(
            signer.read::<Session>(
                &headers(&HeaderValue::from_str(&text).unwrap()),
                SESSION_COOKIE
            ),
            None
        );
        let old = signer.cookie(SESSION_COOKIE, &session(1), 60).unwrap();
        assert_eq!(signer.read::<Session>(&headers(&old), SESSION_COOKIE), None);
    }

    #[test]
    fn pkce_matches_rfc_7636() {
        // The example of RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
