//! `minerva-setup probe`: read the hardware and print the `HardwareProfile`.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use crate::cli::{Ctx, Human};
use crate::exit::{Exit, Failure, ResultExt};
use crate::profile::HardwareProfile;

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Skip the memory-bandwidth measurement (about half a second).
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

impl Human for HardwareProfile {
    fn human(&self) -> String {
        let mut s = String::new();
        let c = &self.cpu;
        let _ = writeln!(s, "CPU       {} ({})", c.brand.trim(), c.vendor);
        let ids = match (c.family, c.model, c.stepping) {
            (Some(f), Some(m), Some(st)) => format!("family {f:#x} model {m:#x} stepping {st}"),
            _ => "ids unknown".to_string(),
        };
        let year = c.launch_year.map(|y| format!(", {y}")).unwrap_or_default();
        let _ = writeln!(s, "          {}{} [{}]", c.microarchitecture, year, ids);
        let mut flags = Vec::new();
        let f = &c.simd;
        for (on, name) in [
            (f.sse4_2, "SSE4.2"),
            (f.avx, "AVX"),
            (f.avx2, "AVX2"),
            (f.fma, "FMA"),
            (f.f16c, "F16C"),
            (f.avx_vnni, "AVX-VNNI"),
            (f.avx512f, "AVX-512F"),
            (f.avx512bw, "AVX-512BW"),
            (f.avx512_vnni, "AVX-512VNNI"),
            (f.avx512_bf16, "AVX-512BF16"),
            (f.amx, "AMX"),
            (f.neon, "NEON"),
            (f.dotprod, "DOTPROD"),
            (f.sve, "SVE"),
        ] {
            if on {
                flags.push(name);
            }
        }
        let _ = writeln!(s, "SIMD      level {} ({})", c.simd_level.as_str(), flags.join(" "));
        let quota = c.quota_cores.map(|q| format!(", quota {q:.1} CPUs")).unwrap_or_default();
        let _ = writeln!(
            s,
            "Cores     {} physical, {} logical, {} socket(s){quota}",
            c.physical_cores, c.logical_cores, c.sockets
        );
        let cache = |b: Option<u64>| b.map(|b| format!("{} KiB", b / 1024)).unwrap_or_else(|| "unknown".into());
        let _ = writeln!(s, "Cache     L2 {}, L3 {}", cache(c.l2_cache_bytes), cache(c.l3_cache_bytes));
        let m = &self.memory;
        let _ = writeln!(
            s,
            "Memory    {} total, {} available, {} swap",
            gib(m.total_bytes),
            gib(m.available_bytes),
            gib(m.swap_total_bytes)
        );
        match &m.cgroup {
            Some(cg) => {
                let lim = cg.memory_max_bytes.map(gib).unwrap_or_else(|| "no limit".into());
                let cpu = cg.cpu_quota_cores.map(|q| format!("{q:.2} CPUs")).unwrap_or_else(|| "no limit".into());
                let _ = writeln!(s, "cgroup    v{} {}: memory {lim}, cpu {cpu}", cg.version, cg.path);
            }
            None => {
                let _ = writeln!(s, "cgroup    none found");
            }
        }
        let _ = writeln!(s, "Usable    {} for models", gib(m.usable_bytes));
        match &self.memory_bandwidth {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "Bandwidth {:.1} GB/s ({} threads, {} buffer, {:.2} s)",
                    b.bytes_per_s / 1e9,
                    b.threads,
                    gib(b.buffer_bytes),
                    b.duration_s
                );
            }
            None => {
                let _ = writeln!(s, "Bandwidth not measured");
            }
        }
        if self.gpus.is_empty() {
            let _ = writeln!(s, "GPUs      none");
        }
        for g in &self.gpus {
            let bw = g.memory_bandwidth_bytes_per_s.map(|b| format!(", {:.0} GB/s", b / 1e9)).unwrap_or_default();
            let cc = g.compute_capability.as_ref().map(|c| format!(", compute {c}")).unwrap_or_default();
            let _ = writeln!(
                s,
                "GPU {}     {:?} {}: {} VRAM{bw}{cc}",
                g.index,
                g.vendor,
                g.name,
                gib(g.vram_total_bytes)
            );
        }
        for n in &self.gpu_notes {
            let _ = writeln!(s, "          {n}");
        }
        if let Some(d) = &self.disk {
            let _ = writeln!(
                s,
                "Disk      {} free of {} at {} ({}, mounted on {})",
                gib(d.free_bytes),
                gib(d.total_bytes),
                d.path,
                d.filesystem,
                d.mount_point
            );
        }
        let _ = writeln!(s, "Source    {}", self.source);
        let _ = writeln!(s, "Fingerprint {}", self.fingerprint);
        s
    }
}
