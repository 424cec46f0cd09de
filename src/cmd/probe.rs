//! `minerva-setup probe`: read the hardware and print the `HardwareProfile`.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use crate::app::{Ctx, Human};
use crate::exit::{Exit, Failure, ResultExt};
use crate::profile::{GpuVendor, HardwareProfile};

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Skip the memory-bandwidth measurement (about 0.3 s).
    #[arg(long)]
    pub no_bandwidth: bool,
    /// Also save the profile as JSON to FILE (written atomically), for `--hardware FILE` elsewhere.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
}

pub fn run(ctx: &Ctx, args: &ProbeArgs) -> Result<(), Failure> {
    let profile = ctx.hardware(!args.no_bandwidth)?;
    if let Some(path) = &args.save {
        let json = serde_json::to_vec_pretty(&profile)?;
        crate::fsutil::write_atomic(path, &json)
            .exit(Exit::Failure)
            .map_err(|f| f.hint("choose a writable path for --save"))?;
    }
    ctx.emit(&profile)
}

fn gib(b: u64) -> String {
    format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
}

/// Sizes of caches and buffers: KiB below 1 MiB, MiB below 1 GiB.
fn size(b: u64) -> String {
    if b < 1 << 20 {
        format!("{} KiB", b >> 10)
    } else if b < 1 << 30 {
        format!("{} MiB", b >> 20)
    } else {
        gib(b)
    }
}

fn vendor_name(v: GpuVendor) -> &'static str {
    match v {
        GpuVendor::Nvidia => "NVIDIA",
        GpuVendor::Amd => "AMD",
        GpuVendor::Apple => "Apple",
        GpuVendor::Intel => "Intel",
        GpuVendor::Other => "other",
    }
}

/// Which of llama.cpp's CPU kernel variants these features select, and which are installed.
fn kernels_line(f: &crate::profile::SimdFeatures) -> String {
    use crate::llama::cpu;
    let expected = match cpu::expected_variant(f) {
        Some(v) => format!(
            "llama.cpp CPU variant `{}` expected ({})",
            v.name,
            v.level.as_str()
        ),
        None if f.neon || f.dotprod || f.sve => {
            "llama.cpp chooses among its ARM variants by its own score".to_string()
        }
        None => "no llama.cpp x86-64 variant matches these features".to_string(),
    };
    let installed = match cpu::find_library_dir() {
        Ok(d) => format!(
            "; installed in {}: {}",
            d.path.display(),
            d.variants.join(" ")
        ),
        Err(_) => "; no backend libraries found (set MINERVA_LIB_DIR)".to_string(),
    };
    format!("{expected}, checked in a child process when llama.cpp starts{installed}")
}

impl Human for HardwareProfile {
    fn human(&self) -> String {
        let mut s = String::new();
        let c = &self.cpu;
        let _ = writeln!(
            s,
            "CPU        {} ({}, {})",
            c.brand.trim(),
            c.vendor,
            c.arch
        );
        let is_arm = matches!(c.arch.as_str(), "aarch64" | "arm");
        let ids = match (c.family, c.model, c.stepping) {
            (Some(f), Some(m), st) if is_arm => {
                format!(
                    "implementer {f:#x} part {m:#x}{}",
                    st.map(|r| format!(" revision {r}")).unwrap_or_default()
                )
            }
            (Some(f), Some(m), Some(st)) => format!("family {f:#x} model {m:#x} stepping {st}"),
            _ => "ids unknown".to_string(),
        };
        let year = c.launch_year.map(|y| format!(", {y}")).unwrap_or_default();
        let _ = writeln!(s, "           {}{} [{}]", c.microarchitecture, year, ids);
        let mut flags = Vec::new();
        let f = &c.simd;
        for (on, name) in [
            (f.sse4_2, "SSE4.2"),
            (f.avx, "AVX"),
            (f.avx2, "AVX2"),
            (f.fma, "FMA"),
            (f.f16c, "F16C"),
            (f.bmi2, "BMI2"),
            (f.avx_vnni, "AVX-VNNI"),
            (f.avx512f, "AVX-512F"),
            (f.avx512bw, "AVX-512BW"),
            (f.avx512_vbmi, "AVX-512VBMI"),
            (f.avx512_vnni, "AVX-512VNNI"),
            (f.avx512_bf16, "AVX-512BF16"),
            (f.amx, "AMX"),
            (f.amx_int8, "AMX-INT8"),
            (f.neon, "NEON"),
            (f.dotprod, "DOTPROD"),
            (f.sve, "SVE"),
        ] {
            if on {
                flags.push(name);
            }
        }
        let flags = if flags.is_empty() {
            "none".to_string()
        } else {
            flags.join(" ")
        };
        let _ = writeln!(s, "SIMD       level {} ({flags})", c.simd_level.as_str());
        let _ = writeln!(s, "Kernels    {}", kernels_line(&c.simd));
        let quota = c
            .quota_cores
            .map(|q| format!("; this process may use {q:.1} CPUs"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "Cores      {} physical, {} logical, {} socket{}{quota}",
            c.physical_cores,
            c.logical_cores,
            c.sockets,
            if c.sockets == 1 { "" } else { "s" }
        );
        let cache = |b: Option<u64>| b.map(size).unwrap_or_else(|| "unknown".into());
        let _ = writeln!(
            s,
            "Cache      L2 {}, L3 {} (per instance)",
            cache(c.l2_cache_bytes),
            cache(c.l3_cache_bytes)
        );

        let m = &self.memory;
        let swap = if m.swap_total_bytes == 0 {
            "no swap".to_string()
        } else {
            format!(
                "{} swap ({} free)",
                gib(m.swap_total_bytes),
                gib(m.swap_free_bytes)
            )
        };
        let _ = writeln!(
            s,
            "Memory     {} total, {} available, {swap}",
            gib(m.total_bytes),
            gib(m.available_bytes)
        );
        match &m.cgroup {
            Some(cg) => {
                let lim = cg
                    .memory_max_bytes
                    .map(gib)
                    .unwrap_or_else(|| "no limit".into());
                let used = cg
                    .memory_current_bytes
                    .map(|u| format!(" ({} in use)", gib(u)))
                    .unwrap_or_default();
                let cpu = cg
                    .cpu_quota_cores
                    .map(|q| format!("{q:.2} CPUs"))
                    .unwrap_or_else(|| "no limit".into());
                let path = if cg.path.is_empty() {
                    "/"
                } else {
                    cg.path.as_str()
                };
                let _ = writeln!(
                    s,
                    "cgroup     v{} {path}: memory {lim}{used}, cpu {cpu}",
                    cg.version
                );
            }
            None => {
                let _ = writeln!(s, "cgroup     none found");
            }
        }
        if m.usable_bytes < m.total_bytes {
            let _ = writeln!(
                s,
                "Usable     {} for models: the cgroup limit, not the {} the host reports",
                gib(m.usable_bytes),
                gib(m.total_bytes)
            );
        } else {
            let _ = writeln!(
                s,
                "Usable     {} for models (all RAM; no lower cgroup limit)",
                gib(m.usable_bytes)
            );
        }
        match &self.memory_bandwidth {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "Bandwidth  {:.1} GB/s streaming read ({} thread{}, {} buffer, measured in {:.2} s)",
                    b.bytes_per_s / 1e9,
                    b.threads,
                    if b.threads == 1 { "" } else { "s" },
                    size(b.buffer_bytes),
                    b.duration_s
                );
            }
            None => {
                let why = if self.source.starts_with("probe root") {
                    " (a probe root describes another machine)"
                } else {
                    ""
                };
                let _ = writeln!(s, "Bandwidth  not measured{why}");
            }
        }

        if self.gpus.is_empty() {
            let _ = writeln!(s, "GPUs       none");
        }
        for g in &self.gpus {
            let mut extra = Vec::new();
            if let Some(free) = g.vram_free_bytes {
                extra.push(format!("{} free", gib(free)));
            }
            if g.unified_memory {
                extra.push("unified memory".to_string());
            }
            if let Some(b) = g.memory_bandwidth_bytes_per_s {
                extra.push(format!("{:.0} GB/s", b / 1e9));
            }
            if let Some(cc) = &g.compute_capability {
                extra.push(format!("compute {cc}"));
            }
            if let (Some(d), Some(cu)) = (&g.driver_version, &g.cuda_version) {
                extra.push(format!("driver {d}, CUDA {cu}"));
            }
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join(", "))
            };
            // Device names usually carry the vendor already ("NVIDIA H100 ...", "AMD Instinct").
            let vendor = vendor_name(g.vendor);
            let name = if g.name.starts_with(vendor) {
                g.name.clone()
            } else {
                format!("{vendor} {}", g.name)
            };
            let _ = writeln!(
                s,
                "GPU {:<6} {name}: {} VRAM{extra}",
                g.index,
                gib(g.vram_total_bytes)
            );
        }
        for n in &self.gpu_notes {
            let _ = writeln!(s, "           {n}");
        }
        match &self.disk {
            Some(d) => {
                let _ = writeln!(
                    s,
                    "Disk       {} free of {} for {} ({}, mounted on {})",
                    gib(d.free_bytes),
                    gib(d.total_bytes),
                    d.path,
                    d.filesystem,
                    d.mount_point
                );
                if let Some(r) = &d.read {
                    let _ = writeln!(
                        s,
                        "           reads {:.0} MB/s uncached ({} MiB{})",
                        r.bytes_per_s / 1e6,
                        r.bytes >> 20,
                        if r.direct {
                            ", O_DIRECT"
                        } else {
                            ", cached pages dropped"
                        }
                    );
                }
            }
            None => {
                let _ = writeln!(
                    s,
                    "Disk       unknown (the models directory is on a tmpfs, network or unlisted filesystem)"
                );
            }
        }
        let _ = writeln!(s, "Source     {}", self.source);
        let _ = writeln!(s, "Fingerprint {}", self.fingerprint);
        s
    }
}
