//! placeholder
use super::{Embedder, EmbeddingError};
pub struct BatchingEmbedder<E>(E);
impl<E: Embedder> BatchingEmbedder<E> {
    pub fn new(e: E, _n: usize) -> Self {
        Self(e)
    }
}
#[async_trait::async_trait]
impl<E: Embedder> Embedder for BatchingEmbedder<E> {
    fn dimension(&self) -> usize {
        384
    }
    async fn embed(&self, t: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        self.0.embed(t).await
    }
}
