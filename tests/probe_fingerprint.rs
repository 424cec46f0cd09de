//! The hardware fingerprint changes when the hardware does, and only then.

use std::path::{Path, PathBuf};

use minerva_setup::probe::{fingerprint, probe, ProbeOptions};
use minerva_setup::profile::{BandwidthMeasurement, GpuInfo, GpuVendor, HardwareProfile};

const GIB: u64 = 1 << 30;

fn profile(name: &str) -> HardwareProfile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/profiles")
        .join(name);
    HardwareProfile::from_file(&path).unwrap()
}

fn gpu(name: &str, vram: u64) -> GpuInfo {
    GpuInfo {
        vendor: GpuVendor::Nvidia,
        index: 0,
        name: name.into(),
        vram_total_bytes: vram,
        vram_free_bytes: Some(vram / 2),
        compute_capability: Some("8.9".into()),
        memory_bus_width_bits: Some(384),
        max_memory_clock_mhz: Some(10501),
        memory_bandwidth_bytes_per_s: Some(1.008e12),
        driver_version: Some("550.90.07".into()),
        cuda_version: Some("12.4".into()),
        pci_id: None,
        unified_memory: false,
    }
}

#[test]
fn fingerprint_is_pinned() {
    // The hash is persisted in state files: changing the algorithm would make every installed
    // machine look re-tiered. If this changes on purpose, bump "minerva-fingerprint-v1".
    let p = profile("xeon-e5-2660v3.json");
    let f = fingerprint(&p);
    assert_eq!(f.len(), 32);
    assert!(f.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(f, fingerprint(&p.clone()));
    assert_eq!(f, PINNED_XEON, "fingerprint algorithm changed");
}

const PINNED_XEON: &str = "748389e8a8c9af4ac024fd548fe24c98";

#[test]
fn fingerprint_ignores_what_changes_with_load() {
    let base = profile("container-4g.json");
    let f = fingerprint(&base);
    let mut p = base.clone();
    p.memory.available_bytes /= 3;
    p.memory.swap_free_bytes = 0;
    p.memory.cgroup.as_mut().unwrap().memory_current_bytes = Some(3 * GIB);
    p.memory_bandwidth = Some(BandwidthMeasurement {
        bytes_per_s: 1.0,
        threads: 1,
        buffer_bytes: 1,
        duration_s: 9.0,
    });
    p.disk.as_mut().unwrap().free_bytes = 1;
    p.source = "probe".into();
    p.gpu_notes.push("something".into());
    // RAM total moving by a few MiB (kernel reservations differ between boots) is the same RAM.
    p.memory.total_bytes -= 37 << 20;
    assert_eq!(fingerprint(&p), f);

    let mut g = profile("rtx4090x2.json");
    let fg = fingerprint(&g);
    for x in &mut g.gpus {
        x.vram_free_bytes = Some(1);
        x.memory_bandwidth_bytes_per_s = None;
    }
    g.gpus.reverse();
    assert_eq!(
        fingerprint(&g),
        fg,
        "GPU order or free VRAM changed the fingerprint"
    );
}

#[test]
fn fingerprint_changes_with_hardware() {
    let base = profile("cloud-2vcpu-16g.json");
    let f = fingerprint(&base);
    let changed = |edit: &dyn Fn(&mut HardwareProfile)| {
        let mut p = base.clone();
        edit(&mut p);
        fingerprint(&p)
    };
    assert_ne!(
        changed(&|p| p.cpu.brand = "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz".into()),
        f
    );
    assert_ne!(changed(&|p| p.cpu.model = Some(0x6A)), f);
    assert_ne!(changed(&|p| p.cpu.logical_cores *= 2), f);
    assert_ne!(changed(&|p| p.cpu.physical_cores += 1), f);
    assert_ne!(changed(&|p| p.memory.total_bytes += 16 * GIB), f);
    assert_ne!(
        changed(&|p| p.gpus.push(gpu("NVIDIA GeForce RTX 4090", 24 * GIB))),
        f
    );

    let two = profile("rtx4090x2.json");
    let mut one = two.clone();
    one.gpus.pop();
    assert_ne!(
        fingerprint(&one),
        fingerprint(&two),
        "removing a GPU must change it"
    );
}

#[test]
fn probing_a_root_twice_gives_the_same_fingerprint() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/roots/haswell-ep-2s");
    let opts = ProbeOptions {
        root,
        disk_path: PathBuf::from("."),
        measure_bandwidth: false,
    };
    let a = probe(&opts);
    let b = probe(&opts);
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.fingerprint, fingerprint(&a));
}

#[test]
fn reference_profiles_load_and_differ() {
    let names = [
        "apple-m2-16g.json",
        "cloud-2vcpu-16g.json",
        "container-4g.json",
        "h100-80g.json",
        "rtx4090x2.json",
        "xeon-e5-2660v3.json",
    ];
    let prints: std::collections::BTreeSet<String> =
        names.iter().map(|n| fingerprint(&profile(n))).collect();
    assert_eq!(
        prints.len(),
        names.len(),
        "two reference servers share a fingerprint"
    );
}
