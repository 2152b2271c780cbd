//! Bearer JWTs: HS256 with a shared secret, RS256 and ES256 with public keys from a JWKS file or
//! URL. Checks the signature, `exp` and `nbf` (with bounded clock skew), `iss` and `aud` when
//! configured; the key is chosen by the token's algorithm family so an HMAC secret can never
//! verify an RS256/ES256 token or the other way round.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::secret::Secret;

/// Most clock skew tolerated on `exp` and `nbf`, whatever the configuration says.
pub const MAX_LEEWAY_SECONDS: u64 = 300;
/// A JWKS URL is fetched again at most this often when a token names an unknown key.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(30);
/// A JWKS URL is fetched again when its keys are older than this (key rotation, removal).
const JWKS_MAX_AGE: Duration = Duration::from_secs(15 * 60);
/// Wait after the first failed JWKS fetch before the next try; doubled per failure.
const JWKS_FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between failed JWKS fetches.
const JWKS_MAX_BACKOFF: Duration = Duration::from_secs(5 * 60);

/// When the JWKS may be fetched again after failures: tokens arriving meanwhile are checked
/// against the keys already loaded and never each cause a fetch.
#[derive(Debug, Clone, Copy)]
struct FetchBackoff {
    failed_at: Option<Instant>,
    wait: Duration,
}

impl FetchBackoff {
    const fn new() -> Self {
        Self {
            failed_at: None,
            wait: Duration::ZERO,
        }
    }

    fn may_try(&self, now: Instant) -> bool {
        self.failed_at
            .is_none_or(|failed_at| now.duration_since(failed_at) >= self.wait)
    }

    fn failed(&mut self, now: Instant) {
        self.wait = if self.wait.is_zero() {
            JWKS_FIRST_BACKOFF
        } else {
            (self.wait * 2).min(JWKS_MAX_BACKOFF)
        };
        self.failed_at = Some(now);
    }

    fn succeeded(&mut self) {
        *self = Self::new();
    }
}

#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    pub hs256_secret: Option<Secret>,
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway_seconds: u64,
}

impl JwtSettings {
    pub fn is_enabled(&self) -> bool {
        self.hs256_secret.is_some() || self.jwks_file.is_some() || self.jwks_url.is_some()
    }
}

/// The claims the platform reads. Unknown claims are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// The tenant's name; absent only for platform operators.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("JWT configuration: {0}")]
    Config(String),
    #[error("cannot load the JWKS from {source_name}: {reason}")]
    Jwks { source_name: String, reason: String },
    #[error("token refused: {0}")]
    Refused(String),
}

enum JwksSource {
    None,
    File(PathBuf),
    Url(String),
}

struct JwksKeys {
    set: JwkSet,
    fetched: Instant,
}

pub struct JwtVerifier {
    hmac: Option<DecodingKey>,
    jwks: ArcSwap<JwksKeys>,
    source: JwksSource,
    http: reqwest::Client,
    /// Held while fetching (one fetch at a time); remembers failures to back off.
    refetch: tokio::sync::Mutex<FetchBackoff>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl JwtVerifier {
    /// Loads the keys; a JWKS URL that cannot be reached now is retried on the first token.
    pub async fn new(settings: &JwtSettings) -> Result<Self, JwtError> {
        if settings.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(JwtError::Config(format!(
                "security.jwt_leeway is {}s; at most {MAX_LEEWAY_SECONDS}s is allowed",
                settings.leeway_seconds
            )));
        }
        let hmac = match &settings.hs256_secret {
            Some(secret) if secret.expose().len() < 32 => {
                return Err(JwtError::Config(
                    "jwt_hs256_secret must be at least 32 bytes".to_string(),
                ));
            }
            Some(secret) => Some(DecodingKey::from_secret(secret.expose().as_bytes())),
            None => None,
        };
        let source = match (&settings.jwks_file, &settings.jwks_url) {
            (Some(_), Some(_)) => {
                return Err(JwtError::Config(
                    "set jwt_jwks_file or jwt_jwks_url, not both".to_string(),
                ));
            }
            (Some(file), None) => JwksSource::File(file.clone()),
            (None, Some(url)) => JwksSource::Url(url.clone()),
            (None, None) => JwksSource::None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| JwtError::Config(format!("HTTP client: {e}")))?;
        let verifier = Self {
            hmac,
            jwks: ArcSwap::from_pointee(JwksKeys {
                set: JwkSet { keys: Vec::new() },
                fetched: Instant::now(),
            }),
            source,
            http,
            refetch: tokio::sync::Mutex::new(FetchBackoff::new()),
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway_seconds,
        };
        match (&verifier.source, verifier.load_jwks().await) {
            (_, Ok(())) => {}
            (JwksSource::File(_), Err(error)) => return Err(error),
            (_, Err(error)) => {
                tracing::warn!(%error, "JWKS not loaded yet; RS256/ES256 tokens are refused until it is");
            }
        }
        Ok(verifier)
    }

    /// The token's claims when its signature and claims are valid.
    pub async fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| JwtError::Refused(format!("malformed: {e}")))?;
        let key = match header.alg {
            Algorithm::HS256 => self
                .hmac
                .clone()
                .ok_or_else(|| JwtError::Refused("HS256 is not configured".to_string()))?,
            Algorithm::RS256 | Algorithm::ES256 => {
                self.public_key(header.alg, header.kid.as_deref()).await?
            }
            other => {
                return Err(JwtError::Refused(format!(
                    "algorithm {other:?} is not accepted"
                )));
            }
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation(header.alg))
            .map_err(|e| JwtError::Refused(e.to_string()))?;
        Ok(data.claims)
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        // Without a configured audience, a token that names one is refused (jsonwebtoken's
        // default): it was meant for some other service.
        if let Some(audience) = &self.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The JWKS key for the token: by `kid`, or the only key of the right type.
    async fn public_key(
        &self,
        algorithm: Algorithm,
        kid: Option<&str>,
    ) -> Result<DecodingKey, JwtError> {
        if self.jwks.load().fetched.elapsed() > JWKS_MAX_AGE {
            self.refetch_jwks(JWKS_MAX_AGE).await;
        }
        if let Some(key) = find_key(&self.jwks.load().set, algorithm, kid)? {
            return Ok(key);
        }
        // An unknown key may be a rotation the cached set has not seen yet.
        self.refetch_jwks(JWKS_MIN_REFETCH).await;
        find_key(&self.jwks.load().set, algorithm, kid)?
            .ok_or_else(|| JwtError::Refused("no matching key in the JWKS".to_string()))
    }

    async fn refetch_jwks(&self, older_than: Duration) {
        if matches!(self.source, JwksSource::None) {
            return;
        }
        let mut backoff = self.refetch.lock().await;
        if self.jwks.load().fetched.elapsed() < older_than && !self.jwks.load().set.keys.is_empty()
        {
            return;
        }
        if !backoff.may_try(Instant::now()) {
            return;
        }
        match self.load_jwks().await {
            Ok(()) => backoff.succeeded(),
            Err(error) => {
                backoff.failed(Instant::now());
                tracing::warn!(%error, retry_in = ?backoff.wait,
                    "JWKS refresh failed; keeping the keys loaded before");
            }
        }
    }

    async fn load_jwks(&self) -> Result<(), JwtError> {
        let (name, text) = match &self.source {
            JwksSource::None => return Ok(()),
            JwksSource::File(path) => (
                path.display().to_string(),
                tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| JwtError::Jwks {
                        source_name: path.display().to_string(),
                        reason: e.to_string(),
                    })?,
            ),
            JwksSource::Url(url) => (redacted(url), self.fetch(url).await?),
        };
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| JwtError::Jwks {
            source_name: name.clone(),
            reason: e.to_string(),
        })?;
        self.jwks.store(Arc::new(JwksKeys {
            set,
            fetched: Instant::now(),
        }));
        tracing::info!(source = %name, "JWKS loaded");
        Ok(())
    }

    async fn fetch(&self, url: &str) -> Result<String, JwtError> {
        let failed = |reason: String| JwtError::Jwks {
            source_name: redacted(url),
            reason,
        };
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        response.text().await.map_err(|e| failed(e.to_string()))
    }
}

/// The URL without credentials or query, fit for logs and errors.
fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.path()
        ),
        Err(_) => "<invalid JWKS URL>".to_string(),
    }
}

fn find_key(
    set: &JwkSet,
    algorithm: Algorithm,
    kid: Option<&str>,
) -> Result<Option<DecodingKey>, JwtError> {
    let fits = |jwk: &jsonwebtoken::jwk::Jwk| match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        _ => false,
    };
    let candidates: Vec<_> = set
        .keys
        .iter()
        .filter(|jwk| fits(jwk))
        .filter(|jwk| kid.is_none() || jwk.common.key_id.as_deref() == kid)
        .collect();
    // Without a `kid`, only an unambiguous key is used.
    let jwk = match (kid, candidates.as_slice()) {
        (_, [only]) => *only,
        (Some(_), [first, ..]) => *first,
        _ => return Ok(None),
    };
    DecodingKey::from_jwk(jwk)
        .map(Some)
        .map_err(|e| JwtError::Refused(format!("unusable JWKS key: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JwtSettings {
        JwtSettings {
            hs256_secret: Some(Secret::new("a-test-secret-that-is-32-bytes-long")),
            leeway_seconds: 30,
            ..JwtSettings::default()
        }
    }

    #[test]
    fn jwks_urls_are_logged_without_credentials() {
        assert_eq!(
            redacted("https://user:pw@idp.example/keys.json?token=x"),
            "https://idp.example/keys.json"
        );
        assert_eq!(redacted("not a url"), "<invalid JWKS URL>");
    }

    #[test]
    fn failed_fetches_back_off_exponentially_up_to_a_ceiling() {
        let start = Instant::now();
        let mut backoff = FetchBackoff::new();
        assert!(backoff.may_try(start));
        backoff.failed(start);
        assert!(!backoff.may_try(start + Duration::from_millis(500)));
        assert!(backoff.may_try(start + Duration::from_secs(1)));
        backoff.failed(start);
        assert!(!backoff.may_try(start + Duration::from_millis(1_500)));
        assert!(backoff.may_try(start + Duration::from_secs(2)));
        for _ in 0..20 {
            backoff.failed(start);
        }
        assert_eq!(backoff.wait, JWKS_MAX_BACKOFF);
        backoff.succeeded();
        assert!(backoff.may_try(start));
    }

    #[tokio::test]
    async fn clock_skew_is_bounded_and_weak_secrets_are_refused() {
        assert!(JwtVerifier::new(&settings()).await.is_ok());
        let lenient = JwtSettings {
            leeway_seconds: MAX_LEEWAY_SECONDS + 1,
            ..settings()
        };
        assert!(matches!(
            JwtVerifier::new(&lenient).await,
            Err(JwtError::Config(_))
        ));
        let weak = JwtSettings {
            hs256_secret: Some(Secret::new("short")),
            ..settings()
        };
        assert!(matches!(
            JwtVerifier::new(&weak).await,
            Err(JwtError::Config(_))
        ));
        let both = JwtSettings {
            jwks_file: Some(PathBuf::from("a.json")),
            jwks_url: Some("http://127.0.0.1:1/jwks".to_string()),
            ..settings()
        };
        assert!(matches!(
            JwtVerifier::new(&both).await,
            Err(JwtError::Config(_))
        ));
        let missing = JwtSettings {
            jwks_file: Some(PathBuf::from("/nonexistent/jwks.json")),
            ..settings()
        };
        assert!(matches!(
            JwtVerifier::new(&missing).await,
            Err(JwtError::Jwks { .. })
        ));
    }
}
