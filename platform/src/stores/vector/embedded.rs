//! placeholder
use super::*;
pub struct EmbeddedVectorStore;
impl EmbeddedVectorStore {
    pub fn open(_p: std::path::PathBuf) -> Result<Self, VectorStoreError> {
        Ok(Self)
    }
    pub async fn flush(&self) -> Result<(), VectorStoreError> {
        Ok(())
    }
}
#[async_trait]
impl VectorStore for EmbeddedVectorStore {
    fn backend_name(&self) -> &'static str {
        "embedded"
    }
    async fn ensure_space(&self, _s: &VectorSpace) -> Result<(), VectorStoreError> {
        Ok(())
    }
    async fn upsert(&self, _s: &VectorSpace, _p: &[VectorPoint]) -> Result<(), VectorStoreError> {
        Ok(())
    }
    async fn delete(&self, _s: &VectorSpace, _i: &[Uuid]) -> Result<(), VectorStoreError> {
        Ok(())
    }
    async fn search(
        &self,
        _s: &VectorSpace,
        _q: &[f32],
        _l: usize,
        _f: &VectorFilter,
    ) -> Result<Vec<ScoredId>, VectorStoreError> {
        Ok(vec![])
    }
    async fn count(&self, _s: &VectorSpace) -> Result<u64, VectorStoreError> {
        Ok(0)
    }
    async fn drop_space(&self, _s: &VectorSpace) -> Result<(), VectorStoreError> {
        Ok(())
    }
    async fn health(&self) -> Result<(), VectorStoreError> {
        Ok(())
    }
}
