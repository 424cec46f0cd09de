//! Which of llama.cpp's CPU kernels this process runs, chosen at run time.
//!
//! llama.cpp is built with `GGML_BACKEND_DL` and `GGML_CPU_ALL_VARIANTS` (llama-cpp-2's
//! `dynamic-backends`): ggml-cpu is compiled once per x86-64 level, from plain x86-64 and SSE4.2
//! up to AVX-512 with VNNI and BF16 and AMX, each as a shared library `libggml-cpu-<name>.so` (on
//! aarch64 the armv8.0 to armv9.2 ones). Of llama.cpp's fourteen x86-64 variants the build
//! compiles the nine of [`BUILT_X86`] (`cmake/cpu-variants.cmake` says why each). The binary
//! and `libllama`/`libggml` themselves need nothing beyond the architecture's baseline, so the process always starts, on an Ivy Bridge
//! Xeon as on a Sapphire Rapids one. Which kernels it runs is decided here, before llama.cpp is
//! initialised:
//!
//! 1. **Find the libraries** ([`library_dir_candidates`]): `MINERVA_LIB_DIR`,
//!    `<exe dir>/../lib/minerva-setup` (where `installers/install.sh` puts them), the
//!    executable's own directory, then the build tree (for `cargo test` and `cargo run`).
//! 2. **Rank** the variants present by llama.cpp's own score: the feature weights of
//!    `ggml_backend_cpu_x86_score`, reproduced in [`VariantSpec::score`]. Unlike ggml's score,
//!    a feature counts only when the OS has enabled its register state (XCR0; the probe reads
//!    it, see `probe::cpu::live`): a VM that hides AVX state must not be handed AVX kernels. AMX
//!    counts only when XCR0 enables the tile state *and* Linux grants it to this process
//!    (`arch_prctl(ARCH_REQ_XCOMP_PERM)`).
//! 3. **Run the best one in a child process** ([`check_in_child`]): the binary's hidden
//!    `__check-cpu-variant` subcommand loads only that variant, loads a small generated model
//!    with Q4_K/Q6_K weights, evaluates one prompt batch and a few decode steps on the planned
//!    thread count, and exits. A child that dies by a signal (SIGILL, SIGSEGV, ...) or fails
//!    rejects the variant, with the reason recorded, and the next one is tried. On a machine whose
//!    CPUID reports AMX but whose tile instructions fault, this is what keeps the process alive.
//! 4. **Load** that one library, and any GPU backend libraries in the same directory
//!    (`libggml-cuda.so`, `libggml-vulkan.so`), into this process; then llama.cpp initialises.
//!
//! `--cpu-variant NAME` (`MINERVA_CPU_VARIANT`) skips the ranking: that variant is checked and
//! used, or the run stops with an error naming what the CPU lacks.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::profile::{SimdFeatures, SimdLevel};
use crate::types::cpu_variant::{CpuVariant, RejectedVariant};

/// The hidden subcommand a child process runs to try a variant (see [`check_in_child`]).
pub const CHECK_SUBCOMMAND: &str = "__check-cpu-variant";

/// How long a child may take to try a variant before it counts as hung (the slowest variant,
/// plain x86-64, evaluates the check model in well under a second).
const CHECK_TIMEOUT: Duration = Duration::from_secs(120);

/// A CPU feature a variant's kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Sse42,
    Avx,
    F16c,
    Fma,
    Bmi2,
    Avx2,
    AvxVnni,
    /// AVX-512 F, CD, VL, DQ and BW (ggml's `GGML_AVX512`).
    Avx512,
    Avx512Vbmi,
    Avx512Bf16,
    Avx512Vnni,
    AmxInt8,
}

impl Need {
    /// The weight `ggml_backend_cpu_x86_score` gives the feature (ggml-cpu/arch/x86/cpu-feats.cpp).
    fn weight(self) -> u32 {
        match self {
            Need::Fma => 1,
            Need::F16c => 1 << 1,
            Need::Sse42 => 1 << 2,
            Need::Bmi2 => 1 << 3,
            Need::Avx => 1 << 4,
            Need::Avx2 => 1 << 5,
            Need::AvxVnni => 1 << 6,
            Need::Avx512 => 1 << 7,
            Need::Avx512Vbmi => 1 << 8,
            Need::Avx512Bf16 => 1 << 9,
            Need::Avx512Vnni => 1 << 10,
            Need::AmxInt8 => 1 << 11,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Need::Sse42 => "SSE4.2",
            Need::Avx => "AVX",
            Need::F16c => "F16C",
            Need::Fma => "FMA",
            Need::Bmi2 => "BMI2",
            Need::Avx2 => "AVX2",
            Need::AvxVnni => "AVX-VNNI",
            Need::Avx512 => "AVX-512",
            Need::Avx512Vbmi => "AVX-512 VBMI",
            Need::Avx512Bf16 => "AVX-512 BF16",
            Need::Avx512Vnni => "AVX-512 VNNI",
            Need::AmxInt8 => "AMX-INT8 (with the OS's tile state)",
        }
    }

    /// Whether `f` (features whose register state the OS has enabled) has it.
    fn present(self, f: &SimdFeatures) -> bool {
        match self {
            Need::Sse42 => f.sse4_2,
            Need::Avx => f.avx,
            Need::F16c => f.f16c,
            Need::Fma => f.fma,
            // BMI2 works on general-purpose registers (no OS state), and every x86 CPU with AVX2
            // has it (Intel Haswell, AMD Excavator onwards): a profile written before the field
            // existed, or a hypervisor that masks the bit, still describes a Haswell-class CPU.
            Need::Bmi2 => f.bmi2 || f.avx2,
            Need::Avx2 => f.avx2,
            Need::AvxVnni => f.avx_vnni,
            // Every CPU with AVX-512 BW also has CD, VL and DQ (Skylake-SP onwards, Zen 4); the
            // only ones with F but not BW (Xeon Phi) are excluded, as ggml requires BW too.
            Need::Avx512 => f.avx512f && f.avx512bw,
            Need::Avx512Vbmi => f.avx512_vbmi,
            Need::Avx512Bf16 => f.avx512_bf16,
            Need::Avx512Vnni => f.avx512_vnni,
            Need::AmxInt8 => f.amx && f.amx_int8,
        }
    }
}

/// One of llama.cpp's CPU backend variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: &'static str,
    /// The features its kernels are compiled for (`ggml_add_cpu_backend_variant` in
    /// ggml/src/CMakeLists.txt).
    pub needs: &'static [Need],
    /// The probe's SIMD level that these kernels correspond to.
    pub level: SimdLevel,
}

use Need::*;

/// llama.cpp's x86-64 variants (`GGML_CPU_ALL_VARIANTS`, ggml/src/CMakeLists.txt), in its order.
const X86_VARIANTS: &[VariantSpec] = &[
    VariantSpec {
        name: "x64",
        needs: &[],
        level: SimdLevel::None,
    },
    VariantSpec {
        name: "sse42",
        needs: &[Sse42],
        level: SimdLevel::Sse42,
    },
    VariantSpec {
        name: "sandybridge",
        needs: &[Sse42, Avx],
        level: SimdLevel::Avx,
    },
    VariantSpec {
        name: "ivybridge",
        needs: &[Sse42, Avx, F16c],
        level: SimdLevel::Avx,
    },
    VariantSpec {
        name: "piledriver",
        needs: &[Sse42, Avx, F16c, Fma],
        level: SimdLevel::Avx,
    },
    VariantSpec {
        name: "haswell",
        needs: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2],
        level: SimdLevel::Avx2,
    },
    VariantSpec {
        name: "skylakex",
        needs: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512],
        level: SimdLevel::Avx512,
    },
    VariantSpec {
        name: "cannonlake",
        needs: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vbmi],
        level: SimdLevel::Avx512,
    },
    VariantSpec {
        name: "cascadelake",
        needs: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vnni],
        level: SimdLevel::Avx512Vnni,
    },
    VariantSpec {
        name: "icelake",
        needs: &[
            Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vbmi, Avx512Vnni,
        ],
        level: SimdLevel::Avx512Vnni,
    },
    VariantSpec {
        name: "cooperlake",
        needs: &[
            Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vnni, Avx512Bf16,
        ],
        level: SimdLevel::Avx512Vnni,
    },
    VariantSpec {
        name: "zen4",
        needs: &[
            Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vbmi, Avx512Vnni, Avx512Bf16,
        ],
        level: SimdLevel::Avx512Vnni,
    },
    VariantSpec {
        name: "alderlake",
        needs: &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, AvxVnni],
        level: SimdLevel::Avx2,
    },
    VariantSpec {
        name: "sapphirerapids",
        needs: &[
            Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vbmi, Avx512Vnni, Avx512Bf16, AmxInt8,
        ],
        level: SimdLevel::Amx,
    },
];

/// The x86-64 variants the build compiles (`cmake/cpu-variants.cmake`, which must list the same
/// ones): one per level servers have. The others are in the table so that libraries from a build
/// with all of them (`MINERVA_LIB_DIR`) are ranked right too.
pub const BUILT_X86: &[&str] = &[
    "x64",
    "sse42",
    "sandybridge",
    "haswell",
    "skylakex",
    "icelake",
    "alderlake",
    "zen4",
    "sapphirerapids",
];

impl VariantSpec {
    /// llama.cpp's score for the variant on a CPU that has all its features.
    pub fn score(&self) -> u32 {
        1 + self.needs.iter().map(|n| n.weight()).sum::<u32>()
    }

    /// What `f` lacks of the variant's features.
    pub fn missing(&self, f: &SimdFeatures) -> Vec<Need> {
        self.needs
            .iter()
            .copied()
            .filter(|n| !n.present(f))
            .collect()
    }

    pub fn runs_on(&self, f: &SimdFeatures) -> bool {
        self.missing(f).is_empty()
    }

    /// The record of this variant having run.
    pub fn record(
        &self,
        forced: bool,
        checked: bool,
        rejected: Vec<RejectedVariant>,
    ) -> CpuVariant {
        CpuVariant {
            name: self.name.to_string(),
            simd_level: self.level.as_str().to_string(),
            forced,
            checked,
            rejected,
        }
    }
}

/// The variants the build compiles for this architecture, by name: [`BUILT_X86`] on x86-64;
/// elsewhere empty, as llama.cpp's own list is built whole and ranked by its own score (see
/// [`select`]).
pub fn built_variants() -> &'static [&'static str] {
    if cfg!(target_arch = "x86_64") {
        BUILT_X86
    } else {
        &[]
    }
}

pub fn spec(name: &str) -> Option<&'static VariantSpec> {
    X86_VARIANTS.iter().find(|v| v.name == name)
}

/// The variant a CPU with features `f` runs: the best-scoring x86-64 variant of the build
/// ([`BUILT_X86`]) it has every feature of (before any check in a child process). `None` for a
/// profile of a non-x86 CPU.
pub fn expected_variant(f: &SimdFeatures) -> Option<&'static VariantSpec> {
    expected_among(f, BUILT_X86)
}

/// [`expected_variant`] among the variants `names`.
pub fn expected_among(f: &SimdFeatures, names: &[&str]) -> Option<&'static VariantSpec> {
    if f.neon || f.dotprod || f.sve {
        return None;
    }
    X86_VARIANTS
        .iter()
        .filter(|v| names.contains(&v.name) && v.runs_on(f))
        .max_by_key(|v| v.score())
}

/// The variants among `names` that `f` can run, best first (llama.cpp's score). Variants this
/// module has no table for (the ARM ones) are ranked by llama.cpp's own score of this CPU,
/// which `other_score` gives (`None` or 0: not runnable).
pub fn ranked<'a>(
    names: &'a [String],
    f: &SimdFeatures,
    other_score: &dyn Fn(&str) -> Option<u32>,
) -> Vec<&'a str> {
    let mut v: Vec<(&str, u32)> = names
        .iter()
        .filter_map(|n| match spec(n) {
            // llama.cpp's loader refuses a library whose own score is 0: never rank one.
            Some(s) => (s.runs_on(f) && other_score(n).is_none_or(|g| g > 0))
                .then_some((n.as_str(), s.score())),
            None => other_score(n).filter(|s| *s > 0).map(|s| (n.as_str(), s)),
        })
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().map(|(n, _)| n).collect()
}

/// Why no variant can run, or the libraries are missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantError {
    #[error(
        "no llama.cpp CPU backend libraries (`{pattern}`) in {searched}: reinstall with \
         installers/install.sh (it puts them in <prefix>/lib/minerva-setup), or point \
         MINERVA_LIB_DIR at the directory that holds them"
    )]
    NoLibraries { pattern: String, searched: String },
    #[error(
        "--cpu-variant {name}: no such llama.cpp CPU variant in {dir} (available: {available})"
    )]
    UnknownVariant {
        name: String,
        dir: String,
        available: String,
    },
    #[error(
        "--cpu-variant {name}: this CPU lacks {missing}, which that variant's kernels are \
         compiled for (variants it can run: {runnable})"
    )]
    ForcedNotSupported {
        name: String,
        missing: String,
        runnable: String,
    },
    #[error("no llama.cpp CPU variant runs on this CPU ({details})")]
    NoneRuns {
        rejected: Vec<RejectedVariant>,
        details: String,
    },
    #[error(
        "llama.cpp could not load its CPU backend `{path}` (missing, damaged, or from another \
         build of llama.cpp): reinstall with installers/install.sh"
    )]
    Load { path: String },
    #[error("the check of llama.cpp's CPU kernels could not run: {detail}")]
    CheckBroken { detail: String },
}

/// A directory holding the CPU variant libraries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryDir {
    pub path: PathBuf,
    /// The variants present, by name (`icelake`), sorted.
    pub variants: Vec<String>,
    /// The other backend libraries present (GPU backends), loaded next to the CPU one.
    pub others: Vec<PathBuf>,
}

fn lib_prefix() -> &'static str {
    std::env::consts::DLL_PREFIX
}

/// ggml's backends are CMake MODULE libraries: `.so` on every Unix, macOS included.
fn lib_suffix() -> &'static str {
    if cfg!(windows) {
        ".dll"
    } else {
        ".so"
    }
}

/// The file name of variant `name`'s library: `libggml-cpu-icelake.so`.
pub fn variant_file_name(name: &str) -> String {
    format!("{}ggml-cpu-{name}{}", lib_prefix(), lib_suffix())
}

/// Where the libraries are looked for, in order (see the module documentation).
pub fn library_dir_candidates() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = std::env::var_os(crate::env_vars::MINERVA_LIB_DIR) {
        if !d.is_empty() {
            v.push(PathBuf::from(d));
        }
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        if let Some(parent) = exe_dir.parent() {
            v.push(parent.join("lib").join("minerva-setup"));
        }
        v.push(exe_dir);
    }
    // The build tree, for `cargo test` and a binary run where it was built; never for an
    // installed binary (one with a lib/minerva-setup of its own), which must not fall back to a
    // directory that may belong to another user.
    let installed = v
        .iter()
        .any(|d| d.ends_with("lib/minerva-setup") && d.is_dir());
    if let (Some(d), false) = (llama_cpp_sys_2::BACKENDS_DIR, installed) {
        v.push(PathBuf::from(d));
    }
    v
}

/// The libraries in `dir`, or `None` when it holds no CPU variant.
pub fn read_library_dir(dir: &Path) -> Option<LibraryDir> {
    let prefix = format!("{}ggml-", lib_prefix());
    let cpu_prefix = format!("{}ggml-cpu-", lib_prefix());
    let mut variants = Vec::new();
    let mut others = Vec::new();
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(lib_suffix()) else {
            continue;
        };
        if let Some(variant) = stem.strip_prefix(&cpu_prefix) {
            variants.push(variant.to_string());
        } else if let Some(backend) = stem.strip_prefix(&prefix) {
            // libggml-base is the library every backend links against, and a plain
            // libggml-cpu the CPU backend of a build without variants: neither is a GPU backend.
            if backend != "base" && backend != "cpu" {
                others.push(e.path());
            }
        }
    }
    if variants.is_empty() {
        return None;
    }
    variants.sort();
    others.sort();
    Some(LibraryDir {
        path: dir.to_path_buf(),
        variants,
        others,
    })
}

/// The first candidate directory that holds CPU variants.
pub fn find_library_dir() -> Result<LibraryDir, VariantError> {
    let candidates = library_dir_candidates();
    candidates
        .iter()
        .find_map(|d| read_library_dir(d))
        .ok_or_else(|| VariantError::NoLibraries {
            pattern: variant_file_name("*"),
            searched: candidates
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Whether Linux lets this process use the AMX tile data (it must ask first; ggml asks too, so
/// asking here changes nothing for it). `false` elsewhere and when the kernel refuses.
pub fn amx_permitted() -> bool {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with ARCH_REQ_XCOMP_PERM takes an integer and touches no memory of
        // ours; it fails with an error code when the kernel does not support the request.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        false
    }
}

static THIS_EXE_CHECKS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Declare that this process's executable runs [`CHECK_SUBCOMMAND`] (the binary does, whatever
/// it was renamed to).
pub fn this_exe_runs_checks() {
    if let Ok(exe) = std::env::current_exe() {
        let _ = THIS_EXE_CHECKS.set(exe);
    }
}

/// The executable that can run [`CHECK_SUBCOMMAND`]: this one when it is minerva-setup, else a
/// `minerva-setup` next to it or one directory up (test and example binaries under
/// `target/<profile>/deps` and `examples`).
pub fn checker_exe() -> Option<PathBuf> {
    if let Some(exe) = THIS_EXE_CHECKS.get() {
        return Some(exe.clone());
    }
    let exe = std::env::current_exe().ok()?;
    let name = format!("minerva-setup{}", std::env::consts::EXE_SUFFIX);
    if exe.file_name().is_some_and(|n| n == name.as_str()) {
        return Some(exe);
    }
    let dir = exe.parent()?;
    [dir.join(&name), dir.parent()?.join(&name)]
        .into_iter()
        .find(|p| p.is_file())
}

/// What a signal number means, for a rejection's reason.
fn signal_name(sig: i32) -> String {
    let name = match sig {
        4 => "SIGILL (an instruction this CPU or OS does not allow)",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// Run variant `name` from `dir` in a child process of `exe` with `threads` threads; `Err` holds
/// why it is not usable.
pub fn check_in_child(exe: &Path, dir: &Path, name: &str, threads: u32) -> Result<(), CheckError> {
    let mut child = Command::new(exe)
        .arg(CHECK_SUBCOMMAND)
        .arg("--variant")
        .arg(name)
        .arg("--threads")
        .arg(threads.max(1).to_string())
        .env_remove(crate::env_vars::MINERVA_CPU_VARIANT)
        .env(crate::env_vars::MINERVA_LIB_DIR, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            CheckError::Broken(format!("cannot start `{}` to try it: {e}", exe.display()))
        })?;
    // Read its stderr on a thread, to the end (keeping the last 64 KiB), so that a chatty
    // failure can never block the child on a full pipe.
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut kept: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        while let Some(Ok(n @ 1..)) = stderr.as_mut().map(|e| e.read(&mut buf)) {
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 64 * 1024 {
                kept.drain(..kept.len() - 64 * 1024);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > CHECK_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CheckError::Rejected(format!(
                    "its check did not finish in {} s",
                    CHECK_TIMEOUT.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(CheckError::Broken(format!(
                    "cannot wait for its check: {e}"
                )));
            }
        }
    };
    let err = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return Err(CheckError::Rejected(format!(
                "its check process was killed by {}",
                signal_name(sig)
            )));
        }
    }
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    // Exit 8 is the child's word that llama.cpp failed with these kernels; anything else (no
    // temporary directory, a binary that does not know the subcommand) says nothing about the
    // variant and would reject every one in turn.
    if status.code() == Some(CHECK_KERNELS_FAILED) {
        Err(CheckError::Rejected(format!("its check failed: {last}")))
    } else {
        Err(CheckError::Broken(format!(
            "`{} {CHECK_SUBCOMMAND}` failed ({status}): {last}",
            exe.display()
        )))
    }
}

/// The exit code of the check's child when llama.cpp itself failed (exit 8, "unsupported").
pub const CHECK_KERNELS_FAILED: i32 = crate::exit::Exit::Unsupported as i32;

/// Why a check did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The variant does not run here (killed by a signal, llama.cpp failed, hung).
    Rejected(String),
    /// The check itself could not run: no verdict on any variant.
    Broken(String),
}

/// What [`select`] needs to know.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    /// This CPU's features, with the OS's register state applied (the live probe's reading).
    pub simd: &'a SimdFeatures,
    /// `--cpu-variant` / `MINERVA_CPU_VARIANT`.
    pub forced: Option<&'a str>,
    /// Threads the check runs with: the count the benchmark and the server will use.
    pub threads: u32,
    /// The executable that runs the check; `None` when none is found (then the best variant is
    /// used unchecked, and the record says so).
    pub checker: Option<&'a Path>,
}

/// The chosen variant and the path of its library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub variant: CpuVariant,
    pub library: PathBuf,
}

/// `ggml_backend_score` of a backend library, as llama.cpp's own loader reads it: the library
/// is opened, its score function (CPUID only) called, and the library closed again. `None` when
/// it cannot be opened or has no score.
#[cfg(unix)]
pub fn ggml_score(path: &Path) -> Option<u32> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: dlopen of one of llama.cpp's backend libraries, as ggml_backend_load_best does;
    // its initialisers and score function execute no instruction beyond CPUID's baseline.
    unsafe {
        let h = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if h.is_null() {
            return None;
        }
        let sym = libc::dlsym(h, c"ggml_backend_score".as_ptr());
        let score = if sym.is_null() {
            None
        } else {
            let f: extern "C" fn() -> std::ffi::c_int = std::mem::transmute(sym);
            u32::try_from(f()).ok()
        };
        libc::dlclose(h);
        score
    }
}

#[cfg(not(unix))]
pub fn ggml_score(_path: &Path) -> Option<u32> {
    None
}

/// Choose the variant to run from `dir` (see the module documentation).
pub fn select(dir: &LibraryDir, sel: &Selection<'_>) -> Result<Chosen, VariantError> {
    let other = |name: &str| ggml_score(&dir.path.join(variant_file_name(name)));
    select_with(dir, sel, amx_permitted(), &other, |name| {
        match sel.checker {
            Some(exe) => check_in_child(exe, &dir.path, name, sel.threads).map(|()| true),
            None => Ok(false),
        }
    })
}

/// The record of a variant that ran; those without a table entry (ARM) carry this CPU's level.
fn record(
    name: &str,
    simd: &SimdFeatures,
    forced: bool,
    checked: bool,
    rejected: Vec<RejectedVariant>,
) -> CpuVariant {
    match spec(name) {
        Some(s) => s.record(forced, checked, rejected),
        None => CpuVariant {
            name: name.to_string(),
            simd_level: simd.level().as_str().to_string(),
            forced,
            checked,
            rejected,
        },
    }
}

/// [`select`] with the AMX permission, llama.cpp's score of variants without a table entry,
/// and the child check supplied (tests give fakes). `check` returns whether the variant was
/// really tried (`false`: no checker available).
pub fn select_with(
    dir: &LibraryDir,
    sel: &Selection<'_>,
    amx_granted: bool,
    other_score: &dyn Fn(&str) -> Option<u32>,
    mut check: impl FnMut(&str) -> Result<bool, CheckError>,
) -> Result<Chosen, VariantError> {
    let mut simd = sel.simd.clone();
    let mut rejected = Vec::new();
    if simd.amx && simd.amx_int8 && !amx_granted {
        simd.amx = false;
        if dir.variants.iter().any(|v| v == "sapphirerapids") {
            rejected.push(RejectedVariant {
                name: "sapphirerapids".into(),
                reason: "CPUID and XCR0 report AMX, but Linux does not grant this process the \
                         tile state (arch_prctl ARCH_REQ_XCOMP_PERM failed)"
                    .into(),
            });
        }
    }
    let library = |name: &str| dir.path.join(variant_file_name(name));
    if let Some(name) = sel.forced {
        if !dir.variants.iter().any(|v| v == name) {
            return Err(VariantError::UnknownVariant {
                name: name.into(),
                dir: dir.path.display().to_string(),
                available: dir.variants.join(", "),
            });
        }
        let missing: Vec<&str> = match spec(name) {
            Some(spec) => spec.missing(&simd).iter().map(|n| n.name()).collect(),
            None if other_score(name).unwrap_or(0) == 0 => {
                vec!["a feature llama.cpp's score asks for"]
            }
            None => Vec::new(),
        };
        if !missing.is_empty() {
            return Err(VariantError::ForcedNotSupported {
                name: name.into(),
                missing: missing.join(", "),
                runnable: ranked(&dir.variants, &simd, other_score).join(", "),
            });
        }
        return match check(name) {
            Ok(checked) => Ok(Chosen {
                variant: record(name, &simd, true, checked, Vec::new()),
                library: library(name),
            }),
            Err(CheckError::Broken(detail)) => Err(VariantError::CheckBroken { detail }),
            Err(CheckError::Rejected(reason)) => Err(VariantError::NoneRuns {
                details: format!("{name}: {reason}"),
                rejected: vec![RejectedVariant {
                    name: name.into(),
                    reason,
                }],
            }),
        };
    }
    for name in ranked(&dir.variants, &simd, other_score) {
        match check(name) {
            Ok(checked) => {
                return Ok(Chosen {
                    variant: record(name, &simd, false, checked, rejected),
                    library: library(name),
                })
            }
            Err(CheckError::Broken(detail)) => return Err(VariantError::CheckBroken { detail }),
            Err(CheckError::Rejected(reason)) => rejected.push(RejectedVariant {
                name: name.into(),
                reason,
            }),
        }
    }
    let details = if rejected.is_empty() {
        format!(
            "the variants present ({}) all need features this CPU lacks",
            dir.variants.join(", ")
        )
    } else {
        rejected
            .iter()
            .map(|r| format!("{}: {}", r.name, r.reason))
            .collect::<Vec<_>>()
            .join("; ")
    };
    Err(VariantError::NoneRuns { rejected, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(needs: &[Need]) -> SimdFeatures {
        let mut f = SimdFeatures::default();
        for n in needs {
            match n {
                Sse42 => f.sse4_2 = true,
                Avx => f.avx = true,
                F16c => f.f16c = true,
                Fma => f.fma = true,
                Bmi2 => f.bmi2 = true,
                Avx2 => f.avx2 = true,
                AvxVnni => f.avx_vnni = true,
                Avx512 => {
                    f.avx512f = true;
                    f.avx512bw = true
                }
                Avx512Vbmi => f.avx512_vbmi = true,
                Avx512Bf16 => f.avx512_bf16 = true,
                Avx512Vnni => f.avx512_vnni = true,
                AmxInt8 => {
                    f.amx = true;
                    f.amx_int8 = true
                }
            }
        }
        f
    }

    fn none(_: &str) -> Option<u32> {
        None
    }

    fn all_dir() -> LibraryDir {
        LibraryDir {
            path: PathBuf::from("/lib/minerva-setup"),
            variants: X86_VARIANTS.iter().map(|v| v.name.to_string()).collect(),
            others: Vec::new(),
        }
    }

    fn sel<'a>(f: &'a SimdFeatures, forced: Option<&'a str>) -> Selection<'a> {
        Selection {
            simd: f,
            forced,
            threads: 2,
            checker: None,
        }
    }

    #[test]
    fn each_cpu_generation_gets_the_built_variant_for_its_level() {
        // (features, the variant of this build, the variant of llama.cpp's full list)
        let cases: &[(&[Need], &str, &str)] = &[
            (&[], "x64", "x64"),
            (&[Sse42], "sse42", "sse42"),
            // Sandy Bridge: AVX without F16C.
            (&[Sse42, Avx], "sandybridge", "sandybridge"),
            // Ivy Bridge (E5-2600 v2): AVX and F16C; the build's AVX variant is Sandy Bridge's.
            (&[Sse42, Avx, F16c], "sandybridge", "ivybridge"),
            // AMD Piledriver: FMA without AVX2.
            (&[Sse42, Avx, F16c, Fma], "sandybridge", "piledriver"),
            (&[Sse42, Avx, F16c, Fma, Avx2, Bmi2], "haswell", "haswell"),
            (
                &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, AvxVnni],
                "alderlake",
                "alderlake",
            ),
            // Cascade Lake and Cooper Lake: AVX-512 with VNNI but no VBMI.
            (
                &[Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vnni],
                "skylakex",
                "cascadelake",
            ),
            (
                &[
                    Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vnni, Avx512Bf16,
                ],
                "skylakex",
                "cooperlake",
            ),
            (
                &[
                    Sse42, Avx, F16c, Fma, Avx2, Bmi2, Avx512, Avx512Vbmi, Avx512Vnni,
                ],
                "icelake",
                "icelake",
            ),
            (
                spec("sapphirerapids").unwrap().needs,
                "sapphirerapids",
                "sapphirerapids",
            ),
        ];
        let all: Vec<&str> = X86_VARIANTS.iter().map(|v| v.name).collect();
        for (needs, built, full) in cases {
            let f = features(needs);
            assert_eq!(expected_variant(&f).unwrap().name, *built, "{needs:?}");
            assert!(BUILT_X86.contains(built));
            assert_eq!(expected_among(&f, &all).unwrap().name, *full, "{needs:?}");
        }
        // Every built name is in the table.
        for name in BUILT_X86 {
            assert!(spec(name).is_some(), "{name}");
        }
        // AVX-512 outranks AVX-VNNI, as in ggml's score.
        assert!(spec("skylakex").unwrap().score() > spec("alderlake").unwrap().score());
    }

    #[test]
    fn a_vm_that_hides_the_avx_state_gets_no_avx_kernels() {
        // The probe clears AVX when XCR0 lacks the YMM state, whatever CPUID says; ggml's own
        // score would still pick an AVX variant from CPUID alone and die with SIGILL.
        let mut f = features(spec("haswell").unwrap().needs);
        f.avx = false;
        f.avx2 = false;
        f.fma = false;
        f.f16c = false;
        let chosen = select_with(&all_dir(), &sel(&f, None), true, &none, |_| Ok(true)).unwrap();
        assert_eq!(chosen.variant.name, "sse42");
        assert_eq!(chosen.variant.simd_level, "sse4.2");
    }

    #[test]
    fn a_variant_whose_check_dies_is_rejected_with_the_reason_and_the_next_one_runs() {
        let f = features(spec("sapphirerapids").unwrap().needs);
        let mut tried = Vec::new();
        let chosen = select_with(&all_dir(), &sel(&f, None), true, &none, |name| {
            tried.push(name.to_string());
            if name == "sapphirerapids" {
                Err(CheckError::Rejected(
                    "its check process was killed by SIGILL".into(),
                ))
            } else {
                Ok(true)
            }
        })
        .unwrap();
        assert_eq!(tried, ["sapphirerapids", "zen4"]);
        assert_eq!(chosen.variant.name, "zen4");
        assert!(chosen.variant.checked && !chosen.variant.forced);
        assert_eq!(chosen.variant.rejected.len(), 1);
        assert!(chosen.variant.rejected[0].reason.contains("SIGILL"));
        assert_eq!(
            chosen.library,
            Path::new("/lib/minerva-setup").join(variant_file_name("zen4"))
        );
    }

    #[test]
    fn amx_without_the_kernels_permission_is_passed_over_before_any_check() {
        let f = features(spec("sapphirerapids").unwrap().needs);
        let mut tried = Vec::new();
        let chosen = select_with(&all_dir(), &sel(&f, None), false, &none, |name| {
            tried.push(name.to_string());
            Ok(true)
        })
        .unwrap();
        assert_eq!(tried, ["zen4"]);
        assert_eq!(chosen.variant.rejected[0].name, "sapphirerapids");
        assert!(chosen.variant.rejected[0]
            .reason
            .contains("ARCH_REQ_XCOMP_PERM"));
    }

    #[test]
    fn a_forced_variant_is_used_as_named_or_refused_with_what_the_cpu_lacks() {
        let f = features(spec("haswell").unwrap().needs);
        let chosen = select_with(
            &all_dir(),
            &sel(&f, Some("sandybridge")),
            true,
            &none,
            |_| Ok(true),
        )
        .unwrap();
        assert_eq!(chosen.variant.name, "sandybridge");
        assert!(chosen.variant.forced);
        assert_eq!(chosen.variant.simd_level, "avx");

        let err = select_with(&all_dir(), &sel(&f, Some("icelake")), true, &none, |_| {
            Ok(true)
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--cpu-variant icelake")
                && msg.contains("AVX-512")
                && msg.contains("haswell"),
            "{msg}"
        );
        let err = select_with(&all_dir(), &sel(&f, Some("pentium")), true, &none, |_| {
            Ok(true)
        })
        .unwrap_err();
        assert!(matches!(err, VariantError::UnknownVariant { .. }), "{err}");
        // A forced variant whose check dies is an error, not a silent fallback.
        let err = select_with(&all_dir(), &sel(&f, Some("haswell")), true, &none, |_| {
            Err(CheckError::Rejected(
                "its check process was killed by SIGSEGV".into(),
            ))
        })
        .unwrap_err();
        assert!(err.to_string().contains("SIGSEGV"), "{err}");
    }

    #[test]
    fn when_every_variant_dies_the_error_lists_each_reason() {
        let f = features(&[Sse42, Avx]);
        let err = select_with(&all_dir(), &sel(&f, None), true, &none, |name| {
            Err(CheckError::Rejected(format!("{name} died")))
        })
        .unwrap_err();
        let VariantError::NoneRuns { rejected, details } = err else {
            panic!("{err:?}")
        };
        let names: Vec<&str> = rejected.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["sandybridge", "sse42", "x64"]);
        assert!(details.contains("sse42: sse42 died"), "{details}");
    }

    #[test]
    fn a_check_that_cannot_run_stops_the_choice_instead_of_rejecting_every_variant() {
        let f = features(spec("haswell").unwrap().needs);
        let mut tried = 0;
        let err = select_with(&all_dir(), &sel(&f, None), true, &none, |_| {
            tried += 1;
            Err(CheckError::Broken("no temporary directory".into()))
        })
        .unwrap_err();
        assert_eq!(tried, 1);
        assert!(matches!(err, VariantError::CheckBroken { .. }), "{err}");
    }

    #[test]
    fn a_library_llama_cpp_scores_zero_is_never_ranked() {
        // CPUID as the probe read it allows haswell, but ggml's own score of the library says no
        // (a hypervisor masking BMI2, say): the next one down is chosen.
        let f = features(spec("haswell").unwrap().needs);
        let score = |n: &str| if n == "haswell" { Some(0) } else { None };
        let chosen = select_with(&all_dir(), &sel(&f, None), true, &score, |_| Ok(true)).unwrap();
        assert_eq!(chosen.variant.name, "piledriver");
    }

    #[test]
    fn variants_without_a_table_entry_are_ranked_by_llama_cpps_own_score() {
        let dir = LibraryDir {
            path: PathBuf::from("/lib"),
            variants: vec!["armv8.0_1".into(), "armv8.2_2".into(), "armv9.2_1".into()],
            others: Vec::new(),
        };
        let f = SimdFeatures {
            neon: true,
            dotprod: true,
            ..SimdFeatures::default()
        };
        // As ggml's ARM score would say on a Neoverse N1: armv9.2 unsupported (0).
        let score = |n: &str| match n {
            "armv8.0_1" => Some(1),
            "armv8.2_2" => Some(7),
            _ => Some(0),
        };
        let chosen = select_with(&dir, &sel(&f, None), true, &score, |_| Ok(true)).unwrap();
        assert_eq!(chosen.variant.name, "armv8.2_2");
        assert_eq!(chosen.variant.simd_level, "neon-dotprod");
        let err = select_with(&dir, &sel(&f, Some("armv9.2_1")), true, &score, |_| {
            Ok(true)
        })
        .unwrap_err();
        assert!(
            matches!(err, VariantError::ForcedNotSupported { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_directory_is_read_for_its_variants_and_other_backends() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            variant_file_name("haswell"),
            variant_file_name("sse42"),
            format!("{}ggml-cuda{}", lib_prefix(), lib_suffix()),
            format!("{}ggml-base{}", lib_prefix(), lib_suffix()),
            "README".to_string(),
        ] {
            std::fs::write(d.path().join(f), b"").unwrap();
        }
        let lib = read_library_dir(d.path()).unwrap();
        assert_eq!(lib.variants, ["haswell", "sse42"]);
        assert_eq!(lib.others.len(), 1);
        assert!(lib.others[0].to_string_lossy().contains("ggml-cuda"));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(read_library_dir(empty.path()), None);
    }
}
