//! `minerva-setup probe --json` on the machine running the tests, checked against what the
//! system's own tools say: `lscpu -p` for core counts, `/proc/cpuinfo` flags for SIMD,
//! `/proc/meminfo` for RAM. Plus the cgroup memory limit, live when the test may create a
//! cgroup (root with a writable hierarchy), otherwise on a fixture root.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use minerva_setup::profile::HardwareProfile;
use support::TestCtx;

/// Run `cmd` to the end; it must succeed and print a hardware profile.
fn run_json(cmd: &mut Command) -> HardwareProfile {
    support::profile(&cmd.output().expect("run minerva-setup"))
}

#[cfg(target_os = "linux")]
#[test]
fn live_probe_agrees_with_lscpu_cpuinfo_and_meminfo() {
    let ctx = TestCtx::new();
    let p = run_json(ctx.command().args(["probe", "--json"]));
    assert_eq!(p.source, "probe");
    assert_eq!(p.fingerprint, minerva_setup::probe::fingerprint(&p));

    // Core counts: lscpu -p=CPU,CORE,SOCKET, one line per online CPU.
    match Command::new("lscpu").arg("-p=CPU,CORE,SOCKET").output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let rows: Vec<Vec<&str>> = text
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(|l| l.split(',').collect())
                .collect();
            let cores: BTreeSet<(&str, &str)> = rows.iter().map(|r| (r[1], r[2])).collect();
            let sockets: BTreeSet<&str> = rows.iter().map(|r| r[2]).collect();
            assert_eq!(
                p.cpu.logical_cores as usize,
                rows.len(),
                "logical cores vs lscpu"
            );
            assert_eq!(
                p.cpu.physical_cores as usize,
                cores.len(),
                "physical cores vs lscpu"
            );
            assert_eq!(p.cpu.sockets as usize, sockets.len(), "sockets vs lscpu");
        }
        _ => eprintln!("note: lscpu not available; core counts not cross-checked"),
    }

    // SIMD flags: the kernel's flags line (which already accounts for OS support) must agree
    // with what CPUID + XGETBV gave.
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let key = if cfg!(target_arch = "aarch64") {
        "Features"
    } else {
        "flags"
    };
    let flags: BTreeSet<&str> = cpuinfo
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.trim() == key)
                .map(|(_, v)| v)
        })
        .expect("flags line")
        .split_whitespace()
        .collect();
    let s = &p.cpu.simd;
    let checks: &[(&str, bool)] = if cfg!(target_arch = "aarch64") {
        &[("asimd", s.neon), ("asimddp", s.dotprod), ("sve", s.sve)]
    } else {
        &[
            ("sse4_2", s.sse4_2),
            ("avx", s.avx),
            ("avx2", s.avx2),
            ("fma", s.fma),
            ("f16c", s.f16c),
            ("avx_vnni", s.avx_vnni),
            ("avx512f", s.avx512f),
            ("avx512bw", s.avx512bw),
            ("avx512_vnni", s.avx512_vnni),
            ("avx512_bf16", s.avx512_bf16),
            ("amx_tile", s.amx),
        ]
    };
    for &(flag, probed) in checks {
        assert_eq!(
            probed,
            flags.contains(flag),
            "SIMD flag `{flag}`: probe says {probed}, /proc/cpuinfo disagrees"
        );
    }
    assert_eq!(p.cpu.simd_level, p.cpu.simd.level());

    // RAM within 1% of MemTotal.
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let total_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("MemTotal");
    let total = total_kib as f64 * 1024.0;
    let diff = (p.memory.total_bytes as f64 - total).abs() / total;
    assert!(
        diff < 0.01,
        "total RAM {} vs MemTotal {total}",
        p.memory.total_bytes
    );
    assert!(p.memory.usable_bytes <= p.memory.total_bytes);

    // No GPU is never an error, and an empty list comes with the reasons.
    if p.gpus.is_empty() {
        assert!(
            p.gpu_notes.iter().any(|n| n.contains("NVIDIA")),
            "{:?}",
            p.gpu_notes
        );
        assert!(
            p.gpu_notes.iter().any(|n| n.contains("AMD")),
            "{:?}",
            p.gpu_notes
        );
    }

    let bw = p.memory_bandwidth.as_ref().expect("bandwidth measured");
    assert!(
        bw.bytes_per_s > 1e8 && bw.threads >= 1 && bw.buffer_bytes >= 16 << 20,
        "{bw:?}"
    );
}

#[test]
fn live_fingerprint_is_stable_across_runs() {
    let ctx = TestCtx::new();
    let a = run_json(ctx.command().args(["probe", "--json", "--no-bandwidth"]));
    let b = run_json(ctx.command().args(["probe", "--json"]));
    assert_eq!(a.fingerprint, b.fingerprint);
    assert!(a.memory_bandwidth.is_none());
}

/// Runs `probe --json` inside a fresh cgroup with a 768 MiB memory limit when this process
/// may create one; otherwise checks the same property on the docker-v1 fixture root.
#[test]
fn usable_memory_is_the_cgroup_limit() {
    const LIMIT: u64 = 768 << 20;
    let limit = LIMIT.to_string();
    let setting = Setting {
        controller: "memory",
        v2: ("memory.max", &limit),
        v1: ("memory.limit_in_bytes", &limit),
    };
    let ctx = TestCtx::new();
    match LiveCgroup::create(&ctx, &setting) {
        Ok(cg) => {
            let p = cg.probe(&ctx);
            drop(cg);
            let max = p.memory.cgroup.as_ref().and_then(|c| c.memory_max_bytes);
            assert_eq!(max, Some(LIMIT), "{:?}", p.memory.cgroup);
            assert_eq!(p.memory.usable_bytes, LIMIT.min(p.memory.total_bytes));
        }
        Err(why) => {
            eprintln!("note: live cgroup test skipped ({why}); checking a fixture root instead");
            let p = probe_fixture(&ctx, "docker-v1");
            assert_eq!(p.memory.usable_bytes, 2 << 30);
            assert!(p.memory.total_bytes > p.memory.usable_bytes);
        }
    }
}

/// The same for a CPU quota of half a core: `quota_cores` reports 0.5.
#[test]
fn cpu_quota_is_the_cgroup_quota() {
    let setting = Setting {
        controller: "cpu",
        v2: ("cpu.max", "50000 100000"),
        v1: ("cpu.cfs_quota_us", "50000"),
    };
    let ctx = TestCtx::new();
    match LiveCgroup::create(&ctx, &setting) {
        Ok(cg) => {
            let p = cg.probe(&ctx);
            drop(cg);
            let quota = p.memory.cgroup.as_ref().and_then(|c| c.cpu_quota_cores);
            assert_eq!(quota, Some(0.5), "{:?}", p.memory.cgroup);
            assert_eq!(p.cpu.quota_cores, Some(0.5));
            assert_eq!(p.compute_cores(), 1);
        }
        Err(why) => {
            eprintln!("note: live cgroup test skipped ({why}); checking a fixture root instead");
            let p = probe_fixture(&ctx, "docker-v1");
            assert_eq!(p.cpu.quota_cores, Some(1.5));
        }
    }
}

fn probe_fixture(ctx: &TestCtx, name: &str) -> HardwareProfile {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/roots")
        .join(name);
    run_json(
        ctx.command()
            .arg("--probe-root")
            .arg(root)
            .args(["probe", "--json"]),
    )
}

/// A limit to set: the controller, and the file and value for cgroup v2 and v1.
struct Setting<'a> {
    controller: &'a str,
    v2: (&'a str, &'a str),
    v1: (&'a str, &'a str),
}

/// A cgroup created for one test, removed on drop (it is empty again once the child exits).
/// Its processes are started by `sh` with the context's environment: `sh -c SCRIPT BIN` moves
/// the shell into the cgroup, then execs the binary (`$0`) there.
struct LiveCgroup {
    dir: PathBuf,
    procs: PathBuf,
}

impl LiveCgroup {
    fn create(ctx: &TestCtx, setting: &Setting) -> Result<LiveCgroup, String> {
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("no /proc/self/cgroup: {e}"))?;
        let name = format!(
            "minerva-probe-test-{}-{}",
            std::process::id(),
            setting.controller
        );
        let base = Path::new("/sys/fs/cgroup");
        let (dir, (file, value)) = if base.join("cgroup.controllers").is_file() {
            // v2: a child of the root, where controllers are delegated if anywhere (a cgroup
            // with processes cannot enable controllers for its children).
            let subtree =
                std::fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
            if !subtree.split_whitespace().any(|c| c == setting.controller) {
                return Err(format!(
                    "the cgroup v2 root does not delegate the {} controller",
                    setting.controller
                ));
            }
            (base.join(&name), setting.v2)
        } else {
            // v1: a child of our own cgroup in that controller's hierarchy.
            let (mount, path) = own
                .lines()
                .find_map(|l| {
                    let mut it = l.splitn(3, ':');
                    let (_, ctrl, path) = (it.next()?, it.next()?, it.next()?);
                    ctrl.split(',')
                        .any(|c| c == setting.controller)
                        .then(|| (ctrl.to_string(), path.trim_start_matches('/').to_string()))
                })
                .ok_or_else(|| format!("no cgroup v1 {} controller", setting.controller))?;
            let mount = [base.join(&mount), base.join(setting.controller)]
                .into_iter()
                .find(|m| m.is_dir())
                .ok_or_else(|| format!("cgroup v1 {} hierarchy not mounted", setting.controller))?;
            (mount.join(path).join(&name), setting.v1)
        };
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cg = LiveCgroup {
            procs: dir.join("cgroup.procs"),
            dir,
        };
        std::fs::write(cg.dir.join(file), value).map_err(|e| format!("cannot set {file}: {e}"))?;
        // Prove a process can be moved in before relying on it.
        let ok = ctx
            .command_for("sh")
            .arg("-c")
            .arg(format!("echo $$ > '{}'", cg.procs.display()))
            .status()
            .map_err(|e| e.to_string())?;
        if !ok.success() {
            return Err("cannot move a process into the cgroup".into());
        }
        Ok(cg)
    }

    /// `probe --json` started inside this cgroup: the shell moves itself in, then execs.
    fn probe(&self, ctx: &TestCtx) -> HardwareProfile {
        let script = format!(
            "echo $$ > '{}' && exec \"$0\" probe --json --no-bandwidth",
            self.procs.display()
        );
        run_json(
            ctx.command_for("sh")
                .arg("-c")
                .arg(script)
                .arg(support::BIN),
        )
    }
}

impl Drop for LiveCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}
