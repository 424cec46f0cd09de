//! Random weights: element-wise floats, or random quantised blocks whose f16 scale fields are
//! overwritten with small finite values so that activations and logits stay finite.

use crate::gguf::types::{GgmlType, TensorSummary};

/// Whether the writer can generate tensors of `t`.
pub fn supports(t: GgmlType) -> bool {
    block_kind(t).is_some()
}

/// How a type's bytes are generated: element-wise floats, or random blocks with f16 scale fields
/// at known offsets overwritten.
pub(super) enum BlockKind {
    F32,
    F16,
    BF16,
    /// `(offset of an f16 scale within the block, its magnitude)` pairs.
    Quant(&'static [(usize, f32)]),
}

/// Target standard deviation of the weights: with RMS-normed inputs of width `n` the outputs of a
/// matrix-vector product have a deviation near `0.02 × sqrt(n)`, which keeps activations and logits
/// in a comfortable range.
const WEIGHT_STD: f32 = 0.02;

/// Block layouts from ggml-common.h. The scale magnitudes make `d × (typical quant value)` about
/// [`WEIGHT_STD`]: Q8_0 quants span ±127, Q4_0 ±8, K-quant sub-block scales up to 63 times quants
/// up to 15 (Q4_K) or 31 (Q5_K), Q6_K's i8 scales up to 127 times quants ±32.
pub(super) fn block_kind(t: GgmlType) -> Option<BlockKind> {
    use GgmlType as G;
    Some(match t {
        G::F32 => BlockKind::F32,
        G::F16 => BlockKind::F16,
        G::BF16 => BlockKind::BF16,
        // d, then 32 i8.
        G::Q8_0 => BlockKind::Quant(&[(0, 2.7e-4)]),
        // d, 16 bytes of nibbles.
        G::Q4_0 => BlockKind::Quant(&[(0, 4.3e-3)]),
        // d, m, 16 bytes of nibbles.
        G::Q4_1 => BlockKind::Quant(&[(0, 4.3e-3), (2, 1e-3)]),
        // d, qh[4], qs[16].
        G::Q5_0 => BlockKind::Quant(&[(0, 2.2e-3)]),
        // d, m, qh[4], qs[16].
        G::Q5_1 => BlockKind::Quant(&[(0, 2.2e-3), (2, 1e-3)]),
        // d, dmin, scales[12], qs[128].
        G::Q4_K => BlockKind::Quant(&[(0, 1.3e-4), (2, 1e-4)]),
        // d, dmin, scales[12], qh[32], qs[128].
        G::Q5_K => BlockKind::Quant(&[(0, 7e-5), (2, 5e-5)]),
        // ql[128], qh[64], scales[16] (i8), d.
        G::Q6_K => BlockKind::Quant(&[(208, 1.5e-5)]),
        // scales[16], qs[64], d, dmin.
        G::Q2_K => BlockKind::Quant(&[(80, 2e-3), (82, 1e-3)]),
        // hmask[32], qs[64], scales[12], d.
        G::Q3_K => BlockKind::Quant(&[(108, 5e-4)]),
        // d, qs[16] (indices into a 16-entry table of magnitude up to 127).
        G::IQ4_NL => BlockKind::Quant(&[(0, 3e-4)]),
        // d, scales_h, scales_l[4], qs[128].
        G::IQ4_XS => BlockKind::Quant(&[(0, 1e-5)]),
        _ => return None,
    })
}

/// Fill `buf` (a whole number of blocks of `t`) with random weights.
pub(super) fn fill_tensor_chunk(buf: &mut [u8], t: &TensorSummary, rng: &mut Rng) {
    let is_norm = t.dims.len() == 1 && t.name.ends_with("norm.weight");
    match block_kind(t.ggml_type) {
        Some(BlockKind::F32) => {
            for c in buf.chunks_exact_mut(4) {
                // Norm weights near 1 keep RMS-normed activations at unit scale; biases small.
                let v = if is_norm {
                    1.0
                } else {
                    rng.symmetric() * WEIGHT_STD * 1.7
                };
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        Some(BlockKind::F16) => {
            rng.fill(buf);
            for c in buf.chunks_exact_mut(2) {
                let v = if is_norm {
                    F16_ONE
                } else {
                    small_f16(u16::from_le_bytes([c[0], c[1]]))
                };
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        Some(BlockKind::BF16) => {
            rng.fill(buf);
            for c in buf.chunks_exact_mut(2) {
                let r = u16::from_le_bytes([c[0], c[1]]);
                // Sign, exponent 2^-7 or 2^-6 (f32 bias 127), 7 random mantissa bits: |v| in [0.008, 0.03).
                let v = (r & 0x807f) | ((120 + ((r >> 7) & 1)) << 7);
                c.copy_from_slice(&v.to_le_bytes());
            }
        }
        Some(BlockKind::Quant(scales)) => {
            rng.fill(buf);
            let bb = t.ggml_type.block_bytes() as usize;
            for block in buf.chunks_exact_mut(bb) {
                for &(off, mag) in scales {
                    // A positive scale between 0.5 and 1.5 times the magnitude.
                    let v = f32_to_f16(mag * (1.0 + rng.symmetric() * 0.5));
                    block[off..off + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        // Unsupported types are rejected before writing starts.
        None => buf.fill(0),
    }
}

const F16_ONE: u16 = 0x3c00;

/// A small finite f16 from 16 random bits: random sign and mantissa, exponent 2^-7 or 2^-6, so
/// |v| lies in [0.0078, 0.031).
fn small_f16(r: u16) -> u16 {
    (r & 0x83ff) | ((8 + ((r >> 10) & 1)) << 10)
}

/// Round-to-nearest f32 → IEEE half, for the small positive scales written above (normal and
/// subnormal halves; values beyond the half range saturate to the largest finite half).
pub(crate) fn f32_to_f16(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let a = v.abs();
    if a.is_nan() {
        return sign | 0x7e00;
    }
    if a >= 65504.0 {
        return sign | 0x7bff;
    }
    if a < 6.103_515_6e-5 {
        // Subnormal half: units of 2^-24.
        return sign | (a * 16_777_216.0).round() as u16;
    }
    let exp = ((a.to_bits() >> 23) & 0xff) as i32 - 127 + 15;
    let mant = a.to_bits() & 0x7f_ffff;
    let mut h = ((exp as u32) << 10) | (mant >> 13);
    if mant & 0x1fff > 0x1000 || (mant & 0x1fff == 0x1000 && h & 1 == 1) {
        h += 1;
    }
    sign | h as u16
}

/// splitmix64: fast, seedable, good enough for weights whose values do not matter.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&last[..n]);
    }

    /// Uniform in [-1, 1).
    fn symmetric(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_to_f32(h: u16) -> f32 {
        let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
        let exp = ((h >> 10) & 0x1f) as i32;
        let mant = (h & 0x3ff) as f32;
        sign * if exp == 0 {
            mant * 2f32.powi(-24)
        } else {
            (1.0 + mant / 1024.0) * 2f32.powi(exp - 15)
        }
    }

    #[test]
    fn f16_conversion_round_trips_representable_values() {
        for v in [
            1.0f32,
            0.5,
            2.7e-4,
            1.3e-4,
            65504.0,
            6.103_515_6e-5,
            1.5e-5,
            3.0e-7,
        ] {
            let back = f16_to_f32(f32_to_f16(v));
            assert!(
                (back - v).abs() / v < 1e-3 || (back - v).abs() < 6e-8,
                "{v} -> {back}"
            );
        }
        assert_eq!(f32_to_f16(1.0), F16_ONE);
    }

    #[test]
    fn small_f16_is_always_finite_and_small() {
        for r in 0..=u16::MAX {
            let v = f16_to_f32(small_f16(r));
            assert!(
                v.is_finite() && v.abs() < 0.032 && v.abs() >= 0.0078,
                "{r:#x} -> {v}"
            );
        }
    }

    #[test]
    fn every_scale_field_lies_inside_its_block_and_is_written_small() {
        for t in GgmlType::all() {
            let Some(BlockKind::Quant(scales)) = block_kind(t) else {
                continue;
            };
            let summary = TensorSummary::new("blk.0.attn_q.weight", t, vec![256, 2]);
            let mut buf = vec![0u8; summary.n_bytes as usize];
            fill_tensor_chunk(&mut buf, &summary, &mut Rng::new(7));
            for block in buf.chunks_exact(t.block_bytes() as usize) {
                for &(off, mag) in scales {
                    assert!(off + 2 <= t.block_bytes() as usize, "{t}");
                    let d = f16_to_f32(u16::from_le_bytes([block[off], block[off + 1]]));
                    assert!(d > 0.0 && d.is_finite() && d <= mag * 1.51, "{t}: {d}");
                }
            }
        }
    }
}
