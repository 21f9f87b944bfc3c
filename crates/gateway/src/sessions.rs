//! Legacy (2025-11-25) MCP sessions, bound to the user who opened them and to their server
//! without any state in the gateway: the session id a client sees is a token signed with the
//! gateway's key (which every replica shares) naming the user, the server and the server's own
//! session id. Any replica can check it, so a session survives its requests landing on other
//! replicas, and one user cannot ride another user's session by replaying its id.

use std::time::Duration;

use identity::{Remembered, SigningKey};

use crate::Gateway;
use serde::{Deserialize, Serialize};

/// Starts every sealed session id.
const PREFIX: &str = "switchboard-session.";
const AUDIENCE: &str = "switchboard-session";
/// How long a sealed session id is honoured (a client whose session ends re-initializes).
const SESSION_SECONDS: u64 = 24 * 3600;

#[derive(Serialize, Deserialize)]
struct Sealed {
    sub: String,
    server: String,
    /// The server's own session id.
    sid: String,
    aud: String,
    exp: u64,
}

/// The session id to give the client for the server's session `upstream`, opened by `user`.
pub(crate) fn seal(
    key: &SigningKey,
    user: &str,
    server: &str,
    upstream: &str,
) -> Result<String, String> {
    let sealed = Sealed {
        sub: user.to_owned(),
        server: server.to_owned(),
        sid: upstream.to_owned(),
        aud: AUDIENCE.to_owned(),
        exp: identity::now_seconds() + SESSION_SECONDS,
    };
    key.sign(&sealed)
        .map(|token| format!("{PREFIX}{token}"))
        .map_err(|e| e.to_string())
}

/// How long an opened session id is taken on its earlier check.
const OPENED_FOR: Duration = Duration::from_secs(60);

/// [`open`], remembered: a session's requests check its signature once a minute, not on each.
pub(crate) fn open_remembered(
    gw: &Gateway,
    id: &str,
    user: &str,
    server: &str,
) -> Result<String, String> {
    let key = Remembered::<String>::key(&[id.as_bytes(), user.as_bytes(), server.as_bytes()]);
    gw.opened_sessions.get_or_try(key, || {
        let (sid, exp) = open_until(&gw.assertion_key, id, user, server)?;
        let left = Duration::from_secs(exp.saturating_sub(identity::now_seconds()));
        Ok((sid, left.min(OPENED_FOR)))
    })
}

/// The server's session id behind the client's `id`, if `user` opened it on `server`.
pub(crate) fn open(key: &SigningKey, id: &str, user: &str, server: &str) -> Result<String, String> {
    open_until(key, id, user, server).map(|(sid, _)| sid)
}

/// [`open`], with when the sealed id expires (seconds since the epoch).
fn open_until(
    key: &SigningKey,
    id: &str,
    user: &str,
    server: &str,
) -> Result<(String, u64), String> {
    let token = id
        .strip_prefix(PREFIX)
        .ok_or("not a session id this gateway gave out")?;
    let sealed: Sealed = key
        .verify_own(token, AUDIENCE)
        .map_err(|e| format!("session id: {e}"))?;
    if sealed.sub != user || sealed.server != server {
        return Err("the session belongs to another caller or server".into());
    }
    Ok((sealed.sid, sealed.exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_belongs_to_its_opener_and_its_server_on_every_replica() {
        let key = SigningKey::generate().unwrap();
        let id = seal(&key, "alice", "knowledge", "upstream-1").unwrap();
        assert_eq!(open(&key, &id, "alice", "knowledge").unwrap(), "upstream-1");
        assert!(open(&key, &id, "mallory", "knowledge").is_err());
        assert!(open(&key, &id, "alice", "sql").is_err());
        assert!(open(&key, "upstream-1", "alice", "knowledge").is_err());
        // Another gateway key (another deployment) cannot open it.
        let other = SigningKey::generate().unwrap();
        assert!(open(&other, &id, "alice", "knowledge").is_err());
    }
}
