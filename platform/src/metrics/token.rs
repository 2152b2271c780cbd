//! The optional bearer token that guards `/metrics`. Only its SHA-256 digest is kept, and the
//! presented token is hashed before a constant-time comparison, so neither the token's bytes
//! nor its length can be learnt from response times.

use axum::http::HeaderValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum MetricsTokenError {
    #[error("metrics_token must not be blank; leave it unset to serve /metrics without a token")]
    Blank,
}

#[derive(Clone)]
pub struct MetricsToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken([redacted])")
    }
}

impl MetricsToken {
    /// A blank token is refused: it would be satisfied by an empty `Bearer` header.
    pub fn new(secret: &Secret) -> Result<Self, MetricsTokenError> {
        let token = secret.expose().trim();
        if token.is_empty() {
            return Err(MetricsTokenError::Blank);
        }
        Ok(Self {
            digest: digest(token),
        })
    }

    /// Whether an `Authorization` header carries this token as `Bearer <token>`.
    pub fn permits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(presented) = authorization
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_credentials)
        else {
            return false;
        };
        digest(presented).ct_eq(&self.digest).into()
    }
}

/// The credentials of a `Bearer` authorization; the scheme is case-insensitive (RFC 9110).
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credentials.trim())
        .filter(|credentials| !credentials.is_empty())
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> MetricsToken {
        MetricsToken::new(&Secret::new("scrape-me-please")).expect("not blank")
    }

    #[test]
    fn only_the_exact_bearer_token_is_permitted() {
        let token = token();
        let header = |value: &str| HeaderValue::from_str(value).expect("header");
        assert!(token.permits(Some(&header("Bearer scrape-me-please"))));
        assert!(token.permits(Some(&header("bearer scrape-me-please"))));
        assert!(!token.permits(None));
        assert!(!token.permits(Some(&header("Bearer scrape-me"))));
        assert!(!token.permits(Some(&header("Bearer scrape-me-please!"))));
        assert!(!token.permits(Some(&header("Basic scrape-me-please"))));
        assert!(!token.permits(Some(&header("scrape-me-please"))));
        assert!(!token.permits(Some(&header("Bearer "))));
    }

    #[test]
    fn blank_tokens_are_refused_and_never_printed() {
        assert!(MetricsToken::new(&Secret::new("  ")).is_err());
        assert!(!format!("{:?}", token()).contains("scrape"));
    }
}
