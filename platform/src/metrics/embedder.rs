//! Times the embedding model. [`MeteredEmbedder`] wraps the model itself, inside the batching
//! and the cache, so each observation is one real inference batch and cached texts, which
//! never reach the model, are not counted as embedded.

use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::PlatformMetrics;
use crate::embedding::{Embedder, EmbeddingError};

impl PlatformMetrics {
    /// Observes one model call that took `elapsed` and produced `texts` vectors (0 when it
    /// failed: its time still counts, its texts were not embedded).
    pub fn record_embedding(&self, elapsed: Duration, texts: u64) {
        self.families
            .embedding_duration
            .observe(elapsed.as_secs_f64());
        self.families.embedded_texts.inc_by(texts);
    }
}

/// An [`Embedder`] that records every call of the one it wraps.
pub struct MeteredEmbedder<E: Embedder> {
    inner: E,
    metrics: PlatformMetrics,
}

impl<E: Embedder> MeteredEmbedder<E> {
    pub fn new(inner: E, metrics: PlatformMetrics) -> Self {
        Self { inner, metrics }
    }

    /// The wrapped embedder.
    pub fn inner(&self) -> &E {
        &self.inner
    }
}

#[async_trait]
impl<E: Embedder> Embedder for MeteredEmbedder<E> {
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let started = Instant::now();
        let result = self.inner.embed(texts).await;
        let embedded = result.as_ref().map_or(0, Vec::len);
        self.metrics.record_embedding(
            started.elapsed(),
            u64::try_from(embedded).unwrap_or(u64::MAX),
        );
        result
    }
}

#[cfg(test)]
mod tests {
    use memoryc_crds::contract::platform_metrics::{EMBEDDED_TEXTS, EMBEDDING_DURATION};

    use super::super::test_support::sample;
    use super::*;

    /// Answers a unit vector per text, or fails on request.
    struct FixedEmbedder {
        fail: bool,
    }

    #[async_trait]
    impl Embedder for FixedEmbedder {
        fn dimension(&self) -> usize {
            2
        }

        async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
            if self.fail {
                return Err(EmbeddingError::Unavailable("down".to_string()));
            }
            Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
        }
    }

    #[tokio::test]
    async fn counts_embedded_texts_and_times_every_call() {
        let metrics = PlatformMetrics::new();
        let working = MeteredEmbedder::new(FixedEmbedder { fail: false }, metrics.clone());
        let failing = MeteredEmbedder::new(FixedEmbedder { fail: true }, metrics.clone());
        let vectors = working
            .embed(vec!["a".to_string(), "b".to_string(), "c".to_string()])
            .await
            .expect("embeds");
        assert_eq!(vectors.len(), 3);
        assert_eq!(working.dimension(), 2);
        assert!(failing.embed(vec!["d".to_string()]).await.is_err());
        let text = metrics.render().expect("renders");
        assert_eq!(sample(&text, EMBEDDED_TEXTS, &[]), Some(3.0), "{text}");
        let calls = format!("{EMBEDDING_DURATION}_count");
        assert_eq!(sample(&text, &calls, &[]), Some(2.0));
    }
}
