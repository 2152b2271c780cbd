//! BERT forward pass for one unpadded sequence, the query path's shape.
//!
//! A query is one short text. Run through a general batched pass, its handful of tokens meet
//! matrix multiplications built for large operands: every call re-packs the layer's weights
//! into the kernel's layout (about as much work as the multiplication itself at this size),
//! and every intermediate is a fresh tensor. This pass instead packs each weight matrix once,
//! at load, into the layout of its own kernel ([`kernel`]), and splits each product by output
//! columns over the rayon pool; bias and GELU are applied in the same sweep. The dense layers'
//! weights are kept in half precision (half the bytes to stream from memory, and a working set
//! that fits a server's last-level cache) and widened to f32 as they are read; everything
//! else, activations and sums included, stays f32. The arithmetic is otherwise the model's own
//! (exact erf GELU, LayerNorm with the config's epsilon), so the vectors agree with the batched
//! f32 pass to within the weights' rounding.

mod kernel;
pub mod model_location;
#[cfg(test)]
mod test_values;

use candle_core::DType;
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use half::f16;
use rayon::prelude::*;

use kernel::{PANEL, PackedWeights, multiply_panels};

/// Makes every later pass use the portable matrix kernel (`true`), or the AVX2/FMA/F16C one
/// where the CPU has those (`false`, the default). For measuring and testing the portable path
/// on machines that have AVX2.
pub fn use_portable_kernel(portable: bool) {
    kernel::use_portable_kernel(portable);
}

/// Weight panels per parallel task (96 output columns): few enough tasks to keep scheduling
/// cheap, enough to balance two to eight threads.
const PANELS_PER_TASK: usize = 6;
/// Lanes of the partial sums in [`dot`].
const LANES: usize = 8;

/// A linear layer: `weight` packed for [`multiply_panels`], `bias` one per output.
struct Dense {
    weight: PackedWeights,
    bias: Vec<f32>,
}

/// What to apply to each output after the bias.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Activation {
    Identity,
    Gelu,
}

struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

struct Layer {
    /// Query, key and value stacked: `3 × hidden` outputs.
    qkv: Dense,
    attention_output: Dense,
    attention_norm: Norm,
    intermediate: Dense,
    output: Dense,
    output_norm: Norm,
}

/// all-MiniLM-L6-v2's weights laid out for [`SequenceEncoder::mean_hidden_state`].
pub struct SequenceEncoder {
    /// The vocabulary's vectors, in half precision like the dense weights (a pass reads only
    /// its tokens' rows; this halves the largest table's memory).
    word_embeddings: Vec<f16>,
    position_embeddings: Vec<f32>,
    token_type_embeddings: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    max_positions: usize,
    vocab: usize,
    epsilon: f32,
}

impl SequenceEncoder {
    /// Copies the weights out of `weights` (the same safetensors the batched model loads).
    pub fn load(weights: &VarBuilder, config: &Config) -> candle_core::Result<Self> {
        let hidden = config.hidden_size;
        let get = |shape: &[usize], name: &str| -> candle_core::Result<Vec<f32>> {
            weights
                .get(shape, name)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()
        };
        let dense = |inputs: usize, outputs: usize, prefix: &str| -> candle_core::Result<Dense> {
            let weight = get(&[outputs, inputs], &format!("{prefix}.weight"))?;
            Ok(Dense {
                weight: PackedWeights::pack(&weight, outputs, inputs),
                bias: get(&[outputs], &format!("{prefix}.bias"))?,
            })
        };
        // Query, key and value stacked as one layer of `3 × hidden` outputs.
        let stacked = |prefix: &str| -> candle_core::Result<Dense> {
            let mut weight = Vec::with_capacity(3 * hidden * hidden);
            let mut bias = Vec::with_capacity(3 * hidden);
            for part in ["query", "key", "value"] {
                weight.extend(get(&[hidden, hidden], &format!("{prefix}.{part}.weight"))?);
                bias.extend(get(&[hidden], &format!("{prefix}.{part}.bias"))?);
            }
            Ok(Dense {
                weight: PackedWeights::pack(&weight, 3 * hidden, hidden),
                bias,
            })
        };
        let norm = |prefix: &str| -> candle_core::Result<Norm> {
            Ok(Norm {
                weight: get(&[hidden], &format!("{prefix}.weight"))?,
                bias: get(&[hidden], &format!("{prefix}.bias"))?,
            })
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for index in 0..config.num_hidden_layers {
            let prefix = format!("encoder.layer.{index}");
            layers.push(Layer {
                qkv: stacked(&format!("{prefix}.attention.self"))?,
                attention_output: dense(
                    hidden,
                    hidden,
                    &format!("{prefix}.attention.output.dense"),
                )?,
                attention_norm: norm(&format!("{prefix}.attention.output.LayerNorm"))?,
                intermediate: dense(
                    hidden,
                    config.intermediate_size,
                    &format!("{prefix}.intermediate.dense"),
                )?,
                output: dense(
                    config.intermediate_size,
                    hidden,
                    &format!("{prefix}.output.dense"),
                )?,
                output_norm: norm(&format!("{prefix}.output.LayerNorm"))?,
            });
        }
        Ok(Self {
            word_embeddings: narrow(get(
                &[config.vocab_size, hidden],
                "embeddings.word_embeddings.weight",
            )?),
            position_embeddings: get(
                &[config.max_position_embeddings, hidden],
                "embeddings.position_embeddings.weight",
            )?,
            token_type_embeddings: get(
                &[config.type_vocab_size, hidden],
                "embeddings.token_type_embeddings.weight",
            )?,
            embedding_norm: norm("embeddings.LayerNorm")?,
            layers,
            hidden,
            heads: config.num_attention_heads,
            max_positions: config.max_position_embeddings,
            vocab: config.vocab_size,
            epsilon: config.layer_norm_eps as f32,
        })
    }

    /// Mean of the last hidden states of `ids` (one sequence, segment 0, no padding).
    pub fn mean_hidden_state(&self, ids: &[u32]) -> Vec<f32> {
        let hidden = self.hidden;
        let rows = ids.len().min(self.max_positions);
        let mut states = vec![0f32; rows * hidden];
        for (position, (&id, row)) in ids.iter().zip(states.chunks_exact_mut(hidden)).enumerate() {
            let id = (id as usize).min(self.vocab - 1);
            let word = &self.word_embeddings[id * hidden..(id + 1) * hidden];
            let place = &self.position_embeddings[position * hidden..(position + 1) * hidden];
            let segment = &self.token_type_embeddings[..hidden];
            for (((out, w), p), s) in row.iter_mut().zip(word).zip(place).zip(segment) {
                *out = w.to_f32() + p + s;
            }
        }
        layer_norm(&mut states, &self.embedding_norm, hidden, self.epsilon);
        for layer in &self.layers {
            states = self.layer(layer, states, rows);
        }
        let mut mean = vec![0f32; hidden];
        for row in states.chunks_exact(hidden) {
            for (sum, value) in mean.iter_mut().zip(row) {
                *sum += value;
            }
        }
        let count = rows.max(1) as f32;
        mean.iter_mut().for_each(|value| *value /= count);
        mean
    }

    fn layer(&self, layer: &Layer, states: Vec<f32>, rows: usize) -> Vec<f32> {
        let hidden = self.hidden;
        let qkv = layer.qkv.apply(&states, rows, Activation::Identity);
        let context = self.attention(&qkv, rows);
        let mut attended = layer
            .attention_output
            .apply(&context, rows, Activation::Identity);
        add_into(&mut attended, &states);
        layer_norm(&mut attended, &layer.attention_norm, hidden, self.epsilon);
        let intermediate = layer.intermediate.apply(&attended, rows, Activation::Gelu);
        let mut output = layer
            .output
            .apply(&intermediate, rows, Activation::Identity);
        add_into(&mut output, &attended);
        layer_norm(&mut output, &layer.output_norm, hidden, self.epsilon);
        output
    }

    /// Scaled dot-product attention of every head; `qkv` rows hold query, key and value.
    fn attention(&self, qkv: &[f32], rows: usize) -> Vec<f32> {
        let hidden = self.hidden;
        let head_size = hidden / self.heads;
        let scale = 1.0 / (head_size as f32).sqrt();
        let stride = 3 * hidden;
        let heads: Vec<Vec<f32>> = (0..self.heads)
            .into_par_iter()
            .map(|head| {
                let column = head * head_size;
                let query = |row: usize| &qkv[row * stride + column..][..head_size];
                let key = |row: usize| &qkv[row * stride + hidden + column..][..head_size];
                let value = |row: usize| &qkv[row * stride + 2 * hidden + column..][..head_size];
                let mut context = vec![0f32; rows * head_size];
                let mut scores = vec![0f32; rows];
                for (row, out) in context.chunks_exact_mut(head_size).enumerate() {
                    let q = query(row);
                    for (other, score) in scores.iter_mut().enumerate() {
                        *score = dot(q, key(other)) * scale;
                    }
                    softmax(&mut scores);
                    for (other, &weight) in scores.iter().enumerate() {
                        for (o, v) in out.iter_mut().zip(value(other)) {
                            *o += weight * v;
                        }
                    }
                }
                context
            })
            .collect();
        let mut context = vec![0f32; rows * hidden];
        for (head, values) in heads.iter().enumerate() {
            for (row, chunk) in values.chunks_exact(head_size).enumerate() {
                context[row * hidden + head * head_size..][..head_size].copy_from_slice(chunk);
            }
        }
        context
    }
}

impl Dense {
    /// `rows × outputs` result of `input` (`rows × inputs`) through the layer.
    fn apply(&self, input: &[f32], rows: usize, activation: Activation) -> Vec<f32> {
        let outputs = self.weight.outputs();
        let panels = self.weight.panels();
        // Each task multiplies a range of panels into a block of its own, row-major, and
        // finishes it with bias and activation; the blocks are then placed side by side.
        let blocks: Vec<(usize, Vec<f32>)> = (0..panels.div_ceil(PANELS_PER_TASK))
            .into_par_iter()
            .map(|task| {
                let first = task * PANELS_PER_TASK;
                let count = (panels - first).min(PANELS_PER_TASK);
                let mut block = vec![0f32; rows * count * PANEL];
                multiply_panels(input, rows, &self.weight, first, count, &mut block);
                let bias = &self.bias[first * PANEL..outputs.min((first + count) * PANEL)];
                for values in block.chunks_exact_mut(count * PANEL) {
                    for (value, bias) in values.iter_mut().zip(bias) {
                        *value += bias;
                        if activation == Activation::Gelu {
                            *value = gelu(*value);
                        }
                    }
                }
                (first * PANEL, block)
            })
            .collect();
        let mut result = vec![0f32; rows * outputs];
        for (column, block) in blocks {
            let width = block.len() / rows.max(1);
            let used = width.min(outputs - column);
            for (target, source) in result
                .chunks_exact_mut(outputs)
                .zip(block.chunks_exact(width))
            {
                target[column..column + used].copy_from_slice(&source[..used]);
            }
        }
        result
    }
}

fn narrow(values: Vec<f32>) -> Vec<f16> {
    values.into_iter().map(f16::from_f32).collect()
}

/// Dot product in `LANES` independent partial sums, which the compiler can keep in one vector
/// register (a single running sum is a chain of dependent additions it may not reorder).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, a_tail) = a.as_chunks::<LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<LANES>();
    let mut lanes = [0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for lane in 0..LANES {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

fn softmax(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0f32;
    for value in values.iter_mut() {
        *value = (*value - max).exp();
        total += *value;
    }
    values.iter_mut().for_each(|value| *value /= total);
}

/// GELU as the model was trained with, `x/2 · (1 + erf(x/√2))`.
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf for f32 as a rational function of x on [-4, 4] (beyond which erf is ±1 in f32): a
/// branch-free form the compiler vectorises, within a few f32 ulps of the exact value
/// (the well-known minimax fit used by Eigen and XLA; the tests bound its error against libm).
fn erf(x: f32) -> f32 {
    const ALPHA: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.9546e-3,
        -1.609_603_3e-2,
    ];
    const BETA: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329e-3,
        -1.426_473_9e-2,
    ];
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ALPHA.iter().fold(0.0, |acc, &c| acc * x2 + c) * x;
    let q = BETA.iter().fold(0.0, |acc, &c| acc * x2 + c);
    p / q
}

fn add_into(target: &mut [f32], addend: &[f32]) {
    target.iter_mut().zip(addend).for_each(|(t, a)| *t += a);
}

fn layer_norm(states: &mut [f32], norm: &Norm, hidden: usize, epsilon: f32) {
    for row in states.chunks_exact_mut(hidden) {
        let mean = row.iter().sum::<f32>() / hidden as f32;
        let variance = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / hidden as f32;
        let inverse = 1.0 / (variance + epsilon).sqrt();
        for ((value, weight), bias) in row.iter_mut().zip(&norm.weight).zip(&norm.bias) {
            *value = (*value - mean) * inverse * weight + bias;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_values::values;

    fn wide(weights: &[f16]) -> Vec<f32> {
        weights.iter().map(|w| w.to_f32()).collect()
    }

    #[test]
    fn half_precision_weights_keep_three_significant_digits() {
        let original = values(10_000, 9);
        let narrowed = narrow(original.clone());
        for (before, after) in original.iter().zip(wide(&narrowed)) {
            // f16 has an 11-bit significand: relative error at most 2^-11 (normal numbers),
            // absolute at most 2^-25 near zero (subnormals).
            assert!(
                (before - after).abs() <= before.abs() / 2048.0 + 3e-8,
                "{before} became {after}"
            );
        }
    }

    #[test]
    fn dense_layers_add_the_bias_and_apply_gelu() {
        // 200 outputs: several tasks, the last panel partly beyond the matrix.
        let (rows, inputs, outputs) = (7, 16, 200);
        let weight = values(outputs * inputs, 3);
        let rounded = wide(&narrow(weight.clone()));
        let layer = Dense {
            weight: PackedWeights::pack(&weight, outputs, inputs),
            bias: values(outputs, 4),
        };
        let input = values(rows * inputs, 5);
        for activation in [Activation::Identity, Activation::Gelu] {
            let result = layer.apply(&input, rows, activation);
            assert_eq!(result.len(), rows * outputs);
            for row in 0..rows {
                for output in 0..outputs {
                    let plain: f64 = (0..inputs)
                        .map(|i| {
                            f64::from(input[row * inputs + i])
                                * f64::from(rounded[output * inputs + i])
                        })
                        .sum();
                    let mut want = plain as f32 + layer.bias[output];
                    if activation == Activation::Gelu {
                        want = 0.5 * want * (1.0 + libm::erff(want / std::f32::consts::SQRT_2));
                    }
                    let got = result[row * outputs + output];
                    assert!(
                        (got - want).abs() <= 1e-4,
                        "[{row}, {output}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn erf_stays_within_a_few_ulps_of_libm() {
        let mut worst = 0f32;
        for step in -60_000..=60_000 {
            let x = step as f32 * 1e-4;
            worst = worst.max((erf(x) - libm::erff(x)).abs());
        }
        assert!(worst < 1e-6, "largest error {worst}");
        // Clamped beyond ±4, where erf is 1 to f32 precision.
        assert!((erf(9.0) - 1.0).abs() < 1e-6 && (erf(-9.0) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn dot_products_and_softmax_are_exact_enough() {
        let (a, b) = (values(37, 6), values(37, 7));
        let want: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        assert!((f64::from(dot(&a, &b)) - want).abs() < 1e-5);
        // Shifted by the maximum, so large scores cannot overflow exp.
        let mut scores = vec![1.0, 2.0, 3.0, 100.0];
        softmax(&mut scores);
        assert!((scores.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(scores[3] > 0.999 && scores[0] < scores[1] && scores[1] < scores[2]);
        let mut even = vec![0.5; 4];
        softmax(&mut even);
        assert!(even.iter().all(|p| (p - 0.25).abs() < 1e-7));
    }
}
