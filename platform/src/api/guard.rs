//! The one gate in front of every `/api/v1` route: find the route's permission, authenticate
//! the caller, ask the policy, and hand the decision to the handler. Deny is the default: a
//! route without a row in [`super::permissions`] is refused.

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::permissions;
use super::state::AppState;
use crate::auth::Principal;
use crate::auth::access;
use crate::auth::permission::Requirement;
use crate::services::authentication::AuthFailure;

/// Header carrying an API key.
pub const API_KEY_HEADER: &str = "x-api-key";

pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|matched| permissions::lookup(request.method(), matched.as_str()));
    let Some(route) = route else {
        tracing::error!(method = %request.method(), path = %request.uri().path(),
            "route has no row in the permission table; denying");
        return ApiError::forbidden().into_response();
    };
    if route.requirement == Requirement::Public {
        return next.run(request).await;
    }
    let principal = match authenticate(&state, request.headers()).await {
        Ok(principal) => principal,
        Err(error) => return error.into_response(),
    };
    match access::decide(&state.policy, &principal, route.requirement) {
        Ok(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        Err(denial) => {
            tracing::info!(%denial, credential = %principal.credential_label(), route = route.path,
                method = %route.method, "request denied");
            ApiError::forbidden().into_response()
        }
    }
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let api_key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let result = match (api_key, bearer) {
        (Some(key), _) => state.authenticator.api_key(key.trim()).await,
        (None, Some(token)) => state.authenticator.bearer(token.trim()).await,
        (None, None) => Err(AuthFailure::Missing),
    };
    result.map_err(|failure| match failure {
        AuthFailure::Service(error) => error.into(),
        AuthFailure::Missing | AuthFailure::Invalid => ApiError::unauthorized(),
    })
}
