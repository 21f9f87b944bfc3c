//! The surfaces' own token issuer: the web chat and the bots vouch for the person they serve by
//! minting a short-lived token (their key, their issuer) that names the surface, which the
//! gateway and the registry trust like any other issuer (`--trust-issuer ISSUER=JWKS_URL`, the
//! JWKS served at `/.well-known/jwks.json`). The surface comes from the token, never from a
//! header, so a person cannot pick a more permissive surface.

use identity::{Claims, SigningKey};

/// How long a minted token lives: one call or one discovery, with room for an approval wait.
const TOKEN_SECONDS: u64 = 15 * 60;

/// The surface of the web chat.
pub const WEB_CHAT_SURFACE: &str = "web-chat";
/// The surface of the chat bots.
pub const BOT_SURFACE: &str = "bot";

/// A person (or, for a bot, the person behind a chat account) on a surface.
#[derive(Debug, Clone, PartialEq)]
pub struct Who {
    pub user: String,
    pub groups: Vec<String>,
    pub surface: String,
    /// The bot channel the conversation happens in.
    pub channel: Option<String>,
}

/// Mints the tokens the surfaces present to the gateway and the registry.
pub struct Minter {
    key: SigningKey,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Minter")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl Minter {
    pub fn new(key: SigningKey, issuer: &str, audience: &str) -> Minter {
        Minter {
            key,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWKS document of the key, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> serde_json::Value {
        identity::jwks_document(&[&self.key])
    }

    /// A token for `who` on its surface.
    pub fn mint(&self, who: &Who) -> Result<String, String> {
        let mut claims = Claims::new(
            &self.issuer,
            &who.user,
            &self.audience,
            who.groups.clone(),
            TOKEN_SECONDS,
        );
        claims.surface = Some(who.surface.clone());
        self.key
            .sign(&claims)
            .map_err(|e| format!("could not mint a token for {}: {e}", who.user))
    }
}
