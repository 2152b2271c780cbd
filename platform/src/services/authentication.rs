//! Turning a presented credential (an API key; a bearer JWT) into a [`Principal`].

use std::sync::Arc;

use super::ServiceError;
use super::api_keys::ApiKeyService;
use crate::auth::Principal;

/// Why a credential was refused. Deliberately coarse: callers learn nothing about which part
/// of a credential was wrong.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credential was presented")]
    Missing,
    #[error("the credential is not valid")]
    Invalid,
    #[error(transparent)]
    Service(#[from] ServiceError),
}

pub struct Authenticator {
    keys: Arc<ApiKeyService>,
}

impl Authenticator {
    pub fn new(keys: Arc<ApiKeyService>) -> Self {
        Self { keys }
    }

    pub async fn api_key(&self, presented: &str) -> Result<Principal, AuthFailure> {
        self.keys
            .authenticate(presented)
            .await?
            .ok_or(AuthFailure::Invalid)
    }

    pub async fn bearer(&self, _token: &str) -> Result<Principal, AuthFailure> {
        Err(AuthFailure::Invalid)
    }
}
