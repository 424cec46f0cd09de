//! The probe against fixture roots (fake /proc and /sys trees in tests/fixtures/roots): each
//! test asserts figures that would come out differently if the parsing were wrong.

use std::path::{Path, PathBuf};

use minerva_setup::probe::cpu::{self, CpuSource};
use minerva_setup::probe::{gpu, memory, probe, ProbeOptions};
use minerva_setup::profile::{GpuVendor, HardwareProfile, SimdLevel};

const GIB: u64 = 1 << 30;

fn root(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/roots")
        .join(name)
}

fn probe_root(name: &str) -> HardwareProfile {
    let tmp = std::env::temp_dir();
    probe(&ProbeOptions {
        root: root(name),
        disk_path: tmp,
        measure_bandwidth: true,
    })
}

#[test]
fn haswell_ep_two_sockets_with_hyperthreading() {
    let p = probe_root("haswell-ep-2s");
    let c = &p.cpu;
    assert_eq!(c.arch, "x86_64");
    assert_eq!(c.vendor, "GenuineIntel");
    assert_eq!(c.brand, "Intel(R) Xeon(R) CPU E5-2660 v3 @ 2.60GHz");
    assert_eq!(
        (c.family, c.model, c.stepping),
        (Some(6), Some(0x3F), Some(2))
    );
    assert_eq!(c.microarchitecture, "Haswell-EP");
    assert_eq!(c.launch_year, Some(2014));
    // 2 sockets × 10 cores (core ids 0-4 and 8-12, as Haswell-EP numbers them) × 2 threads.
    assert_eq!(c.logical_cores, 40);
    assert_eq!(c.physical_cores, 20);
    assert_eq!(c.sockets, 2);
    assert!(c.simd.avx2 && c.simd.fma && c.simd.f16c && c.simd.sse4_2 && c.simd.avx);
    assert!(!c.simd.avx512f && !c.simd.avx_vnni && !c.simd.amx);
    assert_eq!(c.simd_level, SimdLevel::Avx2);
    // Caches from sysfs: the instruction cache at level 1 is skipped, L2/L3 are per instance.
    assert_eq!(c.l2_cache_bytes, Some(256 << 10));
    assert_eq!(c.l3_cache_bytes, Some(25600 << 10));
    // cgroup v2 nested: the service says max, its parent slice 32 GiB; the service's cpu.max
    // 8 cores, the slice's max.
    let cg = p.memory.cgroup.as_ref().expect("cgroup");
    assert_eq!(cg.version, 2);
    assert_eq!(cg.path, "/system.slice/minerva.service");
    assert_eq!(cg.memory_max_bytes, Some(32 * GIB));
    assert_eq!(cg.memory_current_bytes, Some(GIB));
    assert_eq!(cg.cpu_quota_cores, Some(8.0));
    assert_eq!(c.quota_cores, Some(8.0));
    assert_eq!(p.memory.total_bytes, 131_915_236 * 1024);
    assert_eq!(p.memory.available_bytes, 120_987_654 * 1024);
    assert_eq!(p.memory.swap_total_bytes, 8_388_604 * 1024);
    assert_eq!(p.memory.usable_bytes, 32 * GIB);
    // Nothing below a fixture root can be measured or asked of NVML.
    assert!(p.memory_bandwidth.is_none());
    assert!(p.gpus.is_empty());
    assert!(
        p.gpu_notes.iter().any(|n| n.contains("NVIDIA not probed")),
        "{:?}",
        p.gpu_notes
    );
    assert!(
        p.gpu_notes.iter().any(|n| n.starts_with("no AMD GPU")),
        "{:?}",
        p.gpu_notes
    );
    assert!(p.source.starts_with("probe root "), "{}", p.source);
    assert_eq!(p.fingerprint, minerva_setup::probe::fingerprint(&p));
}

#[test]
fn neoverse_n1_from_arm_cpuinfo() {
    let p = probe_root("neoverse-n1");
    let c = &p.cpu;
    assert_eq!(c.arch, "aarch64");
    assert_eq!(c.vendor, "ARM");
    assert_eq!(c.brand, "ARM Neoverse-N1");
    // Implementer, part and revision are kept as the raw ids.
    assert_eq!(
        (c.family, c.model, c.stepping),
        (Some(0x41), Some(0xD0C), Some(1))
    );
    assert_eq!(c.microarchitecture, "Neoverse-N1");
    assert_eq!(c.launch_year, Some(2019));
    assert_eq!((c.logical_cores, c.physical_cores, c.sockets), (4, 4, 1));
    assert!(c.simd.neon && c.simd.dotprod && !c.simd.sve);
    assert!(!c.simd.avx && !c.simd.sse4_2);
    assert_eq!(c.simd_level, SimdLevel::NeonDotprod);
    assert_eq!(p.memory.total_bytes, 16_127_432 * 1024);
    assert!(p.memory.cgroup.is_none());
    assert_eq!(p.memory.usable_bytes, p.memory.total_bytes);
    assert_eq!(c.quota_cores, None);
}

#[test]
fn docker_cgroup_v1_limits() {
    let p = probe_root("docker-v1");
    let cg = p.memory.cgroup.as_ref().expect("cgroup");
    assert_eq!(cg.version, 1);
    assert_eq!(cg.path, "/docker/3f2a9c1e5b7d");
    // The container's 2 GiB, not the page-rounded i64::MAX of the parents.
    assert_eq!(cg.memory_max_bytes, Some(2 * GIB));
    assert_eq!(cg.memory_current_bytes, Some(256 << 20));
    assert_eq!(cg.cpu_quota_cores, Some(1.5));
    assert_eq!(p.cpu.quota_cores, Some(1.5));
    assert_eq!(p.memory.total_bytes, 65_865_364 * 1024);
    assert_eq!(p.memory.usable_bytes, 2 * GIB);
    // Skylake-SP (model 0x55 stepping 4, not Cascade Lake) with AVX-512 but no VNNI.
    assert_eq!(p.cpu.microarchitecture, "Skylake-SP");
    assert_eq!(p.cpu.simd_level, SimdLevel::Avx512);
    assert_eq!((p.cpu.logical_cores, p.cpu.physical_cores), (4, 2));
    // compute_cores uses physical cores capped by the quota.
    assert_eq!(p.compute_cores(), 1);
}

#[test]
fn epyc_container_with_mi300x_and_a_bmc_vga() {
    let p = probe_root("epyc-mi300x");
    assert_eq!(p.cpu.microarchitecture, "Zen 4");
    assert_eq!(p.cpu.launch_year, Some(2022));
    assert_eq!((p.cpu.family, p.cpu.model), (Some(0x19), Some(0x11)));
    assert_eq!(p.cpu.simd_level, SimdLevel::Avx512Vnni);
    assert!(p.cpu.simd.avx512_bf16 && !p.cpu.simd.avx_vnni);
    // sysfs topology: 8 CPUs on 4 cores.
    assert_eq!(
        (p.cpu.logical_cores, p.cpu.physical_cores, p.cpu.sockets),
        (8, 4, 1)
    );
    assert_eq!(p.cpu.l3_cache_bytes, Some(32 << 20));
    // cgroup namespace: the path is "/" and the limit sits on the mount root.
    let cg = p.memory.cgroup.as_ref().expect("cgroup");
    assert_eq!((cg.version, cg.path.as_str()), (2, "/"));
    assert_eq!(cg.memory_max_bytes, Some(256 * GIB));
    assert_eq!(p.memory.usable_bytes, 256 * GIB);
    assert_eq!(p.cpu.quota_cores, Some(4.0));
    // card0 is the MI300X; card1 (ASPEED, 0x1a03), connectors and render nodes are skipped.
    assert_eq!(p.gpus.len(), 1, "{:?}", p.gpus);
    let g = &p.gpus[0];
    assert_eq!(g.vendor, GpuVendor::Amd);
    assert_eq!(g.index, 0);
    assert_eq!(g.name, "AMD Instinct MI300X");
    assert_eq!(g.vram_total_bytes, 206_141_652_992);
    assert_eq!(g.vram_free_bytes, Some(206_141_652_992 - 299_663_360));
    assert_eq!(g.pci_id.as_deref(), Some("0x1002:0x74a1"));
    assert_eq!(g.memory_bandwidth_bytes_per_s, Some(5.3e12));
    assert!(!g.unified_memory);
    assert!(
        !p.gpu_notes.iter().any(|n| n.starts_with("no AMD GPU")),
        "{:?}",
        p.gpu_notes
    );
}

#[test]
fn drm_listing_keeps_cards_only_in_order() {
    let devs = gpu::read_drm(&root("epyc-mi300x"));
    let cards: Vec<(&str, u32, u32)> = devs
        .iter()
        .map(|d| (d.card.as_str(), d.vendor, d.device))
        .collect();
    assert_eq!(
        cards,
        vec![("card0", 0x1002, 0x74a1), ("card1", 0x1a03, 0x2000)]
    );
}

#[test]
fn amd_product_name_wins_and_unknown_ids_say_so() {
    let tmp = tempfile::tempdir().unwrap();
    let card = |n: u32, device: &str, name: Option<&str>| {
        let d = tmp.path().join(format!("sys/class/drm/card{n}/device"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("vendor"), "0x1002\n").unwrap();
        std::fs::write(d.join("device"), format!("{device}\n")).unwrap();
        std::fs::write(d.join("mem_info_vram_total"), "25753026560\n").unwrap();
        if let Some(name) = name {
            std::fs::write(d.join("product_name"), format!("{name}\n")).unwrap();
        }
    };
    card(0, "0x744c", None);
    card(1, "0x1234", None);
    card(2, "0x740f", Some("Instinct MI210 (board FRU)"));
    // card10 sorts after card2 by number, not by name.
    card(10, "0x738c", None);
    let r = gpu::probe_gpus(tmp.path(), false);
    let names: Vec<&str> = r.gpus.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "AMD Radeon RX 7900 XTX/XT",
            "AMD GPU 0x1234",
            "Instinct MI210 (board FRU)",
            "AMD Instinct MI100"
        ]
    );
    assert_eq!(
        r.gpus.iter().map(|g| g.index).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert_eq!(r.gpus[1].memory_bandwidth_bytes_per_s, None);
    assert_eq!(r.gpus[1].vram_free_bytes, None);
}

#[test]
fn intel_gpu_listed_only_with_local_memory() {
    let tmp = tempfile::tempdir().unwrap();
    for (n, device, lmem) in [(0, "0x56a0", Some("17179869184")), (1, "0x9a49", None)] {
        let c = tmp.path().join(format!("sys/class/drm/card{n}"));
        std::fs::create_dir_all(c.join("device")).unwrap();
        std::fs::write(c.join("device/vendor"), "0x8086\n").unwrap();
        std::fs::write(c.join("device/device"), device).unwrap();
        if let Some(l) = lmem {
            std::fs::write(c.join("lmem_total_bytes"), l).unwrap();
        }
    }
    let r = gpu::probe_gpus(tmp.path(), false);
    assert_eq!(r.gpus.len(), 1);
    assert_eq!(r.gpus[0].vendor, GpuVendor::Intel);
    assert_eq!(r.gpus[0].vram_total_bytes, 16 * GIB);
    assert_eq!(r.gpus[0].name, "Intel GPU 0x56a0");
}

#[test]
fn nvidia_in_sysfs_without_nvml_is_noted() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("sys/class/drm/card0/device");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("vendor"), "0x10de\n").unwrap();
    std::fs::write(d.join("device"), "0x2684\n").unwrap();
    let r = gpu::probe_gpus(tmp.path(), false);
    assert!(r.gpus.is_empty());
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("0x2684") && n.contains("card0")),
        "{:?}",
        r.notes
    );
}

// ---------------------------------------------------------------------------------------------
// /proc/cpuinfo parsing on its own

#[test]
fn cpuinfo_haswell_ep_parse() {
    let text = std::fs::read_to_string(root("haswell-ep-2s").join("proc/cpuinfo")).unwrap();
    let c = cpu::parse_cpuinfo(&text);
    assert_eq!(c.processors.len(), 40);
    assert_eq!(c.processors[0], (Some(0), Some(0)));
    assert_eq!(c.processors[39], (Some(1), Some(12)));
    assert_eq!(c.cache_size_bytes, Some(25600 << 10));
    let t = c.topology().unwrap();
    assert_eq!((t.logical, t.physical, t.sockets), (40, 20, 2));
    let id = c.identity();
    assert_eq!(id.vendor, "GenuineIntel");
    assert_eq!(
        (id.family, id.model, id.stepping),
        (Some(6), Some(63), Some(2))
    );
}

#[test]
fn cpuinfo_arm_with_sve_and_unknown_part() {
    // A Neoverse-V1 (Graviton3) block, then an unknown implementer.
    let v1 = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd40\nCPU revision\t: 1\n";
    let id = cpu::parse_cpuinfo(v1).identity();
    assert_eq!(id.brand, "ARM Neoverse-V1");
    assert!(id.simd.sve && id.simd.dotprod && id.simd.neon);
    assert_eq!(id.simd.level(), SimdLevel::Sve);
    let odd = "processor\t: 0\nFeatures\t: fp asimd\nCPU implementer\t: 0x99\nCPU part\t: 0x123\nCPU revision\t: 0\n";
    let id = cpu::parse_cpuinfo(odd).identity();
    assert_eq!(id.vendor, "ARM implementer 0x99");
    assert_eq!(id.brand, "ARM implementer 0x99 part 0x123");
    assert_eq!((id.family, id.model), (Some(0x99), Some(0x123)));
    assert_eq!(id.simd.level(), SimdLevel::Neon);
    let p = probe_cpu_text(odd);
    assert_eq!(p.microarchitecture, "unknown");
    assert_eq!(p.launch_year, None);
}

fn probe_cpu_text(text: &str) -> minerva_setup::profile::CpuInfo {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("proc")).unwrap();
    std::fs::write(tmp.path().join("proc/cpuinfo"), text).unwrap();
    cpu::probe_cpu(&CpuSource::Root {
        root: tmp.path().to_path_buf(),
    })
}

// ---------------------------------------------------------------------------------------------
// Microarchitecture table

#[test]
fn microarchitecture_table() {
    let intel = "GenuineIntel";
    let amd = "AuthenticAMD";
    type Case = (&'static str, u32, u32, u32, Option<(&'static str, u16)>);
    let cases: &[Case] = &[
        (intel, 6, 0x2A, 7, Some(("Sandy Bridge", 2011))),
        (intel, 6, 0x2D, 7, Some(("Sandy Bridge-EP", 2012))),
        (intel, 6, 0x3A, 9, Some(("Ivy Bridge", 2012))),
        (intel, 6, 0x3E, 4, Some(("Ivy Bridge-EP", 2013))),
        (intel, 6, 0x3C, 3, Some(("Haswell", 2013))),
        (intel, 6, 0x3F, 2, Some(("Haswell-EP", 2014))),
        (intel, 6, 0x4F, 1, Some(("Broadwell-EP", 2016))),
        (intel, 6, 0x3D, 4, Some(("Broadwell", 2014))),
        (intel, 6, 0x5E, 3, Some(("Skylake", 2015))),
        (intel, 6, 0x55, 4, Some(("Skylake-SP", 2017))),
        (intel, 6, 0x55, 7, Some(("Cascade Lake", 2019))),
        (intel, 6, 0x55, 11, Some(("Cooper Lake", 2020))),
        (intel, 6, 0x8E, 9, Some(("Kaby Lake", 2016))),
        (intel, 6, 0x9E, 10, Some(("Coffee Lake", 2017))),
        (intel, 6, 0xA5, 5, Some(("Comet Lake", 2020))),
        (intel, 6, 0x7E, 5, Some(("Ice Lake", 2019))),
        (intel, 6, 0x6A, 6, Some(("Ice Lake-SP", 2021))),
        (intel, 6, 0x8C, 1, Some(("Tiger Lake", 2020))),
        (intel, 6, 0x97, 2, Some(("Alder Lake", 2021))),
        (intel, 6, 0xB7, 1, Some(("Raptor Lake", 2022))),
        (intel, 6, 0x8F, 8, Some(("Sapphire Rapids", 2023))),
        (intel, 6, 0xCF, 2, Some(("Emerald Rapids", 2023))),
        (intel, 6, 0xAA, 4, Some(("Meteor Lake", 2023))),
        (intel, 6, 0xC6, 2, Some(("Arrow Lake", 2024))),
        (intel, 6, 0xBD, 1, Some(("Lunar Lake", 2024))),
        (intel, 6, 0xAD, 1, Some(("Granite Rapids", 2024))),
        (intel, 6, 0xAF, 3, Some(("Sierra Forest", 2024))),
        (intel, 6, 0xFF, 0, None),
        (intel, 0x13, 0x01, 0, None),
        (amd, 0x17, 0x01, 2, Some(("Zen", 2017))),
        (amd, 0x17, 0x08, 2, Some(("Zen+", 2018))),
        (amd, 0x17, 0x18, 1, Some(("Zen+", 2019))),
        (amd, 0x17, 0x31, 0, Some(("Zen 2", 2019))),
        (amd, 0x17, 0x71, 0, Some(("Zen 2", 2019))),
        (amd, 0x19, 0x01, 1, Some(("Zen 3", 2021))),
        (amd, 0x19, 0x21, 0, Some(("Zen 3", 2020))),
        (amd, 0x19, 0x44, 1, Some(("Zen 3+", 2022))),
        (amd, 0x19, 0x11, 1, Some(("Zen 4", 2022))),
        (amd, 0x19, 0x61, 2, Some(("Zen 4", 2022))),
        (amd, 0x19, 0xA0, 1, Some(("Zen 4c", 2023))),
        (amd, 0x1A, 0x02, 1, Some(("Zen 5", 2024))),
        (amd, 0x1A, 0x44, 0, Some(("Zen 5", 2024))),
        (amd, 0x1A, 0x11, 0, Some(("Zen 5c", 2024))),
        (amd, 0x1A, 0xF0, 0, None),
        (amd, 0x19, 0xF0, 0, None),
        ("CentaurHauls", 6, 0x0F, 0, None),
    ];
    for &(vendor, family, model, stepping, want) in cases {
        assert_eq!(
            cpu::microarchitecture(vendor, family, model, stepping),
            want,
            "{vendor} family {family:#x} model {model:#x} stepping {stepping}"
        );
    }
}

#[test]
fn unknown_x86_ids_are_kept_raw() {
    let text = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 19\nmodel\t\t: 1\nmodel name\t: Intel(R) Future CPU\nstepping\t: 0\nflags\t\t: sse4_2 avx avx2 fma f16c avx512f avx512bw avx512_vnni avx512_bf16 amx_tile\n";
    let c = probe_cpu_text(text);
    assert_eq!(c.microarchitecture, "unknown");
    assert_eq!(
        (c.family, c.model, c.stepping),
        (Some(19), Some(1), Some(0))
    );
    assert_eq!(c.simd_level, SimdLevel::Amx);
}

// ---------------------------------------------------------------------------------------------
// cgroup parsing on temporary roots

struct FakeRoot(tempfile::TempDir);

impl FakeRoot {
    fn new(proc_self_cgroup: &str) -> FakeRoot {
        let t = FakeRoot(tempfile::tempdir().unwrap());
        t.write("proc/self/cgroup", proc_self_cgroup);
        t
    }
    fn write(&self, rel: &str, text: &str) {
        let p = self.0.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    fn read(&self) -> Option<minerva_setup::profile::CgroupLimits> {
        memory::read_cgroup(self.0.path())
    }
}

#[test]
fn cgroup_v2_max_means_no_limit() {
    let r = FakeRoot::new("0::/user.slice/session-1.scope\n");
    r.write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
    r.write("sys/fs/cgroup/user.slice/memory.max", "max\n");
    r.write("sys/fs/cgroup/user.slice/cpu.max", "max 100000\n");
    r.write(
        "sys/fs/cgroup/user.slice/session-1.scope/memory.max",
        "max\n",
    );
    let cg = r.read().unwrap();
    assert_eq!(
        (cg.version, cg.memory_max_bytes, cg.cpu_quota_cores),
        (2, None, None)
    );
}

#[test]
fn cgroup_v2_leaf_limit_tighter_than_parent() {
    let r = FakeRoot::new("0::/a/b/c\n");
    r.write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
    r.write("sys/fs/cgroup/a/memory.max", "8589934592\n");
    r.write("sys/fs/cgroup/a/b/memory.max", "max\n");
    r.write("sys/fs/cgroup/a/b/c/memory.max", "1073741824\n");
    r.write("sys/fs/cgroup/a/cpu.max", "50000 100000\n");
    r.write("sys/fs/cgroup/a/b/c/cpu.max", "300000 100000\n");
    let cg = r.read().unwrap();
    assert_eq!(cg.memory_max_bytes, Some(GIB));
    assert_eq!(cg.cpu_quota_cores, Some(0.5));
}

#[test]
fn cgroup_v2_namespace_root_limit() {
    let r = FakeRoot::new("0::/\n");
    r.write("sys/fs/cgroup/cgroup.controllers", "cpu memory\n");
    r.write("sys/fs/cgroup/memory.max", "4294967296\n");
    r.write("sys/fs/cgroup/cpu.max", "200000 100000\n");
    let cg = r.read().unwrap();
    assert_eq!(cg.memory_max_bytes, Some(4 * GIB));
    assert_eq!(cg.cpu_quota_cores, Some(2.0));
}

#[test]
fn cgroup_v1_huge_value_and_minus_one_mean_no_limit() {
    let r = FakeRoot::new("4:memory:/\n3:cpu,cpuacct:/\n");
    r.write(
        "sys/fs/cgroup/memory/memory.limit_in_bytes",
        "9223372036854771712\n",
    );
    r.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    r.write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    let cg = r.read().unwrap();
    assert_eq!(
        (cg.version, cg.memory_max_bytes, cg.cpu_quota_cores),
        (1, None, None)
    );
}

#[test]
fn cgroup_v1_path_missing_below_mount_reads_mount_root() {
    // A v1 container without a cgroup namespace: /proc/self/cgroup names the host's path, but
    // the container's own cgroup is what is mounted at /sys/fs/cgroup/memory.
    let r = FakeRoot::new(
        "9:memory:/kubepods/burstable/pod1/abc\n5:cpu,cpuacct:/kubepods/burstable/pod1/abc\n",
    );
    r.write("sys/fs/cgroup/memory/memory.limit_in_bytes", "3221225472\n");
    r.write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "250000\n");
    r.write("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
    let cg = r.read().unwrap();
    assert_eq!(cg.memory_max_bytes, Some(3 * GIB));
    assert_eq!(cg.cpu_quota_cores, Some(2.5));
}

#[test]
fn cgroup_hybrid_host_uses_v1_limits() {
    // v1 controllers plus an empty v2 tree on /sys/fs/cgroup/unified (systemd "hybrid").
    let r = FakeRoot::new("4:memory:/job\n1:cpu:/\n0::/\n");
    r.write("sys/fs/cgroup/unified/cgroup.controllers", "\n");
    r.write(
        "sys/fs/cgroup/memory/job/memory.limit_in_bytes",
        "536870912\n",
    );
    let cg = r.read().unwrap();
    assert_eq!((cg.version, cg.memory_max_bytes), (1, Some(512 << 20)));
}

#[test]
fn no_cgroup_file_means_none() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(memory::read_cgroup(tmp.path()).is_none());
}

#[test]
fn usable_memory_is_the_smaller_of_ram_and_limit() {
    let m = memory::Meminfo {
        total_bytes: 64 * GIB,
        available_bytes: 60 * GIB,
        ..Default::default()
    };
    let limited = |l: Option<u64>| minerva_setup::profile::CgroupLimits {
        version: 2,
        path: "/".into(),
        memory_max_bytes: l,
        memory_current_bytes: None,
        cpu_quota_cores: None,
    };
    assert_eq!(
        memory::memory_info(m, Some(limited(Some(4 * GIB)))).usable_bytes,
        4 * GIB
    );
    assert_eq!(
        memory::memory_info(m, Some(limited(Some(128 * GIB)))).usable_bytes,
        64 * GIB
    );
    assert_eq!(
        memory::memory_info(m, Some(limited(None))).usable_bytes,
        64 * GIB
    );
    assert_eq!(memory::memory_info(m, None).usable_bytes, 64 * GIB);
}

#[test]
fn sysfs_topology_without_sibling_lists_and_with_an_offline_cpu() {
    // Old kernels have only physical_package_id and core_id; cpu3 is offline (no topology
    // directory) and is not counted, as lscpu -p does not count it.
    let tmp = tempfile::tempdir().unwrap();
    for (cpu, package, core) in [(0, 0, 0), (1, 0, 0), (2, 1, 0), (4, 1, 1)] {
        let t = tmp
            .path()
            .join(format!("sys/devices/system/cpu/cpu{cpu}/topology"));
        std::fs::create_dir_all(&t).unwrap();
        std::fs::write(t.join("physical_package_id"), format!("{package}\n")).unwrap();
        std::fs::write(t.join("core_id"), format!("{core}\n")).unwrap();
    }
    std::fs::create_dir_all(tmp.path().join("sys/devices/system/cpu/cpu3")).unwrap();
    std::fs::create_dir_all(tmp.path().join("sys/devices/system/cpu/cpufreq")).unwrap();
    let t = cpu::topology_from_sysfs(tmp.path()).unwrap();
    // Core 0 exists in both packages: (0,0) and (1,0) are two cores, plus (1,1).
    assert_eq!((t.logical, t.physical, t.sockets), (4, 3, 2));
}
