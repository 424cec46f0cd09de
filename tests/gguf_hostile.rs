//! The GGUF reader against hostile and corrupt headers: mutated copies of a real header (bit
//! flips, cuts, counts and lengths overwritten with absurd values, sizes claimed far beyond the
//! bytes) are refused with an error or read as some header, never with a panic, and never by
//! allocating what a header claims. Headers are read from any Hugging Face repository, so this
//! is the reader's contract with untrusted input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use minerva_setup::gguf::reader::{read_header_from, GgufError};
use minerva_setup::gguf::writer::{header_bytes, ModelSpec, WeightLayout};
use minerva_setup::gguf::FileType;
use proptest::prelude::*;

/// The largest single allocation made since the last reset (the reader is single-threaded;
/// proptest runs the cases on this thread).
struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// No allocation may exceed this while reading headers of well under a megabyte.
const ALLOCATION_LIMIT: usize = 16 << 20;

fn header() -> Vec<u8> {
    header_bytes(&ModelSpec::tiny(WeightLayout::FileType(FileType::Q4_K_M)))
}

/// Read `bytes` as the start of a file of `claimed` bytes; return the error, if any, and the
/// largest allocation made.
fn read(bytes: &[u8], claimed: u64) -> (Result<(), GgufError>, usize) {
    LARGEST.store(0, Ordering::Relaxed);
    let r = read_header_from(bytes, claimed, Path::new("hostile.gguf")).and_then(|(h, used)| {
        assert!(
            used <= bytes.len() as u64,
            "used {used} of {} bytes",
            bytes.len()
        );
        // Deriving the shape from whatever was read must not panic either.
        h.into_model().map(|_| ())
    });
    (r, LARGEST.load(Ordering::Relaxed))
}

/// Offsets of the u64 fields a hostile header would inflate: the two counts, then the length
/// of every string and array that follows (found by walking the intact header).
fn length_fields(h: &[u8]) -> Vec<usize> {
    let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap()) as usize;
    let mut out = vec![8, 16];
    let n_kv = u64_at(16);
    let mut o = 24;
    fn value(h: &[u8], o: &mut usize, ty: u32, out: &mut Vec<usize>) {
        let u32_at = |o: usize| u32::from_le_bytes(h[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap()) as usize;
        match ty {
            0 | 1 | 7 => *o += 1,
            2 | 3 => *o += 2,
            4..=6 => *o += 4,
            10..=12 => *o += 8,
            8 => {
                out.push(*o);
                *o += 8 + u64_at(*o);
            }
            9 => {
                let elem = u32_at(*o);
                out.push(*o + 4);
                let n = u64_at(*o + 4);
                *o += 12;
                for _ in 0..n {
                    value(h, o, elem, out);
                }
            }
            _ => unreachable!("the writer writes known types"),
        }
    }
    for _ in 0..n_kv {
        out.push(o);
        o += 8 + u64_at(o);
        let ty = u32_at(o);
        o += 4;
        value(h, &mut o, ty, &mut out);
    }
    // The first tensor info's name length.
    out.push(o);
    out
}

/// Offset of the first tensor's first dimension.
fn first_dimension(h: &[u8]) -> usize {
    let name_at = *length_fields(h).last().unwrap();
    let name_len = u64::from_le_bytes(h[name_at..name_at + 8].try_into().unwrap()) as usize;
    name_at + 8 + name_len + 4
}

#[test]
fn the_intact_header_reads() {
    let h = header();
    let (r, largest) = read(&h, h.len() as u64 + (64 << 20));
    // Not all tensors fit in the header's own bytes, but with the data claimed they do.
    r.unwrap();
    assert!(largest < ALLOCATION_LIMIT);
}

#[test]
fn absurd_counts_and_lengths_are_refused_without_allocating_them() {
    let h = header();
    let fields = length_fields(&h);
    assert!(fields.len() > 10, "found {} length fields", fields.len());
    for &at in &fields {
        for huge in [u64::MAX, 1 << 62, 1 << 40, (1 << 32) + 7, 1 << 28] {
            for claimed in [h.len() as u64, 1 << 40, u64::MAX] {
                let mut m = h.clone();
                m[at..at + 8].copy_from_slice(&huge.to_le_bytes());
                let (r, largest) = read(&m, claimed);
                assert!(
                    r.is_err(),
                    "length {huge} at byte {at}, file of {claimed} bytes was accepted"
                );
                assert!(
                    largest < ALLOCATION_LIMIT,
                    "length {huge} at byte {at}, file of {claimed} bytes: allocated {largest} bytes"
                );
            }
        }
    }
}

#[test]
fn dimensions_whose_product_overflows_are_refused() {
    let h = header();
    let at = first_dimension(&h);
    // Elements or bytes past u64, whatever size the file claims; or more bytes than it claims.
    for (d, claimed) in [
        (u64::MAX, u64::MAX),
        (1 << 62, u64::MAX),
        (1 << 60, u64::MAX),
        (1 << 33, 1 << 40),
    ] {
        let mut m = h.clone();
        m[at..at + 8].copy_from_slice(&d.to_le_bytes());
        let (r, largest) = read(&m, claimed);
        let e = r.expect_err("an impossible tensor was accepted");
        assert!(
            matches!(e, GgufError::Malformed { .. }),
            "dimension {d}: {e}"
        );
        assert!(e.to_string().contains("hostile.gguf"), "{e}");
        assert!(largest < ALLOCATION_LIMIT);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random bytes overwritten anywhere, and the header cut anywhere: an error or a header,
    /// never a panic, never a large allocation.
    #[test]
    fn mutated_headers_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
        claimed_extra in prop_oneof![Just(0u64), Just(64u64 << 20), Just(1u64 << 40), Just(u64::MAX)],
    ) {
        let mut m = header();
        for (i, b) in edits {
            let at = i.index(m.len());
            m[at] = b;
        }
        let keep = cut.index(m.len() + 1);
        m.truncate(keep);
        let claimed = (m.len() as u64).saturating_add(claimed_extra);
        let (_, largest) = read(&m, claimed);
        prop_assert!(largest < ALLOCATION_LIMIT, "allocated {} bytes", largest);
    }

    /// One length or count field set to any value.
    #[test]
    fn any_value_in_a_length_field_is_safe(
        which in any::<prop::sample::Index>(),
        value in any::<u64>(),
        claimed in prop_oneof![Just(None), Just(Some(1u64 << 40)), Just(Some(u64::MAX))],
    ) {
        let h = header();
        let fields = length_fields(&h);
        let at = fields[which.index(fields.len())];
        let mut m = h.clone();
        m[at..at + 8].copy_from_slice(&value.to_le_bytes());
        let (_, largest) = read(&m, claimed.unwrap_or(m.len() as u64));
        prop_assert!(largest < ALLOCATION_LIMIT, "allocated {} bytes", largest);
    }
}
