//! Identities in Switchboard: signing keys and the JWKS documents that publish them, the claims every
//! token carries, a verifier for tokens from trusted issuers (with JWKS fetched and cached), the
//! development issuer used by `switchboard up`, and the gateway's per-server identity assertions.

mod claims;
mod keys;
mod remembered;
mod verify;

pub use claims::{Claims, now_seconds};
pub use keys::{SigningKey, jwks_document};
pub use remembered::{RememberKey, Remembered};
pub use verify::{AuthError, KeySource, TrustedIssuer, Verifier};

/// Header carrying the gateway's signed identity assertion to an MCP server.
pub const ASSERTION_HEADER: &str = "x-switchboard-assertion";
/// Header carrying the verified end user's name to an MCP server (Envoy's convention).
pub const FORWARDED_USER_HEADER: &str = "x-forwarded-user";
/// Header carrying the verified end user's groups, comma-separated.
pub const FORWARDED_GROUPS_HEADER: &str = "x-forwarded-groups";
/// Header carrying the surface (web chat, bot, IDE, ...) the call came from.
pub const FORWARDED_SURFACE_HEADER: &str = "x-forwarded-surface";
