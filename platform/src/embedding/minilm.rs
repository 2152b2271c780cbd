//! placeholder
use super::{Embedder, EmbeddingError};
pub struct MiniLmEmbedder;
impl MiniLmEmbedder {
    pub fn load(_p: &std::path::Path) -> Result<Self, EmbeddingError> {
        Err(EmbeddingError::Inference("x".into()))
    }
}
#[async_trait::async_trait]
impl Embedder for MiniLmEmbedder {
    fn dimension(&self) -> usize {
        384
    }
    async fn embed(&self, _t: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        Err(EmbeddingError::Inference("x".into()))
    }
}
