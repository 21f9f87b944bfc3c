//! The development issuer used by `switchboard up` and `switchboard token`: an Ed25519 key kept in
//! the data directory that mints end-user and service tokens. Production uses a real OIDC issuer.

use std::path::{Path, PathBuf};

use identity::{Claims, SigningKey};

/// The `iss` of development tokens.
pub(crate) const DEV_ISSUER: &str = "urn:switchboard:dev-issuer";
/// The audience of tokens for the platform (gateway and registry).
pub(crate) const PLATFORM_AUDIENCE: &str = "switchboard";
/// Group of the platform's own services (the gateway, self-registering servers).
pub(crate) const SERVICES_GROUP: &str = "switchboard-services";
/// Group of the people who operate the platform.
pub(crate) const ADMINS_GROUP: &str = "platform-admins";

pub(crate) fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("keys").join("dev-issuer.json")
}

pub(crate) fn load_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    Ok(SigningKey::load_or_create(&key_path(data_dir))?)
}

pub(crate) fn mint(
    key: &SigningKey,
    user: &str,
    groups: Vec<String>,
    ttl_seconds: u64,
) -> anyhow::Result<String> {
    Ok(key.sign(&Claims::new(
        DEV_ISSUER,
        user,
        PLATFORM_AUDIENCE,
        groups,
        ttl_seconds,
    ))?)
}

/// Trust in the development issuer, whose keys are known up front.
pub(crate) fn trusted_issuer(key: &SigningKey) -> identity::TrustedIssuer {
    identity::TrustedIssuer::new(
        DEV_ISSUER,
        identity::KeySource::Static(identity::jwks_document(&[key])),
    )
}

/// Registry credentials minting a short development token for `user` in `groups` per request.
pub(crate) fn credentials(
    key: SigningKey,
    user: &str,
    groups: Vec<String>,
) -> registry_client::Credentials {
    let key = std::sync::Arc::new(key);
    let user = user.to_owned();
    registry_client::Credentials::Mint(std::sync::Arc::new(move || {
        mint(&key, &user, groups.clone(), 300).map_err(|e| e.to_string())
    }))
}
