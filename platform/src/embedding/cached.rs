//! An in-process cache in front of an [`Embedder`]: the same text always has the same vector,
//! so repeated searches and repeated writes skip the model. Nothing ever needs invalidating.
//! Entries are kept per tenant ([`Embedder::embed_for`]): a fast answer never tells a tenant
//! that another one embedded the same text.

use std::sync::Arc;

use async_trait::async_trait;
use quick_cache::sync::Cache;
use uuid::Uuid;

use super::{Embedder, EmbeddingError};

/// Longest text cached; long texts are rarely repeated and would crowd out short queries.
const MAX_CACHED_CHARS: usize = 1_000;

pub struct CachedEmbedder<E: Embedder> {
    inner: E,
    /// By tenant id (nil for texts of no tenant) and text.
    vectors: Cache<(Uuid, String), Arc<Vec<f32>>>,
}

impl<E: Embedder> CachedEmbedder<E> {
    /// Keeps up to `capacity` vectors (least recently used go first).
    pub fn new(inner: E, capacity: usize) -> Self {
        Self {
            inner,
            vectors: Cache::new(capacity.max(1)),
        }
    }

    pub fn inner(&self) -> &E {
        &self.inner
    }
}

#[async_trait]
impl<E: Embedder> Embedder for CachedEmbedder<E> {
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        self.embed_for(Uuid::nil(), texts).await
    }

    async fn embed_for(
        &self,
        tenant_id: Uuid,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let mut vectors: Vec<Option<Vec<f32>>> = texts
            .iter()
            .map(|t| {
                self.vectors
                    .get(&(tenant_id, t.clone()))
                    .map(|v| v.as_ref().clone())
            })
            .collect();
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| vectors[i].is_none()).collect();
        if !missing.is_empty() {
            let fresh = self
                .inner
                .embed(missing.iter().map(|&i| texts[i].clone()).collect())
                .await?;
            if fresh.len() != missing.len() {
                return Err(EmbeddingError::Inference(format!(
                    "asked for {} vectors, got {}",
                    missing.len(),
                    fresh.len()
                )));
            }
            for (&index, vector) in missing.iter().zip(fresh) {
                if texts[index].chars().count() <= MAX_CACHED_CHARS {
                    self.vectors
                        .insert((tenant_id, texts[index].clone()), Arc::new(vector.clone()));
                }
                vectors[index] = Some(vector);
            }
        }
        Ok(vectors.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::embedding::test_support::model;

    /// The real model, counting the texts it is asked to embed.
    struct Counting<E: Embedder> {
        inner: E,
        texts: AtomicUsize,
    }

    #[async_trait]
    impl<E: Embedder> Embedder for Counting<E> {
        fn dimension(&self) -> usize {
            self.inner.dimension()
        }
        async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
            self.texts.fetch_add(texts.len(), Ordering::SeqCst);
            self.inner.embed(texts).await
        }
    }

    #[tokio::test]
    async fn repeated_texts_are_embedded_once_and_answer_identically() {
        let cached = CachedEmbedder::new(
            Counting {
                inner: model(),
                texts: AtomicUsize::new(0),
            },
            100,
        );
        let first = cached
            .embed(vec![
                "dark mode".to_string(),
                "deploys on friday".to_string(),
            ])
            .await
            .expect("embeds");
        let second = cached
            .embed(vec![
                "deploys on friday".to_string(),
                "a new text".to_string(),
                "dark mode".to_string(),
            ])
            .await
            .expect("embeds");
        assert_eq!(
            cached.inner().texts.load(Ordering::SeqCst),
            3,
            "only the new text hits the model"
        );
        assert_eq!(second[0], first[1]);
        assert_eq!(second[2], first[0]);
        assert_eq!(second.len(), 3);
        let direct = model()
            .embed(vec!["a new text".to_string()])
            .await
            .expect("embeds");
        assert_eq!(second[1], direct[0]);
    }

    #[tokio::test]
    async fn each_tenant_has_its_own_entries() {
        let cached = CachedEmbedder::new(
            Counting {
                inner: model(),
                texts: AtomicUsize::new(0),
            },
            100,
        );
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let text = || vec!["the launch is on monday".to_string()];
        let for_a = cached.embed_for(a, text()).await.expect("embeds");
        let for_b = cached.embed_for(b, text()).await.expect("embeds");
        assert_eq!(
            cached.inner().texts.load(Ordering::SeqCst),
            2,
            "b's text is not served from a's entry"
        );
        assert_eq!(for_a, for_b, "the same text has the same vector");
        cached.embed_for(a, text()).await.expect("embeds");
        assert_eq!(
            cached.inner().texts.load(Ordering::SeqCst),
            2,
            "a's own entry"
        );
    }
}
