//! `/v1/access` ("may user U use server X?") and `/v1/discovery` ("what may I use?").

use std::sync::Arc;

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
};
use catalog::Principal;
use registry_api::{AccessAnswer, AccessQuery, Discovery};

use crate::{
    RegistryState,
    http::{auth::Caller, error::ApiError},
    service,
};

pub(crate) async fn check(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    query: Result<Query<AccessQuery>, QueryRejection>,
) -> Result<Json<AccessAnswer>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let who = Principal {
        user: q.user,
        groups: catalog::parse_groups(&q.groups),
    };
    let server = state.store.get_server(&q.server).await?;
    Ok(Json(service::access(&who, &server, q.tool.as_deref())))
}

pub(crate) async fn discovery(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
) -> Result<Json<Discovery>, ApiError> {
    let who = caller.0;
    let servers = service::discover(&who, state.store.list_servers().await?);
    Ok(Json(Discovery {
        user: who.user,
        groups: who.groups,
        servers,
    }))
}
