//! Sentence embeddings behind one trait; the default runs all-MiniLM-L6-v2 locally with candle.

pub mod batching;
pub mod cached;
pub mod minilm;
pub use memoryc_sequence_encoder::model_location;
#[cfg(test)]
pub(crate) mod test_support;
pub mod threads;

use async_trait::async_trait;

// Clone: one failed batch is reported to every caller that shared it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbeddingError {
    #[error("embedding model files could not be loaded from {path}: {reason}")]
    ModelLoad { path: String, reason: String },
    #[error("tokenisation failed: {0}")]
    Tokenize(String),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("embedding provider unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// Length of every vector this embedder returns.
    fn dimension(&self) -> usize;

    /// Embeds texts in one batch; vectors are L2-normalised and in input order.
    async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbeddingError>;

    /// [`Embedder::embed`] on behalf of one tenant (by id). A cache keeps each tenant's texts
    /// apart, so how fast a text embeds tells no tenant what another has embedded.
    async fn embed_for(
        &self,
        tenant_id: uuid::Uuid,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, EmbeddingError> {
        let _ = tenant_id;
        self.embed(texts).await
    }
}
