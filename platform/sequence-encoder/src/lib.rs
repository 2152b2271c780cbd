//! BERT forward pass for one unpadded sequence, the query path's shape.
//!
//! A query is one short text. Run through a general batched pass, its handful of tokens meet
//! matrix multiplications built for large operands: every call re-packs the layer's weights
//! into the kernel's layout (about as much work as the multiplication itself at this size),
//! and every intermediate is a fresh tensor. This pass instead reads each weight matrix in
//! its stored row-major layout, once, with dot products over several token rows and output
//! rows at a time, split by output rows over the rayon pool; bias, GELU and residual adds are
//! applied in the same sweep. With so few token rows the pass is bound by reading the weights
//! from memory, not by arithmetic, so the dense layers' weights are kept in half precision
//! (half the bytes to stream, and a working set that fits a server's last-level cache) and
//! widened to f32 as they are read; everything else, activations and sums included, stays f32.
//! The arithmetic is otherwise the model's own (exact erf GELU, LayerNorm with the config's
//! epsilon), so the vectors agree with the batched f32 pass to within the weights' rounding.

use candle_core::DType;
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use half::f16;
use rayon::prelude::*;

/// Output rows per parallel task: few enough tasks to keep scheduling cheap, enough to balance.
const OUTPUTS_PER_TASK: usize = 96;
/// Token rows and output rows of one register tile: 3 × 3 accumulators of 8 lanes, which with
/// the 3 + 3 operands fit the 16 vector registers of x86-64 AVX2.
const TILE_ROWS: usize = 3;
const TILE_OUTPUTS: usize = 3;
const LANES: usize = 8;

/// A linear layer: `weight` is `outputs × inputs`, row-major, as stored, in half precision.
struct Dense {
    weight: Vec<f16>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
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
            Ok(Dense {
                weight: narrow(get(&[outputs, inputs], &format!("{prefix}.weight"))?),
                bias: get(&[outputs], &format!("{prefix}.bias"))?,
                inputs,
                outputs,
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
            let query = dense(hidden, hidden, &format!("{prefix}.attention.self.query"))?;
            let key = dense(hidden, hidden, &format!("{prefix}.attention.self.key"))?;
            let value = dense(hidden, hidden, &format!("{prefix}.attention.self.value"))?;
            let qkv = Dense {
                weight: [query.weight, key.weight, value.weight].concat(),
                bias: [query.bias, key.bias, value.bias].concat(),
                inputs: hidden,
                outputs: 3 * hidden,
            };
            layers.push(Layer {
                qkv,
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
        // Each task fills a block of output rows, stored output-major, then the blocks are
        // transposed into the row-major result.
        let mut transposed = vec![0f32; self.outputs * rows];
        transposed
            .par_chunks_mut(OUTPUTS_PER_TASK * rows)
            .enumerate()
            .for_each(|(task, block)| {
                let first = task * OUTPUTS_PER_TASK;
                let count = block.len() / rows.max(1);
                let weights = &self.weight[first * self.inputs..(first + count) * self.inputs];
                multiply_block(input, rows, weights, count, self.inputs, block);
                for (offset, outputs) in block.chunks_exact_mut(rows).enumerate() {
                    let bias = self.bias[first + offset];
                    for value in outputs {
                        *value += bias;
                        if activation == Activation::Gelu {
                            *value = gelu(*value);
                        }
                    }
                }
            });
        let mut result = vec![0f32; rows * self.outputs];
        for (output, values) in transposed.chunks_exact(rows).enumerate() {
            for (row, &value) in values.iter().enumerate() {
                result[row * self.outputs + output] = value;
            }
        }
        result
    }
}

fn narrow(values: Vec<f32>) -> Vec<f16> {
    values.into_iter().map(f16::from_f32).collect()
}

/// `out[o * rows + r] = Σ input[r, ·] · weights[o, ·]`, with AVX2, FMA and F16C when the CPU
/// has them.
fn multiply_block(
    input: &[f32],
    rows: usize,
    weights: &[f16],
    outputs: usize,
    inputs: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
    {
        // SAFETY: the CPU supports the features the function is compiled for (checked above).
        unsafe { multiply_block_simd(input, rows, weights, outputs, inputs, out) };
        return;
    }
    multiply_block_portable(input, rows, weights, outputs, inputs, out);
}

/// [`multiply_block_portable`]'s tiling written with AVX2, FMA and F16C intrinsics: each tile's
/// weight rows are widened from half precision once, into a buffer that stays in L1 while every
/// token row passes over it.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn multiply_block_simd(
    input: &[f32],
    rows: usize,
    weights: &[f16],
    outputs: usize,
    inputs: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::{
        __m128i, __m256, _mm_loadu_si128, _mm256_cvtph_ps, _mm256_fmadd_ps, _mm256_loadu_ps,
        _mm256_setzero_ps, _mm256_storeu_ps,
    };
    let chunks = inputs / LANES;
    let tail_start = chunks * LANES;
    let mut widened = vec![0f32; TILE_OUTPUTS * inputs];
    let mut output = 0;
    while output < outputs {
        let width = (outputs - output).min(TILE_OUTPUTS);
        let tile_weights: [&[f16]; TILE_OUTPUTS] = tile_of(weights, inputs, output, width);
        for (source, target) in tile_weights.iter().zip(widened.chunks_exact_mut(inputs)) {
            for chunk in 0..chunks {
                let offset = chunk * LANES;
                // SAFETY: `offset + LANES <= inputs`, the length of both slices; eight f16 are
                // the 16 bytes of one unaligned load, eight f32 the 32 bytes of one store.
                unsafe {
                    let packed = _mm_loadu_si128(source.as_ptr().add(offset).cast::<__m128i>());
                    _mm256_storeu_ps(target.as_mut_ptr().add(offset), _mm256_cvtph_ps(packed));
                }
            }
        }
        let mut row = 0;
        while row < rows {
            let height = (rows - row).min(TILE_ROWS);
            let tile_rows: [&[f32]; TILE_ROWS] = tile_of(input, inputs, row, height);
            let mut sums: [[__m256; TILE_OUTPUTS]; TILE_ROWS] =
                [[_mm256_setzero_ps(); TILE_OUTPUTS]; TILE_ROWS];
            for chunk in 0..chunks {
                let offset = chunk * LANES;
                let mut x = [_mm256_setzero_ps(); TILE_ROWS];
                for (value, source) in x.iter_mut().zip(&tile_rows) {
                    // SAFETY: `offset + LANES <= tail_start <= inputs`, the slice's length.
                    *value = unsafe { _mm256_loadu_ps(source.as_ptr().add(offset)) };
                }
                let mut w = [_mm256_setzero_ps(); TILE_OUTPUTS];
                for (k, value) in w.iter_mut().enumerate() {
                    // SAFETY: `widened` holds `TILE_OUTPUTS` rows of `inputs`; as above.
                    *value = unsafe { _mm256_loadu_ps(widened.as_ptr().add(k * inputs + offset)) };
                }
                for j in 0..TILE_ROWS {
                    for k in 0..TILE_OUTPUTS {
                        sums[j][k] = _mm256_fmadd_ps(x[j], w[k], sums[j][k]);
                    }
                }
            }
            for j in 0..height {
                for k in 0..width {
                    let mut lanes = [0f32; LANES];
                    // SAFETY: writes the eight f32 of `lanes`.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sums[j][k]) };
                    out[(output + k) * rows + row + j] =
                        reduce_lanes(&lanes, tile_rows[j], tile_weights[k], tail_start);
                }
            }
            row += TILE_ROWS;
        }
        output += TILE_OUTPUTS;
    }
}

/// `N` rows of `width` values of `matrix` from row `first`: the `count` real ones, then the last
/// of them repeated, so a tile at the edge computes duplicates instead of branching.
#[inline(always)]
fn tile_of<T, const N: usize>(matrix: &[T], width: usize, first: usize, count: usize) -> [&[T]; N] {
    std::array::from_fn(|offset| {
        let index = first + offset.min(count - 1);
        &matrix[index * width..(index + 1) * width]
    })
}

/// The sum of a tile entry's lanes, plus the inputs beyond the last whole chunk of lanes.
#[inline(always)]
fn reduce_lanes(lanes: &[f32; LANES], x: &[f32], w: &[f16], tail_start: usize) -> f32 {
    let mut total = ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5]))
        + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
    for (x, w) in x[tail_start..].iter().zip(&w[tail_start..]) {
        total += x * w.to_f32();
    }
    total
}

/// Tiles of `TILE_ROWS` token rows × `TILE_OUTPUTS` weight rows, each pair accumulated in
/// `LANES` independent lanes and summed at the end: the portable form of
/// [`multiply_block_simd`], for CPUs without its features.
fn multiply_block_portable(
    input: &[f32],
    rows: usize,
    weights: &[f16],
    outputs: usize,
    inputs: usize,
    out: &mut [f32],
) {
    let row_chunks: Vec<&[[f32; LANES]]> = input
        .chunks_exact(inputs)
        .take(rows)
        .map(|row| row.as_chunks::<LANES>().0)
        .collect();
    let weight_chunks: Vec<&[[f16; LANES]]> = weights
        .chunks_exact(inputs)
        .take(outputs)
        .map(|row| row.as_chunks::<LANES>().0)
        .collect();
    let tail_start = inputs - inputs % LANES;
    let mut output = 0;
    while output < outputs {
        let width = (outputs - output).min(TILE_OUTPUTS);
        let tile_weights: [&[[f16; LANES]]; TILE_OUTPUTS] =
            std::array::from_fn(|k| weight_chunks[output + k.min(width - 1)]);
        let mut row = 0;
        while row < rows {
            let height = (rows - row).min(TILE_ROWS);
            let tile_rows: [&[[f32; LANES]]; TILE_ROWS] =
                std::array::from_fn(|j| row_chunks[row + j.min(height - 1)]);
            let mut sums = [[[0f32; LANES]; TILE_OUTPUTS]; TILE_ROWS];
            for chunk in 0..tail_start / LANES {
                let x: [[f32; LANES]; TILE_ROWS] = tile_rows.map(|row| row[chunk]);
                let w: [[f32; LANES]; TILE_OUTPUTS] =
                    tile_weights.map(|weight| weight[chunk].map(f16::to_f32));
                for j in 0..TILE_ROWS {
                    for k in 0..TILE_OUTPUTS {
                        for lane in 0..LANES {
                            sums[j][k][lane] += x[j][lane] * w[k][lane];
                        }
                    }
                }
            }
            for j in 0..height {
                let x = &input[(row + j) * inputs..(row + j + 1) * inputs];
                for k in 0..width {
                    let w = &weights[(output + k) * inputs..(output + k + 1) * inputs];
                    out[(output + k) * rows + row + j] =
                        reduce_lanes(&sums[j][k], x, w, tail_start);
                }
            }
            row += TILE_ROWS;
        }
        output += TILE_OUTPUTS;
    }
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

    /// A small deterministic pseudo-random sequence in [-1, 1).
    fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        (0..count)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

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

    fn naive(
        input: &[f32],
        rows: usize,
        weights: &[f32],
        outputs: usize,
        inputs: usize,
    ) -> Vec<f32> {
        let mut out = vec![0f32; outputs * rows];
        for output in 0..outputs {
            for row in 0..rows {
                out[output * rows + row] = (0..inputs)
                    .map(|i| {
                        f64::from(input[row * inputs + i]) * f64::from(weights[output * inputs + i])
                    })
                    .sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn blocks_match_a_plain_product_for_every_tile_remainder() {
        // Rows and outputs that leave every remainder of the 3 × 3 tile; inputs with a tail
        // beyond the 8 lanes.
        for (rows, outputs, inputs) in
            [(1, 1, 8), (2, 5, 19), (4, 7, 384), (7, 3, 33), (29, 10, 64)]
        {
            let input = values(rows * inputs, 1);
            let weights = narrow(values(outputs * inputs, 2));
            let mut fast = vec![0f32; outputs * rows];
            multiply_block(&input, rows, &weights, outputs, inputs, &mut fast);
            let mut portable = vec![0f32; outputs * rows];
            multiply_block_portable(&input, rows, &weights, outputs, inputs, &mut portable);
            let expected = naive(&input, rows, &wide(&weights), outputs, inputs);
            for (index, want) in expected.iter().enumerate() {
                for (name, got) in [("dispatched", fast[index]), ("portable", portable[index])] {
                    assert!(
                        (got - want).abs() <= 1e-4,
                        "{name} {rows}x{outputs}x{inputs} [{index}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn dense_layers_add_the_bias_and_apply_gelu() {
        let (rows, inputs, outputs) = (5, 16, 200);
        let layer = Dense {
            weight: narrow(values(outputs * inputs, 3)),
            bias: values(outputs, 4),
            inputs,
            outputs,
        };
        let input = values(rows * inputs, 5);
        let plain = naive(&input, rows, &wide(&layer.weight), outputs, inputs);
        for activation in [Activation::Identity, Activation::Gelu] {
            let result = layer.apply(&input, rows, activation);
            for row in 0..rows {
                for output in 0..outputs {
                    let mut want = plain[output * rows + row] + layer.bias[output];
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
