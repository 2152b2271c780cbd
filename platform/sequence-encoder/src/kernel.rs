//! The dense layers' product, `input · Wᵀ`, for the few token rows of one sequence.
//!
//! The weights are packed once, at load, into panels of [`PANEL`] output columns: for each
//! input, the panel's sixteen weights side by side, in half precision. A register tile keeps
//! the sums of up to [`TILE_ROWS`] token rows × one panel in AVX registers, and each step over
//! the inputs broadcasts one input value per row and multiplies it into two vectors of weights:
//! every sum stays in its own lane, so there is no reduction across lanes and no tail, and the
//! result comes out row-major. A panel is widened to f32 once, into a buffer that every tile of
//! token rows then reads.

use std::sync::atomic::{AtomicBool, Ordering};

use half::f16;

/// Output columns of one panel: two vectors of eight f32 lanes.
pub(crate) const PANEL: usize = 16;
/// Token rows of the widest register tile: 6 × 2 sums, two weight vectors and one broadcast
/// input take 15 of x86-64's 16 AVX registers.
const TILE_ROWS: usize = 6;
const LANES: usize = 8;

/// A weight matrix rearranged for [`multiply_panels`]; see the module's description.
pub(crate) struct PackedWeights {
    values: Vec<f16>,
    inputs: usize,
    outputs: usize,
}

impl PackedWeights {
    /// Packs `row_major`, the `outputs × inputs` matrix as the model stores it. Columns of the
    /// last panel beyond `outputs` hold zeros.
    pub(crate) fn pack(row_major: &[f32], outputs: usize, inputs: usize) -> Self {
        let panels = outputs.div_ceil(PANEL);
        let mut values = vec![f16::ZERO; panels * inputs * PANEL];
        for (output, row) in row_major.chunks_exact(inputs).take(outputs).enumerate() {
            let panel = &mut values[(output / PANEL) * inputs * PANEL..][..inputs * PANEL];
            for (input, &weight) in row.iter().enumerate() {
                panel[input * PANEL + output % PANEL] = f16::from_f32(weight);
            }
        }
        Self {
            values,
            inputs,
            outputs,
        }
    }

    pub(crate) fn outputs(&self) -> usize {
        self.outputs
    }

    pub(crate) fn panels(&self) -> usize {
        self.outputs.div_ceil(PANEL)
    }

    /// The weight of `output` for `input`, as stored.
    #[cfg(test)]
    pub(crate) fn get(&self, output: usize, input: usize) -> f16 {
        self.panel(output / PANEL)[input * PANEL + output % PANEL]
    }

    fn panel(&self, panel: usize) -> &[f16] {
        &self.values[panel * self.inputs * PANEL..][..self.inputs * PANEL]
    }
}

/// `out[r, c] = Σᵢ input[r, i] · W[first·PANEL + c, i]` for the `count` panels from `first`:
/// `out` is `rows × (count · PANEL)`, row-major. Uses AVX2, FMA and F16C when the CPU has them.
///
/// # Panics
/// When `input` has fewer than `rows × inputs` values, `out` fewer than `rows × count · PANEL`,
/// or the panels run past the matrix.
pub(crate) fn multiply_panels(
    input: &[f32],
    rows: usize,
    weights: &PackedWeights,
    first: usize,
    count: usize,
    out: &mut [f32],
) {
    assert!(input.len() >= rows * weights.inputs, "input rows");
    assert!(out.len() >= rows * count * PANEL, "output rows");
    assert!(first + count <= weights.panels(), "panels");
    #[cfg(target_arch = "x86_64")]
    if !PORTABLE_ONLY.load(Ordering::Relaxed)
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
    {
        // SAFETY: the CPU supports the features the function is compiled for (checked above).
        unsafe { simd::multiply_panels(input, rows, weights, first, count, out) };
        return;
    }
    multiply_panels_portable(input, rows, weights, first, count, out);
}

/// Set: [`multiply_panels`] takes the portable path even where the CPU has AVX2.
static PORTABLE_ONLY: AtomicBool = AtomicBool::new(false);

/// Makes every later product take the portable path (`true`) or the fastest the CPU has.
pub(crate) fn use_portable_kernel(portable: bool) {
    PORTABLE_ONLY.store(portable, Ordering::Relaxed);
}

/// [`multiply_panels`] in plain Rust, for CPUs without AVX2, FMA and F16C.
fn multiply_panels_portable(
    input: &[f32],
    rows: usize,
    weights: &PackedWeights,
    first: usize,
    count: usize,
    out: &mut [f32],
) {
    let inputs = weights.inputs;
    let stride = count * PANEL;
    for panel in 0..count {
        let widened: Vec<f32> = weights
            .panel(first + panel)
            .iter()
            .map(|w| w.to_f32())
            .collect();
        for (row, values) in input.chunks_exact(inputs).take(rows).enumerate() {
            let mut sums = [0f32; PANEL];
            for (&x, w) in values.iter().zip(widened.as_chunks::<PANEL>().0) {
                for (sum, w) in sums.iter_mut().zip(w) {
                    *sum += x * w;
                }
            }
            out[row * stride + panel * PANEL..][..PANEL].copy_from_slice(&sums);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::{
        __m128i, __m256, _mm_loadu_si128, _mm256_add_ps, _mm256_cvtph_ps, _mm256_fmadd_ps,
        _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps,
    };

    use super::{LANES, PANEL, PackedWeights, TILE_ROWS};

    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) fn multiply_panels(
        input: &[f32],
        rows: usize,
        weights: &PackedWeights,
        first: usize,
        count: usize,
        out: &mut [f32],
    ) {
        let inputs = weights.inputs;
        let stride = count * PANEL;
        let mut widened = vec![0f32; inputs * PANEL];
        for panel in 0..count {
            let source = weights.panel(first + panel);
            for (packed, target) in source
                .as_chunks::<LANES>()
                .0
                .iter()
                .zip(widened.as_chunks_mut::<LANES>().0)
            {
                // SAFETY: eight f16 are the 16 bytes of one unaligned load, eight f32 the 32
                // bytes of one unaligned store, both within their arrays.
                unsafe {
                    let halves = _mm_loadu_si128(packed.as_ptr().cast::<__m128i>());
                    _mm256_storeu_ps(target.as_mut_ptr(), _mm256_cvtph_ps(halves));
                }
            }
            let widened = widened.as_chunks::<PANEL>().0;
            let column = panel * PANEL;
            let mut row = 0;
            while row + TILE_ROWS <= rows {
                tile::<TILE_ROWS, 1>(input, inputs, row, widened, out, stride, column);
                row += TILE_ROWS;
            }
            // Fewer rows have fewer sums than the FMA units can keep busy through their
            // latency: those tiles keep two sets, for even and odd inputs.
            match rows - row {
                1 => tile::<1, 2>(input, inputs, row, widened, out, stride, column),
                2 => tile::<2, 2>(input, inputs, row, widened, out, stride, column),
                3 => tile::<3, 2>(input, inputs, row, widened, out, stride, column),
                4 => tile::<4, 1>(input, inputs, row, widened, out, stride, column),
                5 => tile::<5, 1>(input, inputs, row, widened, out, stride, column),
                _ => {}
            }
        }
    }

    /// Rows `row .. row + ROWS` of the product with one widened panel, with `SETS` sets of
    /// sums over alternate inputs, added at the end.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn tile<const ROWS: usize, const SETS: usize>(
        input: &[f32],
        inputs: usize,
        row: usize,
        widened: &[[f32; PANEL]],
        out: &mut [f32],
        stride: usize,
        column: usize,
    ) {
        let rows: [&[f32]; ROWS] =
            std::array::from_fn(|offset| &input[(row + offset) * inputs..][..inputs]);
        let mut sums = [[[_mm256_setzero_ps(); 2]; ROWS]; SETS];
        let steps = inputs / SETS;
        for step in 0..steps {
            for (set, sums) in sums.iter_mut().enumerate() {
                let index = step * SETS + set;
                let (low, high) = load_panel_row(&widened[index]);
                for (sums, values) in sums.iter_mut().zip(&rows) {
                    let x = _mm256_set1_ps(values[index]);
                    sums[0] = _mm256_fmadd_ps(x, low, sums[0]);
                    sums[1] = _mm256_fmadd_ps(x, high, sums[1]);
                }
            }
        }
        for index in steps * SETS..inputs {
            let (low, high) = load_panel_row(&widened[index]);
            for (sums, values) in sums[0].iter_mut().zip(&rows) {
                let x = _mm256_set1_ps(values[index]);
                sums[0] = _mm256_fmadd_ps(x, low, sums[0]);
                sums[1] = _mm256_fmadd_ps(x, high, sums[1]);
            }
        }
        for offset in 0..ROWS {
            let mut total = sums[0][offset];
            for set in sums.iter().skip(1) {
                total = [
                    _mm256_add_ps(total[0], set[offset][0]),
                    _mm256_add_ps(total[1], set[offset][1]),
                ];
            }
            let target = &mut out[(row + offset) * stride + column..][..PANEL];
            // SAFETY: `target` holds the sixteen f32 of the two stores.
            unsafe {
                _mm256_storeu_ps(target.as_mut_ptr(), total[0]);
                _mm256_storeu_ps(target.as_mut_ptr().add(LANES), total[1]);
            }
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn load_panel_row(weights: &[f32; PANEL]) -> (__m256, __m256) {
        // SAFETY: both loads read eight f32 inside the sixteen of `weights`.
        unsafe {
            (
                _mm256_loadu_ps(weights.as_ptr()),
                _mm256_loadu_ps(weights.as_ptr().add(LANES)),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_values::values;

    fn naive(input: &[f32], rows: usize, weights: &PackedWeights) -> Vec<f32> {
        let (inputs, outputs) = (weights.inputs, weights.outputs());
        let mut out = vec![0f32; rows * outputs];
        for row in 0..rows {
            for output in 0..outputs {
                out[row * outputs + output] = (0..inputs)
                    .map(|i| {
                        f64::from(input[row * inputs + i])
                            * f64::from(weights.get(output, i).to_f32())
                    })
                    .sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn packing_keeps_every_weight_in_half_precision() {
        let (outputs, inputs) = (37, 11);
        let original = values(outputs * inputs, 8);
        let packed = PackedWeights::pack(&original, outputs, inputs);
        assert_eq!(packed.panels(), 3);
        for output in 0..outputs {
            for input in 0..inputs {
                let want = original[output * inputs + input];
                assert_eq!(packed.get(output, input), f16::from_f32(want));
            }
        }
        // The last panel's columns past the matrix are zeros.
        assert!((outputs..3 * PANEL).all(|o| packed.get(o, 0) == f16::ZERO));
    }

    #[test]
    fn panels_match_a_plain_product_for_every_tile_remainder() {
        // Rows leaving every remainder of the six-row tile; outputs short of a whole panel;
        // odd inputs, for the tiles that sum alternate inputs in two sets.
        for (rows, outputs, inputs) in [
            (1, 1, 8),
            (2, 5, 19),
            (3, 16, 1),
            (4, 7, 384),
            (5, 33, 33),
            (7, 48, 64),
            (13, 20, 1536),
        ] {
            let input = values(rows * inputs, 1);
            let weights = PackedWeights::pack(&values(outputs * inputs, 2), outputs, inputs);
            let panels = weights.panels();
            let stride = panels * PANEL;
            let expected = naive(&input, rows, &weights);
            let mut fast = vec![0f32; rows * stride];
            multiply_panels(&input, rows, &weights, 0, panels, &mut fast);
            let mut portable = vec![0f32; rows * stride];
            multiply_panels_portable(&input, rows, &weights, 0, panels, &mut portable);
            for row in 0..rows {
                for output in 0..outputs {
                    let want = expected[row * outputs + output];
                    for (name, got) in [
                        ("dispatched", fast[row * stride + output]),
                        ("portable", portable[row * stride + output]),
                    ] {
                        assert!(
                            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                            "{name} {rows}x{outputs}x{inputs} [{row}, {output}]: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_range_of_panels_is_the_same_columns_of_the_whole_product() {
        let (rows, outputs, inputs) = (9, 80, 24);
        let input = values(rows * inputs, 3);
        let weights = PackedWeights::pack(&values(outputs * inputs, 4), outputs, inputs);
        let mut whole = vec![0f32; rows * 5 * PANEL];
        multiply_panels(&input, rows, &weights, 0, 5, &mut whole);
        let mut part = vec![0f32; rows * 2 * PANEL];
        multiply_panels(&input, rows, &weights, 2, 2, &mut part);
        for row in 0..rows {
            assert_eq!(
                part[row * 2 * PANEL..][..2 * PANEL],
                whole[row * 5 * PANEL + 2 * PANEL..][..2 * PANEL]
            );
        }
    }
}
