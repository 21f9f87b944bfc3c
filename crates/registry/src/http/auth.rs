//! Who is calling: an axum extractor that verifies the bearer token and yields the caller.

use std::sync::Arc;

use axum::{extract::FromRequestParts, http::request::Parts};
use catalog::Principal;

use crate::{RegistryState, http::error::ApiError};

/// The verified caller of a request, and the surface its token says it calls from.
pub(crate) struct Caller(pub(crate) Principal, pub(crate) String);

impl Caller {
    pub(crate) fn require_any(&self, groups: &[String], action: &str) -> Result<(), ApiError> {
        if self.0.in_any(groups) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "{} may not {action}: that needs membership in one of [{}]",
                self.0.user,
                groups.join(", ")
            )))
        }
    }
}

impl FromRequestParts<Arc<RegistryState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<RegistryState>,
    ) -> Result<Caller, ApiError> {
        let token = bearer_token(parts)
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        match state.verifier.verify(token).await {
            Ok(claims) => Ok(Caller(
                Principal {
                    user: claims.sub,
                    groups: claims.groups,
                },
                claims.surface.unwrap_or_else(registry_api::default_surface),
            )),
            Err(e) => {
                tracing::info!(reason = %e, "rejected registry caller");
                Err(ApiError::unauthorized(e.to_string()))
            }
        }
    }
}

pub(crate) fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}
