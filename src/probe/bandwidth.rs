//! A short streaming-read memory-bandwidth measurement.
//!
//! CPU decode speed of an LLM is bounded by how fast the weights stream from RAM, so the probe
//! measures it: all physical cores sum `u64` lanes over a buffer far larger than the last-level
//! cache, repeatedly, and the best pass counts (the least disturbed by other work). The whole
//! measurement, allocation included, stays well within a second.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::profile::BandwidthMeasurement;

const MIB: u64 = 1 << 20;

/// Passes are repeated until this much time has been spent reading (at least `MIN_PASSES`).
const READ_BUDGET: Duration = Duration::from_millis(150);
const MIN_PASSES: u32 = 3;
const MAX_PASSES: u32 = 20;

/// Buffer size for the measurement.
///
/// Four times the L3 keeps the cache from flattering the figure, but the L3 that a VM reports
/// can be the host's whole cache (some small cloud VMs report hundreds of MiB), and allocating and
/// touching several GiB would blow the time budget. So: at least 256 MiB (beyond any real
/// per-socket L3 of today but AMD's largest 3D V-Cache parts), at most 1 GiB (a second is the
/// budget; touching and reading 1 GiB takes a few hundred ms), and never more than an eighth
/// of the memory this process may still use, so that the probe cannot push a small container
/// towards its OOM killer.
pub fn buffer_bytes(l3_cache_bytes: Option<u64>, usable_free_bytes: u64) -> u64 {
    let wanted = (4 * l3_cache_bytes.unwrap_or(0)).clamp(256 * MIB, 1024 * MIB);
    wanted.min(usable_free_bytes / 8).max(16 * MIB)
}

/// Measure with `threads` threads over `buffer_bytes` bytes. `None` when the buffer cannot be
/// allocated.
pub fn measure(threads: u32, buffer_bytes: u64) -> Option<BandwidthMeasurement> {
    let started = Instant::now();
    let threads = threads.max(1) as usize;
    // Whole cache lines per thread, so every thread reads the same amount.
    let per_thread = ((buffer_bytes / 8) as usize / threads) & !7;
    if per_thread == 0 {
        return None;
    }
    let n = per_thread * threads;

    let mut buf: Vec<u64> = Vec::new();
    buf.try_reserve_exact(n).ok()?;
    // Fresh pages are mapped lazily: write every one of them (from the thread that will read
    // it, which also places it on that thread's NUMA node) before timing anything.
    std::thread::scope(|s| {
        for (t, chunk) in buf.spare_capacity_mut()[..n]
            .chunks_mut(per_thread)
            .enumerate()
        {
            s.spawn(move || {
                for (i, x) in chunk.iter_mut().enumerate() {
                    x.write((t * per_thread + i) as u64);
                }
            });
        }
    });
    // SAFETY: the scope above wrote all `n` elements of the reserved capacity.
    unsafe { buf.set_len(n) };

    let mut best = Duration::MAX;
    let mut passes = 0;
    let reading = Instant::now();
    // One pass first as a warm-up (TLB, frequency ramp); its time is discarded.
    let _ = timed_pass(&buf, per_thread, threads);
    while passes < MIN_PASSES || (reading.elapsed() < READ_BUDGET && passes < MAX_PASSES) {
        best = best.min(timed_pass(&buf, per_thread, threads));
        passes += 1;
    }
    let bytes = (n * 8) as u64;
    Some(BandwidthMeasurement {
        bytes_per_s: bytes as f64 / best.as_secs_f64().max(1e-9),
        threads: threads as u32,
        buffer_bytes: bytes,
        duration_s: started.elapsed().as_secs_f64(),
    })
}

/// One read of the whole buffer by all threads at once; the time from the first thread's
/// start to the last thread's end.
fn timed_pass(buf: &[u64], per_thread: usize, threads: usize) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = std::thread::scope(|s| {
        let handles: Vec<_> = buf
            .chunks(per_thread)
            .map(|chunk| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let t0 = Instant::now();
                    std::hint::black_box(sum_lanes(std::hint::black_box(chunk)));
                    (t0, Instant::now())
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let start = spans.iter().map(|s| s.0).min();
    let end = spans.iter().map(|s| s.1).max();
    match (start, end) {
        (Some(a), Some(b)) => b - a,
        _ => Duration::MAX,
    }
}

/// Sum with eight independent accumulators so the loop is limited by loads, not by one add
/// chain; the compiler vectorises it.
fn sum_lanes(data: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let chunks = data.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = acc[i].wrapping_add(c[i]);
        }
    }
    acc.iter().chain(rest).fold(0u64, |a, &b| a.wrapping_add(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_size_rules() {
        // Small L3: the 256 MiB floor.
        assert_eq!(buffer_bytes(Some(32 * MIB), 24 << 30), 256 * MIB);
        // A VM reporting a host-wide 504 MiB L3: capped at 1 GiB, not 2 GiB.
        assert_eq!(buffer_bytes(Some(504 * MIB), 24 << 30), 1024 * MIB);
        // A 1 GiB container: an eighth of it.
        assert_eq!(buffer_bytes(Some(32 * MIB), 1 << 30), 128 * MIB);
        // Unknown L3: the floor.
        assert_eq!(buffer_bytes(None, 64 << 30), 256 * MIB);
    }

    #[test]
    fn sums_every_element() {
        let v: Vec<u64> = (1..=21).collect();
        assert_eq!(sum_lanes(&v), 231);
    }

    #[test]
    fn small_measurement_reports_what_it_read() {
        let m = measure(2, 16 * MIB).unwrap();
        assert_eq!(m.threads, 2);
        assert_eq!(m.buffer_bytes, 16 * MIB);
        assert!(m.bytes_per_s > 1e8, "{}", m.bytes_per_s);
    }
}
