//! Binds legacy (2025-11-25) MCP sessions to the user who opened them, so that one user cannot
//! ride another user's upstream session by replaying its `Mcp-Session-Id`.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

const MAX_SESSIONS: usize = 100_000;
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Default)]
pub(crate) struct SessionOwners {
    owners: Mutex<HashMap<String, (String, Instant)>>,
}

impl SessionOwners {
    pub(crate) fn bind(&self, session: &str, user: &str) {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if owners.len() >= MAX_SESSIONS {
            owners.retain(|_, (_, at)| at.elapsed() < SESSION_TTL);
            if owners.len() >= MAX_SESSIONS {
                // Still full of live sessions: forget the oldest.
                if let Some(oldest) = owners
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                {
                    owners.remove(&oldest);
                }
            }
        }
        owners.insert(session.to_owned(), (user.to_owned(), Instant::now()));
    }

    /// `true` when `user` may use `session`: it is theirs, or the gateway never saw it opened
    /// (the server will then judge it).
    pub(crate) fn may_use(&self, session: &str, user: &str) -> bool {
        let owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        owners.get(session).is_none_or(|(owner, _)| owner == user)
    }

    pub(crate) fn forget(&self, session: &str) {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_belong_to_their_opener() {
        let s = SessionOwners::default();
        s.bind("abc", "alice");
        assert!(s.may_use("abc", "alice"));
        assert!(!s.may_use("abc", "mallory"));
        assert!(s.may_use("unknown", "mallory"));
        s.forget("abc");
        assert!(s.may_use("abc", "mallory"));
    }
}
