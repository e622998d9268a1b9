//! The per-frame loops of the voice path, shaped so that each runs on whole
//! registers: the interpolator works on eight output frames of one voice at
//! a time, and the filter and the mix on one frame of eight voices at a
//! time, in lock-step, since a biquad's recurrence leaves nothing to
//! parallelize within one voice.
//!
//! The filter and mix are plain loops over `[f32; GROUP]` arrays, compiled
//! twice: plainly (the portable path: SSE2's four lanes on any x86-64,
//! scalar elsewhere) and inside a `#[target_feature(enable = "avx2,fma")]`
//! wrapper chosen once at run time. The interpolator's AVX2 path is written
//! with intrinsics, because what makes it fast (one load and in-register
//! permutes in place of 32 scattered loads and a transpose) is not something
//! the compiler finds in the plain loop. Where the CPU has AVX-512VL, the
//! interpolator and the filter and mix have intrinsics paths on AVX
//! registers that use its permutes and its 32 registers, and the lane sums
//! take AVX2 shuffles. The AVX2 and AVX-512 paths fuse each multiply into
//! its add (FMA: a phrase 10 % faster than unfused) and the portable path
//! does not, so an [`Isa`] says which arithmetic it has
//! ([`Isa::fused`]); the scalar loops take the same choice as a parameter,
//! so every path gives the same samples as the scalar loop of its kind, to
//! the bit, and the two kinds differ by a rounding (about 1e-7 of full
//! scale).

use super::filter::LowPass;
use super::voice::{BLOCK, FRACTION_BITS};

/// Frames per interpolation step: one AVX register of `f32`.
pub const LANES: usize = 8;

/// Voices per filter pass: one AVX register. (Two registers, two chains
/// to hide the biquad's latency, measured slower: a font's synthesizer
/// mostly has fewer than nine voices, and the wider pass spills.)
pub const GROUP: usize = LANES;

const FRACTION_SCALE: f32 = 1.0 / (1u64 << FRACTION_BITS) as f32;

/// Which compilation of the kernels this CPU runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX2 and FMA, and AVX-512F and VL for the interpolator.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Self::Avx512;
            }
            return Self::Avx2;
        }
        Self::Portable
    }

    /// Whether this path fuses multiplies into adds: the `FUSED` its scalar
    /// loops must be given to round as it does.
    pub fn fused(self) -> bool {
        self != Self::Portable
    }

    /// This CPU's compilations, the portable one first: what the tests
    /// compare.
    #[cfg(test)]
    pub fn available() -> Vec<Self> {
        let mut v = vec![Self::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            let best = Self::detect();
            if best != Self::Portable {
                v.push(Self::Avx2);
            }
            if best == Self::Avx512 {
                v.push(Self::Avx512);
            }
        }
        v
    }
}

/// Four-point cubic Hermite (Catmull-Rom) interpolation at `f` between `x0`
/// and `x1`; libfluidsynth's default is a four-point interpolator too, so the
/// top octave loses as little as it does there.
#[inline(always)]
pub fn cubic<const FUSED: bool>(xm1: f32, x0: f32, x1: f32, x2: f32, f: f32) -> f32 {
    let c1 = 0.5 * (x1 - xm1);
    let c2 = madd::<FUSED>(
        -0.5,
        x2,
        madd::<FUSED>(2.0, x1, madd::<FUSED>(-2.5, x0, xm1)),
    );
    let c3 = madd::<FUSED>(0.5, x2 - xm1, 1.5 * (x0 - x1));
    madd::<FUSED>(madd::<FUSED>(madd::<FUSED>(c3, f, c2), f, c1), f, x0)
}

/// `a * b + c`, rounded once where `FUSED` (an FMA instruction inside the
/// SIMD paths' target features; a correctly rounded library call outside
/// them), else twice.
#[inline(always)]
fn madd<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// Reads `out.len()` frames of `wave` from the 32.32 position `pos` in steps
/// of `step` and returns the position after them. The caller guarantees that
/// every frame's four neighbours lie in `wave`.
pub fn interpolate(isa: Isa, wave: &[i16], pos: u64, step: u64, out: &mut [f32]) -> u64 {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if avx2::gathers_in_bounds(wave, pos, step, out.len()) => {
            // SAFETY: `Isa::Avx512` exists only where the CPU reported AVX2,
            // FMA, AVX-512F and VL at run time (`Isa::detect`), and every
            // gather was just checked to read inside `wave`.
            unsafe { avx512::interpolate(wave, pos, step, out) }
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if avx2::gathers_in_bounds(wave, pos, step, out.len()) => {
            // SAFETY: `Isa::Avx2` exists only where the CPU reported AVX2 and
            // FMA at run time (`Isa::detect`), and every gather was just
            // checked to read inside `wave`.
            unsafe { avx2::interpolate(wave, pos, step, out) }
        }
        _ if isa.fused() => interpolate_any::<true>(wave, pos, step, out),
        _ => interpolate_any::<false>(wave, pos, step, out),
    }
}

/// The plain loops, for a path whose SIMD loop cannot run here: at the
/// wave's first and last samples, or a wave past 32-bit offsets.
fn interpolate_any<const FUSED: bool>(wave: &[i16], pos: u64, step: u64, out: &mut [f32]) -> u64 {
    if u32::try_from(wave.len()).is_ok() {
        interpolate_lanes::<FUSED>(wave, pos, step, out)
    } else {
        interpolate_frames::<FUSED>(wave, pos, step, out)
    }
}

/// Eight frames at a time: their positions split into a 32-bit sample index
/// and fraction (the index plus a carry), so the position arithmetic is
/// 32-bit lane arithmetic too, then the 32 neighbours are loaded and the
/// cubic runs over all eight. The fraction is rounded to `f32` exactly as a
/// frame-by-frame loop would round it.
#[inline(always)]
fn interpolate_lanes<const FUSED: bool>(
    wave: &[i16],
    mut pos: u64,
    step: u64,
    out: &mut [f32],
) -> u64 {
    let mut offset_index = [0u32; LANES];
    let mut offset_fraction = [0u32; LANES];
    for (k, (i, f)) in offset_index
        .iter_mut()
        .zip(offset_fraction.iter_mut())
        .enumerate()
    {
        let o = step * k as u64;
        *i = (o >> FRACTION_BITS) as u32;
        *f = o as u32;
    }
    let mut chunks = out.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        let (index0, fraction0) = ((pos >> FRACTION_BITS) as u32, pos as u32);
        let mut index = [0u32; LANES];
        let mut fraction = [0f32; LANES];
        for k in 0..LANES {
            let f = fraction0.wrapping_add(offset_fraction[k]);
            let carry = u32::from(f < fraction0);
            index[k] = index0.wrapping_add(offset_index[k]).wrapping_add(carry);
            fraction[k] = f as f32 * FRACTION_SCALE;
        }
        let mut taps = [[0i16; LANES]; 4];
        for (k, &i) in index.iter().enumerate() {
            let i = i as usize;
            let w = &wave[i - 1..i + 3];
            for (t, &s) in taps.iter_mut().zip(w) {
                t[k] = s;
            }
        }
        for k in 0..LANES {
            chunk[k] = cubic::<FUSED>(
                f32::from(taps[0][k]),
                f32::from(taps[1][k]),
                f32::from(taps[2][k]),
                f32::from(taps[3][k]),
                fraction[k],
            );
        }
        pos = pos.wrapping_add(step * LANES as u64);
    }
    interpolate_frames::<FUSED>(wave, pos, step, chunks.into_remainder())
}

/// Frame by frame: the chunks' remainder, and a wave too long for 32-bit
/// sample indices.
#[inline(always)]
fn interpolate_frames<const FUSED: bool>(
    wave: &[i16],
    mut pos: u64,
    step: u64,
    out: &mut [f32],
) -> u64 {
    for o in out {
        let i = (pos >> FRACTION_BITS) as usize;
        let w = &wave[i - 1..i + 3];
        *o = cubic::<FUSED>(
            f32::from(w[0]),
            f32::from(w[1]),
            f32::from(w[2]),
            f32::from(w[3]),
            pos as u32 as f32 * FRACTION_SCALE,
        );
        pos += step;
    }
    pos
}

/// One voice's part in a filter-and-mix pass: its low-pass (coefficients
/// and state; an open filter is the identity, `b0 = 1` and the rest 0), its
/// gain ramp over the block and its pan gains.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lane {
    pub b0: f32,
    pub b1: f32,
    pub b2: f32,
    pub a1: f32,
    pub a2: f32,
    pub z1: f32,
    pub z2: f32,
    /// The gain before the block's first frame, and its change per frame.
    pub gain: f32,
    pub ramp: f32,
    pub pan_left: f32,
    pub pan_right: f32,
}

impl Lane {
    /// `filter`'s coefficients and state, under a gain ramp from `gain` by
    /// `ramp` per frame, panned by `pan_left` and `pan_right`.
    pub fn new(filter: &LowPass, gain: f32, ramp: f32, pan_left: f32, pan_right: f32) -> Self {
        let [b0, b1, b2, a1, a2] = filter.coefficients();
        let (z1, z2) = filter.state();
        Self {
            b0,
            b1,
            b2,
            a1,
            a2,
            z1,
            z2,
            gain,
            ramp,
            pan_left,
            pan_right,
        }
    }
}

/// [`Lane`]s of up to [`GROUP`] voices, field by field; an unused lane is
/// all zeros and adds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lanes {
    b0: [f32; GROUP],
    b1: [f32; GROUP],
    b2: [f32; GROUP],
    a1: [f32; GROUP],
    a2: [f32; GROUP],
    z1: [f32; GROUP],
    z2: [f32; GROUP],
    gain: [f32; GROUP],
    ramp: [f32; GROUP],
    pan_left: [f32; GROUP],
    pan_right: [f32; GROUP],
}

impl Lanes {
    pub fn gather<'a>(lanes: impl IntoIterator<Item = &'a Lane>) -> Self {
        let mut out = Self::default();
        for (k, l) in lanes.into_iter().take(GROUP).enumerate() {
            out.b0[k] = l.b0;
            out.b1[k] = l.b1;
            out.b2[k] = l.b2;
            out.a1[k] = l.a1;
            out.a2[k] = l.a2;
            out.z1[k] = l.z1;
            out.z2[k] = l.z2;
            out.gain[k] = l.gain;
            out.ramp[k] = l.ramp;
            out.pan_left[k] = l.pan_left;
            out.pan_right[k] = l.pan_right;
        }
        out
    }

    /// The filter state of lane `k` after the pass.
    pub fn state(&self, k: usize) -> (f32, f32) {
        (self.z1[k], self.z2[k])
    }
}

/// Per-frame sums of a block, one lane per voice of a group, so that the
/// groups of a block add up lane-wise and the lanes are summed once per frame
/// at the end ([`reduce`]).
pub type Accumulator = [[f32; GROUP]; BLOCK];

/// Filters the first `n` frames of each row (row `g * GROUP + k` is lane `k`
/// of `groups[g]`, its interpolated block), applies each lane's gain ramp
/// and pan, and adds the results to `left` and `right`, lane by lane, group
/// after group. There is a row for every lane of every group, all zeros for
/// a lane without a voice.
pub fn filter_mix(
    isa: Isa,
    rows: &[[f32; BLOCK]],
    n: usize,
    groups: &mut [Lanes],
    left: &mut Accumulator,
    right: &mut Accumulator,
) {
    assert_eq!(rows.len(), groups.len() * GROUP, "a row for every lane");
    match isa {
        Isa::Portable => {
            for (rows, lanes) in rows.chunks(GROUP).zip(groups) {
                filter_mix_lanes::<false>(rows, n, lanes, left, right);
            }
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` and `Isa::Avx512` exist only where the CPU
        // reported AVX2 and FMA at run time (`Isa::detect`).
        Isa::Avx2 => unsafe {
            for (rows, lanes) in rows.chunks(GROUP).zip(groups) {
                filter_mix_avx2(rows, n, lanes, left, right);
            }
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx512` exists only where the CPU reported AVX2, FMA,
        // AVX-512F and VL at run time (`Isa::detect`).
        Isa::Avx512 => unsafe { avx512::filter_mix(rows, n, groups, left, right) },
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn filter_mix_avx2(
    rows: &[[f32; BLOCK]],
    n: usize,
    lanes: &mut Lanes,
    left: &mut Accumulator,
    right: &mut Accumulator,
) {
    filter_mix_lanes::<true>(rows, n, lanes, left, right);
}

/// The biquad is transposed direct form II, as [`super::filter::LowPass`]
/// has it. Unfused, it is `LowPass`'s arithmetic term for term, so each
/// voice's samples round as they would alone; fused, the same terms with
/// each multiply folded into the add after it, as the AVX-512 pass has them.
#[inline(always)]
fn filter_mix_lanes<const FUSED: bool>(
    rows: &[[f32; BLOCK]],
    n: usize,
    lanes: &mut Lanes,
    left: &mut Accumulator,
    right: &mut Accumulator,
) {
    let zero = [0.0; BLOCK];
    let mut input: [&[f32; BLOCK]; GROUP] = [&zero; GROUP];
    for (i, r) in input.iter_mut().zip(rows) {
        *i = r;
    }
    let Lanes {
        b0,
        b1,
        b2,
        a1,
        a2,
        mut z1,
        mut z2,
        gain,
        ramp,
        pan_left,
        pan_right,
    } = *lanes;
    let n = n.min(BLOCK);
    for (t, (l, r)) in left[..n].iter_mut().zip(right[..n].iter_mut()).enumerate() {
        let step = (t + 1) as f32;
        for k in 0..GROUP {
            let x = input[k][t];
            let y = madd::<FUSED>(b0[k], x, z1[k]);
            let g;
            if FUSED {
                z1[k] = (-a1[k]).mul_add(y, b1[k].mul_add(x, z2[k]));
                z2[k] = (-a2[k]).mul_add(y, b2[k] * x);
                g = ramp[k].mul_add(step, gain[k]) * y;
            } else {
                z1[k] = b1[k] * x - a1[k] * y + z2[k];
                z2[k] = b2[k] * x - a2[k] * y;
                g = (gain[k] + ramp[k] * step) * y;
            }
            l[k] = madd::<FUSED>(g, pan_left[k], l[k]);
            r[k] = madd::<FUSED>(g, pan_right[k], r[k]);
        }
    }
    lanes.z1 = z1;
    lanes.z2 = z2;
}

/// Adds each frame's lane sums to `left` and `right` and clears the
/// accumulators for the next block.
pub fn reduce(
    isa: Isa,
    left_acc: &mut Accumulator,
    right_acc: &mut Accumulator,
    left: &mut [f32],
    right: &mut [f32],
) {
    match isa {
        Isa::Portable => {
            reduce_frames(left_acc, left);
            reduce_frames(right_acc, right);
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2` and `Isa::Avx512` exist only where the CPU
        // reported AVX2 and FMA at run time (`Isa::detect`).
        Isa::Avx2 | Isa::Avx512 => unsafe {
            avx2::reduce(left_acc, left);
            avx2::reduce(right_acc, right);
        },
    }
}

fn reduce_frames(acc: &mut [[f32; GROUP]], out: &mut [f32]) {
    for (o, a) in out.iter_mut().zip(acc.iter_mut()) {
        *o += sum(a);
        *a = [0.0; GROUP];
    }
}

/// Pairwise, halving the lanes at each step, so the adds are independent.
#[inline(always)]
fn sum(a: &[f32; GROUP]) -> f32 {
    let mut v = *a;
    let mut half = GROUP / 2;
    while half > 0 {
        for i in 0..half {
            v[i] += v[i + half];
        }
        half /= 2;
    }
    v[0]
}

/// The interpolator with AVX2. Where the eight frames of a chunk stay within
/// 16 samples (steps up to 12/7 of a sample: most notes), one load brings
/// them all and permutes pick each frame's four neighbours; gathers, which
/// measured much slower here, serve only higher steps: one 32-bit gather at
/// `index - 1` brings each frame's first two neighbours (two `i16` side by
/// side) and one at `index + 1` the other two. The plain loop needs four
/// loads a frame and a transpose instead. The arithmetic is the fused plain
/// loop's, operation for operation, so the samples are the same.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{
        interpolate_frames, reduce_frames, Accumulator, FRACTION_BITS, FRACTION_SCALE, GROUP, LANES,
    };

    /// [`super::reduce_frames`] on eight frames at a time: their lane sums are
    /// taken together, by shuffles that pair the same lanes the scalar
    /// halving pairs (`v[i] + v[i + 4]`, then `+ v[i + 2]`, then `+ v[i + 1]`),
    /// so every frame's sum is the same to the bit, with no horizontal add
    /// per frame.
    ///
    /// # Safety
    /// The CPU has AVX2.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn reduce(acc: &mut Accumulator, out: &mut [f32]) {
        const { assert!(GROUP == 8 && LANES == 8) };
        let n = out.len().min(acc.len());
        let zero = _mm256_setzero_ps();
        // Frames in the order the last step leaves them: 0 2 4 6 | 1 3 5 7.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        let chunks = n / LANES;
        for c in 0..chunks {
            let a = acc[c * LANES..].as_mut_ptr();
            let frame = |t: usize| _mm256_loadu_ps(a.add(t).cast::<f32>());
            // Lanes 0–3 plus lanes 4–7 of two frames, one per 128-bit half.
            let half = |t: usize| {
                let (x, y) = (frame(t), frame(t + 1));
                _mm256_add_ps(
                    _mm256_permute2f128_ps::<0x20>(x, y),
                    _mm256_permute2f128_ps::<0x31>(x, y),
                )
            };
            let (h01, h23, h45, h67) = (half(0), half(2), half(4), half(6));
            // Then each frame's first two of those plus its last two.
            let quarter = |p: __m256, q: __m256| {
                _mm256_add_ps(
                    _mm256_shuffle_ps::<0b01_00_01_00>(p, q),
                    _mm256_shuffle_ps::<0b11_10_11_10>(p, q),
                )
            };
            let (q0123, q4567) = (quarter(h01, h23), quarter(h45, h67));
            let sums = _mm256_add_ps(
                _mm256_shuffle_ps::<0b10_00_10_00>(q0123, q4567),
                _mm256_shuffle_ps::<0b11_01_11_01>(q0123, q4567),
            );
            let sums = _mm256_permutevar8x32_ps(sums, order);
            let o = out[c * LANES..].as_mut_ptr();
            _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), sums));
            for t in 0..LANES {
                _mm256_storeu_ps(a.add(t).cast::<f32>(), zero);
            }
        }
        let done = chunks * LANES;
        reduce_frames(&mut acc[done..], &mut out[done..]);
    }

    /// Each frame's four neighbours as `f32` from two gathers of `i16`
    /// pairs: `before` holds samples `index - 1` (low half) and `index`,
    /// `after` holds `index + 1` and `index + 2`.
    #[inline(always)]
    pub(super) unsafe fn widen_pairs(
        before: __m256i,
        after: __m256i,
    ) -> (__m256, __m256, __m256, __m256) {
        (
            _mm256_cvtepi32_ps(_mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(before))),
            _mm256_cvtepi32_ps(_mm256_srai_epi32::<16>(before)),
            _mm256_cvtepi32_ps(_mm256_srai_epi32::<16>(_mm256_slli_epi32::<16>(after))),
            _mm256_cvtepi32_ps(_mm256_srai_epi32::<16>(after)),
        )
    }

    /// The sixteen samples from `w` as floats, the first eight in `lo` and
    /// the rest in `hi`: the window both interpolators pick neighbours from.
    ///
    /// # Safety
    /// The sixteen `i16`s from `w` lie in one slice.
    #[inline(always)]
    pub(super) unsafe fn load_window(w: *const i16) -> (__m256, __m256) {
        let raw = _mm256_loadu_si256(w.cast());
        (
            _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(raw))),
            _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(raw))),
        )
    }

    /// [`super::cubic`] (fused) on eight frames: `fraction` is each
    /// position's low 32 bits, unsigned, and the arithmetic is the scalar
    /// one's, in its order, so each frame is the same to the bit. Inlined
    /// into the AVX2 and the AVX-512 interpolator alike, whose loops hoist
    /// its constants.
    #[inline(always)]
    pub(super) unsafe fn cubic_at(fraction: __m256i, [xm1, x0, x1, x2]: [__m256; 4]) -> __m256 {
        let half = _mm256_set1_ps(0.5);
        // The unsigned fraction to `f32` in two exact halves, so the one
        // rounding is the sum's, as in `u32 as f32`.
        let high = _mm256_cvtepi32_ps(_mm256_srli_epi32::<16>(fraction));
        let low = _mm256_cvtepi32_ps(_mm256_and_si256(fraction, _mm256_set1_epi32(0xffff)));
        let f = _mm256_mul_ps(
            _mm256_add_ps(_mm256_mul_ps(high, _mm256_set1_ps(65_536.0)), low),
            _mm256_set1_ps(FRACTION_SCALE),
        );
        let c1 = _mm256_mul_ps(half, _mm256_sub_ps(x1, xm1));
        let c2 = _mm256_fnmadd_ps(
            half,
            x2,
            _mm256_fmadd_ps(
                _mm256_set1_ps(2.0),
                x1,
                _mm256_fnmadd_ps(_mm256_set1_ps(2.5), x0, xm1),
            ),
        );
        let c3 = _mm256_fmadd_ps(
            half,
            _mm256_sub_ps(x2, xm1),
            _mm256_mul_ps(_mm256_set1_ps(1.5), _mm256_sub_ps(x0, x1)),
        );
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_fmadd_ps(c3, f, c2), f, c1), f, x0)
    }

    /// Whether every frame's neighbours (`index - 1` to `index + 2`) lie in
    /// `wave`, which the gathers' signed 32-bit element offsets must reach.
    pub fn gathers_in_bounds(wave: &[i16], pos: u64, step: u64, frames: usize) -> bool {
        let Some(last) = step
            .checked_mul(frames.saturating_sub(1) as u64)
            .and_then(|d| d.checked_add(pos))
        else {
            return false;
        };
        let (first, last) = (pos >> FRACTION_BITS, last >> FRACTION_BITS);
        i32::try_from(wave.len()).is_ok() && first >= 1 && last + 3 <= wave.len() as u64
    }

    /// Each lane's offset from a pass's first frame, `step * k` for lane
    /// `k`: whole samples, and the fraction's low 32 bits.
    #[inline(always)]
    pub(super) unsafe fn lane_offsets(step: u64) -> (__m256i, __m256i) {
        let mut index = [0i32; LANES];
        let mut fraction = [0i32; LANES];
        for k in 0..LANES {
            let o = step * k as u64;
            index[k] = (o >> FRACTION_BITS) as i32;
            fraction[k] = o as u32 as i32;
        }
        (
            _mm256_loadu_si256(index.as_ptr().cast()),
            _mm256_loadu_si256(fraction.as_ptr().cast()),
        )
    }

    /// Whether the 16 samples from `index - 1` of every pass's first frame
    /// lie in `wave`.
    pub(super) fn window_in_bounds(wave: &[i16], pos: u64, step: u64, frames: usize) -> bool {
        let last = step * (frames.saturating_sub(1) / LANES * LANES) as u64 + pos;
        (pos >> FRACTION_BITS) >= 1 && (last >> FRACTION_BITS) + 15 <= wave.len() as u64
    }

    /// # Safety
    /// The CPU has AVX2 and FMA, and [`gathers_in_bounds`] holds.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn interpolate(wave: &[i16], mut pos: u64, step: u64, out: &mut [f32]) -> u64 {
        let (offset_index, offset_fraction) = lane_offsets(step);
        let sign = _mm256_set1_epi32(i32::MIN);
        let one = _mm256_set1_epi32(1);
        let base = wave.as_ptr().cast::<i32>();
        let base16 = wave.as_ptr();
        let (seven, two_i, three) = (
            _mm256_set1_epi32(7),
            _mm256_set1_epi32(2),
            _mm256_set1_epi32(3),
        );
        // Frames 0 to 7 of a chunk span at most 7 steps plus one carry: with
        // steps up to 12/7 of a sample, all their neighbours lie in the 16
        // samples from the first frame's `index - 1`, read with one load.
        let window = step.saturating_mul(7) <= 12 << FRACTION_BITS
            && window_in_bounds(wave, pos, step, out.len());
        let mut chunks = out.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            let index0 = _mm256_set1_epi32((pos >> FRACTION_BITS) as i32);
            let fraction0 = _mm256_set1_epi32(pos as u32 as i32);
            let fraction = _mm256_add_epi32(fraction0, offset_fraction);
            // The fraction wrapped (an unsigned `fraction < fraction0`): a
            // carry into the index; the comparison's −1 is subtracted.
            let carry = _mm256_cmpgt_epi32(
                _mm256_xor_si256(fraction0, sign),
                _mm256_xor_si256(fraction, sign),
            );
            let index = _mm256_sub_epi32(_mm256_add_epi32(index0, offset_index), carry);
            let (xm1, x0, x1, x2) = if window {
                // SAFETY: `window` holds only if `wave_in_bounds` found the
                // sixteen samples from `index0 - 1` of every chunk in `wave`.
                let (lo, hi) = load_window(base16.add((pos >> FRACTION_BITS) as usize - 1));
                // Each frame's neighbours from `index0 - 1` on; no chunk
                // spans more than the window (`window`).
                let r = _mm256_sub_epi32(offset_index, carry);
                let pick = |r: __m256i| {
                    let high = _mm256_castsi256_ps(_mm256_cmpgt_epi32(r, seven));
                    _mm256_blendv_ps(
                        _mm256_permutevar8x32_ps(lo, r),
                        _mm256_permutevar8x32_ps(hi, r),
                        high,
                    )
                };
                (
                    pick(r),
                    pick(_mm256_add_epi32(r, one)),
                    pick(_mm256_add_epi32(r, two_i)),
                    pick(_mm256_add_epi32(r, three)),
                )
            } else {
                // SAFETY (of both gathers): `gathers_in_bounds` put every
                // `index - 1 ..= index + 2` inside `wave`; the scale of 2 makes
                // each offset count `i16`s.
                let before = _mm256_i32gather_epi32::<2>(base, _mm256_sub_epi32(index, one));
                let after = _mm256_i32gather_epi32::<2>(base, _mm256_add_epi32(index, one));
                widen_pairs(before, after)
            };
            let y = cubic_at(fraction, [xm1, x0, x1, x2]);
            _mm256_storeu_ps(chunk.as_mut_ptr(), y);
            pos += step * LANES as u64;
        }
        interpolate_frames::<true>(wave, pos, step, chunks.into_remainder())
    }
}

/// The interpolator with AVX-512's two-source permute on AVX registers: the
/// AVX2 pass with each neighbour picked from the 16-sample window by one
/// permute, where AVX2 needs two and a blend, and a last partial pass masked
/// rather than left to the scalar loop. Sixteen frames a pass in 512-bit
/// registers measured slower over a whole render: the clock drops while
/// they run and the rest of the pipeline pays for it. The arithmetic is the
/// fused plain loop's, operation for operation.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::avx2::{cubic_at, lane_offsets, load_window, widen_pairs, window_in_bounds};
    use super::{Accumulator, Lanes, BLOCK, FRACTION_BITS, GROUP, LANES};

    /// [`super::filter_mix_lanes`] two groups a pass where there are two: a
    /// pass of one group mostly waits on the biquad's recurrence, and
    /// AVX-512VL's 32 registers hold two groups' state without spilling
    /// (with AVX2's 16, two groups a pass measured slower). Each voice's
    /// eight frames are loaded at once and transposed in registers, rather
    /// than a frame's eight voices loaded one by one. The arithmetic is the
    /// fused plain loop's, operation for operation, and each frame adds the
    /// first group's lanes to the accumulators before the second's, as one
    /// group a pass does.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA, AVX-512F and AVX-512VL, and there is a row for
    /// every lane of every group.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub unsafe fn filter_mix(
        rows: &[[f32; BLOCK]],
        n: usize,
        groups: &mut [Lanes],
        left: &mut Accumulator,
        right: &mut Accumulator,
    ) {
        let mut pairs = groups.chunks_exact_mut(2);
        let mut rows = rows.chunks_exact(2 * GROUP);
        for (pair, rows) in (&mut pairs).zip(&mut rows) {
            let pair: &mut [Lanes; 2] = pair.try_into().expect("chunks of two");
            pass(rows, n, pair, left, right);
        }
        if let [lanes] = pairs.into_remainder() {
            pass(
                rows.remainder(),
                n,
                std::array::from_mut(lanes),
                left,
                right,
            );
        }
    }

    #[inline(always)]
    unsafe fn pass<const G: usize>(
        rows: &[[f32; BLOCK]],
        n: usize,
        groups: &mut [Lanes; G],
        left: &mut Accumulator,
        right: &mut Accumulator,
    ) {
        const { assert!(GROUP == 8 && LANES == 8) };
        assert!(rows.len() >= G * GROUP);
        // Loops rather than closures, which would not inherit the target
        // features and so would call each intrinsic.
        let zero = _mm256_setzero_ps();
        let [mut b0, mut b1, mut b2, mut a1, mut a2] = [[zero; G]; 5];
        let [mut z1, mut z2, mut gain, mut ramp, mut pan_left, mut pan_right] = [[zero; G]; 6];
        for (g, lanes) in groups.iter().enumerate() {
            b0[g] = _mm256_loadu_ps(lanes.b0.as_ptr());
            b1[g] = _mm256_loadu_ps(lanes.b1.as_ptr());
            b2[g] = _mm256_loadu_ps(lanes.b2.as_ptr());
            a1[g] = _mm256_loadu_ps(lanes.a1.as_ptr());
            a2[g] = _mm256_loadu_ps(lanes.a2.as_ptr());
            z1[g] = _mm256_loadu_ps(lanes.z1.as_ptr());
            z2[g] = _mm256_loadu_ps(lanes.z2.as_ptr());
            gain[g] = _mm256_loadu_ps(lanes.gain.as_ptr());
            ramp[g] = _mm256_loadu_ps(lanes.ramp.as_ptr());
            pan_left[g] = _mm256_loadu_ps(lanes.pan_left.as_ptr());
            pan_right[g] = _mm256_loadu_ps(lanes.pan_right.as_ptr());
        }
        let n = n.min(BLOCK);
        let mut t0 = 0;
        while t0 < n {
            // `t0` is a multiple of eight under `n <= BLOCK`, so the eight
            // frames from it lie in every row.
            let mut input = [[zero; LANES]; G];
            for (g, input) in input.iter_mut().enumerate() {
                let mut voices = [zero; GROUP];
                for (k, v) in voices.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(rows[g * GROUP + k][t0..t0 + LANES].as_ptr());
                }
                *input = crate::simd::transpose8(voices);
            }
            for t in t0..n.min(t0 + LANES) {
                let j = t - t0;
                let step = _mm256_set1_ps((t + 1) as f32);
                let mut l = _mm256_loadu_ps(left[t].as_ptr());
                let mut r = _mm256_loadu_ps(right[t].as_ptr());
                for g in 0..G {
                    let x = input[g][j];
                    let y = _mm256_fmadd_ps(b0[g], x, z1[g]);
                    z1[g] = _mm256_fnmadd_ps(a1[g], y, _mm256_fmadd_ps(b1[g], x, z2[g]));
                    z2[g] = _mm256_fnmadd_ps(a2[g], y, _mm256_mul_ps(b2[g], x));
                    let v = _mm256_mul_ps(_mm256_fmadd_ps(ramp[g], step, gain[g]), y);
                    l = _mm256_fmadd_ps(v, pan_left[g], l);
                    r = _mm256_fmadd_ps(v, pan_right[g], r);
                }
                _mm256_storeu_ps(left[t].as_mut_ptr(), l);
                _mm256_storeu_ps(right[t].as_mut_ptr(), r);
            }
            t0 += LANES;
        }
        for (g, out) in groups.iter_mut().enumerate() {
            _mm256_storeu_ps(out.z1.as_mut_ptr(), z1[g]);
            _mm256_storeu_ps(out.z2.as_mut_ptr(), z2[g]);
        }
    }

    /// # Safety
    /// The CPU has AVX2, FMA, AVX-512F and AVX-512VL, and
    /// [`super::avx2::gathers_in_bounds`] holds.
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    pub unsafe fn interpolate(wave: &[i16], mut pos: u64, step: u64, out: &mut [f32]) -> u64 {
        let (offset_index, offset_fraction) = lane_offsets(step);
        let one = _mm256_set1_epi32(1);
        let (two_i, three) = (_mm256_set1_epi32(2), _mm256_set1_epi32(3));
        let base = wave.as_ptr().cast::<i32>();
        let base16 = wave.as_ptr();
        let frames = out.len();
        // As in the AVX2 pass, steps up to 12/7 of a sample keep a pass's
        // neighbours within the 16 samples from its first frame's `index - 1`.
        let window = step.saturating_mul(7) <= 12 << FRACTION_BITS
            && window_in_bounds(wave, pos, step, frames);
        let mut done = 0;
        while done < frames {
            let mask: __mmask8 = if frames - done >= LANES {
                !0
            } else {
                (1u8 << (frames - done)) - 1
            };
            let index0 = _mm256_set1_epi32((pos >> FRACTION_BITS) as i32);
            let fraction0 = _mm256_set1_epi32(pos as u32 as i32);
            let fraction = _mm256_add_epi32(fraction0, offset_fraction);
            // The fraction wrapped: a carry into the index.
            let carry = _mm256_cmplt_epu32_mask(fraction, fraction0);
            let (xm1, x0, x1, x2) = if window {
                // SAFETY: `window` holds only if the 16 samples from
                // `index0 - 1` of every pass lie in `wave`.
                let (lo, hi) = load_window(base16.add((pos >> FRACTION_BITS) as usize - 1));
                // Each frame's neighbours from `index0 - 1` on.
                let r = _mm256_mask_add_epi32(offset_index, carry, offset_index, one);
                let pick = |r: __m256i| _mm256_permutex2var_ps(lo, r, hi);
                (
                    pick(r),
                    pick(_mm256_add_epi32(r, one)),
                    pick(_mm256_add_epi32(r, two_i)),
                    pick(_mm256_add_epi32(r, three)),
                )
            } else {
                let index = _mm256_add_epi32(index0, offset_index);
                let index = _mm256_mask_add_epi32(index, carry, index, one);
                let zero = _mm256_setzero_si256();
                // SAFETY (of both gathers): `gathers_in_bounds` put every
                // `index - 1 ..= index + 2` of the frames asked for inside
                // `wave`, and the mask leaves the others unread; the scale of
                // 2 makes each offset count `i16`s.
                let before = _mm256_mmask_i32gather_epi32::<2>(
                    zero,
                    mask,
                    _mm256_sub_epi32(index, one),
                    base,
                );
                let after = _mm256_mmask_i32gather_epi32::<2>(
                    zero,
                    mask,
                    _mm256_add_epi32(index, one),
                    base,
                );
                widen_pairs(before, after)
            };
            let y = cubic_at(fraction, [xm1, x0, x1, x2]);
            _mm256_mask_storeu_ps(out.as_mut_ptr().add(done), mask, y);
            let taken = (frames - done).min(LANES);
            pos += step * taken as u64;
            done += taken;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: u64 = 1 << FRACTION_BITS;

    /// A loud, busy wave: every neighbour differs, so a misplaced tap shows.
    fn wave(len: usize) -> Vec<i16> {
        (0..len)
            .map(|i| ((i as i64 * 7_919 + (i as i64 * i as i64) % 9_973) % 65_536 - 32_768) as i16)
            .collect()
    }

    fn paths() -> Vec<Isa> {
        Isa::available()
    }

    /// The frame-by-frame loop that rounds as `isa` does.
    fn frames_like(isa: Isa, wave: &[i16], pos: u64, step: u64, out: &mut [f32]) -> u64 {
        if isa.fused() {
            interpolate_frames::<true>(wave, pos, step, out)
        } else {
            interpolate_frames::<false>(wave, pos, step, out)
        }
    }

    #[test]
    fn every_path_interpolates_as_the_frame_by_frame_loop_bit_for_bit() {
        let w = wave(4_096);
        // Steps under and over the one-load window's reach (12/7 of a
        // sample), with fractions that carry into the index mid-chunk, and
        // lengths that leave a remainder.
        let steps = [
            ONE / 3,
            ONE - 1,
            ONE + ONE / 7,
            (ONE * 12) / 7,
            (ONE * 12) / 7 + 1,
            ONE * 2 + 12_345,
            ONE * 5 + ONE / 2,
        ];
        for isa in paths() {
            for &step in &steps {
                for (start, frames) in [
                    (1, 64),
                    (ONE * 7 + ONE / 2, 61),
                    (ONE * 300 - 1, 13),
                    (ONE * 5 + 3, 16),
                    (ONE * 40, 1),
                ] {
                    let start = start.max(ONE);
                    let (mut want, mut got) = (vec![0.0; frames], vec![0.0; frames]);
                    let end_want = frames_like(isa, &w, start, step, &mut want);
                    let end_got = interpolate(isa, &w, start, step, &mut got);
                    assert_eq!(end_got, end_want, "{isa:?} step {step}");
                    let same = want
                        .iter()
                        .zip(&got)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{isa:?} step {step} from {start}: {got:?} ≠ {want:?}");
                    // Fused or not, the kinds differ only by a rounding.
                    let mut unfused = vec![0.0; frames];
                    interpolate_frames::<false>(&w, start, step, &mut unfused);
                    for (a, b) in got.iter().zip(&unfused) {
                        assert!((a - b).abs() <= 32_768.0 * 1e-6, "{isa:?}: {a} vs {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_block_at_the_very_end_of_the_wave_reads_only_the_wave() {
        let w = wave(200);
        let step = ONE + ONE / 5;
        // The last frame's neighbours end on the wave's last sample, where
        // the one-load window would reach past it.
        let frames = 64;
        let start = ((w.len() as u64 - 3) << FRACTION_BITS) - step * (frames as u64 - 1);
        for isa in paths() {
            let (mut want, mut got) = (vec![0.0; frames], vec![0.0; frames]);
            frames_like(isa, &w, start, step, &mut want);
            interpolate(isa, &w, start, step, &mut got);
            assert_eq!(got, want, "{isa:?}");
        }
    }

    #[test]
    fn every_path_sums_the_lanes_in_the_same_order_bit_for_bit() {
        // Magnitudes far apart, so any other pairing of the adds rounds
        // differently; lengths with and without a remainder of eight.
        let acc: Accumulator = std::array::from_fn(|t| {
            std::array::from_fn(|k| {
                let x = ((t * GROUP + k) as f32 * 0.731).sin();
                x * 10f32.powi((t + 3 * k) as i32 % 9 - 4)
            })
        });
        for n in [BLOCK, 57, 8, 3] {
            let start: Vec<f32> = (0..n).map(|t| (t as f32 * 0.3).cos()).collect();
            let mut want = start.clone();
            reduce_frames(&mut acc.clone(), &mut want);
            for isa in paths() {
                let (mut l, mut r) = (acc, acc);
                let (mut got_l, mut got_r) = (start.clone(), start.clone());
                reduce(isa, &mut l, &mut r, &mut got_l, &mut got_r);
                for got in [&got_l, &got_r] {
                    let same = want
                        .iter()
                        .zip(got)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{isa:?} over {n} frames: {got:?} ≠ {want:?}");
                }
                assert!(l[..n].iter().chain(&r[..n]).flatten().all(|&a| a == 0.0));
            }
        }
    }

    /// What a voice did alone before voices were filtered together: its
    /// biquad over the block unless open, then the gain ramp and pan into
    /// the mix.
    fn one_voice_at_a_time(
        rows: &[[f32; BLOCK]],
        n: usize,
        voices: &[(LowPass, Lane)],
    ) -> (Vec<f32>, Vec<f32>) {
        let (mut left, mut right) = (vec![0.0f32; n], vec![0.0f32; n]);
        for (row, (filter, lane)) in rows.iter().zip(voices) {
            let mut x = row[..n].to_vec();
            if !filter.is_open() {
                filter.clone().process(&mut x);
            }
            for (t, s) in x.iter().enumerate() {
                let g = (lane.gain + lane.ramp * (t + 1) as f32) * s;
                left[t] += g * lane.pan_left;
                right[t] += g * lane.pan_right;
            }
        }
        (left, right)
    }

    #[test]
    fn voices_filtered_in_lock_step_sound_as_filtered_one_by_one() {
        let n = 57;
        let count = 3 * GROUP - 5;
        let rows: Vec<[f32; BLOCK]> = (0..count)
            .map(|v| std::array::from_fn(|t| ((t * (v + 3)) as f32 * 0.37).sin() * 20_000.0))
            .collect();
        // Three groups, the last partly empty (where two groups run a pass,
        // a pair and one alone); every third voice's filter open, and its
        // state (left from when it was closed) unused.
        let voices: Vec<(LowPass, Lane)> = (0..count)
            .map(|v| {
                let mut f = LowPass::new(v as f32 * 1.5);
                f.tune(4_000.0 + 700.0 * v as f32, 44_100.0);
                f.set_state(0.01 * v as f32, -0.02 * v as f32);
                if v % 3 == 0 {
                    f = LowPass::new(0.0);
                    f.tune(4_000.0, 44_100.0);
                    f.set_state(0.3, -0.2);
                    f.tune(13_500.0, 44_100.0);
                    assert!(f.is_open());
                }
                let lane = Lane::new(
                    &f,
                    0.1 * v as f32,
                    0.001,
                    0.6 / 32_768.0,
                    (0.2 + 0.05 * v as f32) / 32_768.0,
                );
                (f, lane)
            })
            .collect();
        let lanes: Vec<Lane> = voices.iter().map(|(_, l)| *l).collect();
        let (want_l, want_r) = one_voice_at_a_time(&rows, n, &voices);
        let mut results = Vec::new();
        for isa in paths() {
            let (mut acc_l, mut acc_r) = ([[0.0; GROUP]; BLOCK], [[0.0; GROUP]; BLOCK]);
            let mut groups: Vec<Lanes> = lanes.chunks(GROUP).map(Lanes::gather).collect();
            let mut rows = rows.clone();
            rows.resize(groups.len() * GROUP, [0.0; BLOCK]);
            filter_mix(isa, &rows, n, &mut groups, &mut acc_l, &mut acc_r);
            let states: Vec<(f32, f32)> = (0..count)
                .map(|v| groups[v / GROUP].state(v % GROUP))
                .collect();
            let (mut l, mut r) = (vec![0.0; n], vec![0.0; n]);
            reduce(isa, &mut acc_l, &mut acc_r, &mut l, &mut r);
            assert!(acc_l.iter().chain(&acc_r).flatten().all(|&a| a == 0.0));
            // Only the order the voices are summed in differs.
            let peak = want_l
                .iter()
                .chain(&want_r)
                .fold(0.0f32, |m, s| m.max(s.abs()));
            for (got, want) in l.iter().zip(&want_l).chain(r.iter().zip(&want_r)) {
                assert!(
                    (got - want).abs() <= peak * 1e-6,
                    "{isa:?}: {got} vs {want}"
                );
            }
            results.push((isa.fused(), l, r, states));
        }
        // And the compilations of one kind of arithmetic agree to the bit.
        for (i, a) in results.iter().enumerate() {
            for b in results[i + 1..].iter().filter(|b| b.0 == a.0) {
                assert_eq!(a, b);
            }
        }
    }
}
