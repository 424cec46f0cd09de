//! The benchmark's arithmetic, driven by a fake engine whose speeds follow a known law:
//! `t_token = overhead + weights / weights_per_s[type] / thread_factor`. What the runner derives
//! (thread choice, per-type figures, overhead, convergence, GPU entries) must recover that law.

use std::path::Path;
use std::sync::Mutex;

use minerva_setup::bench::runner::{self, BenchError, BenchOptions, Engine, Job, JobRates};
use minerva_setup::bench::BenchBackend;
use minerva_setup::gguf::reader;
use minerva_setup::gguf::writer::tiny_shape;
use minerva_setup::gguf::GgmlType;
use minerva_setup::profile::{BandwidthMeasurement, HardwareProfile};
use minerva_setup::progress::NoProgress;

const OVERHEAD_S: f64 = 20e-6;
const PREFILL_FLOPS: f64 = 50e9;

fn weights_per_s(t: GgmlType) -> f64 {
    match t {
        GgmlType::F16 => 3e9,
        GgmlType::Q8_0 => 4e9,
        GgmlType::Q4_K => 6e9,
        _ => 5e9,
    }
}

struct Fake {
    /// Models smaller than this many weights decode `cache_boost` times faster per weight.
    cache_below: u64,
    cache_boost: f64,
    gpu: bool,
    /// The context-growth law (both zero: the plain law above): seconds per KV row attended to
    /// in decode, and prefill's attention FLOP/s.
    per_kv_row_s: f64,
    attention_flops: f64,
    calls: Mutex<Vec<(String, u32, Vec<Job>)>>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            cache_below: 0,
            cache_boost: 1.0,
            gpu: false,
            per_kv_row_s: 0.0,
            attention_flops: 0.0,
            calls: Mutex::new(Vec::new()),
        }
    }
}

fn thread_factor(t: u32) -> f64 {
    match t {
        1 => 0.6,
        2 => 1.0,
        3 => 0.9,
        4 => 1.2,
        _ => 1.1,
    }
}

impl Engine for Fake {
    fn run(
        &self,
        model: &Path,
        gpu_layers: u32,
        jobs: &[Job],
    ) -> Result<(f64, Vec<JobRates>), BenchError> {
        let m = reader::read_model(model).unwrap();
        let (params, _) = m.per_token_weights();
        let ty = m.dominant_type().unwrap();
        self.calls
            .lock()
            .unwrap()
            .push((ty.name().to_string(), gpu_layers, jobs.to_vec()));
        let boost = if params < self.cache_below {
            self.cache_boost
        } else {
            1.0
        };
        let gpu = if gpu_layers > 0 { 10.0 } else { 1.0 };
        let s = &m.shape;
        let layers = s.n_layers as f64;
        let rates = jobs
            .iter()
            .map(|j| {
                let decode_t = |prompt: u32| {
                    OVERHEAD_S
                        + self.per_kv_row_s
                            * layers
                            * s.n_kv_heads as f64
                            * (prompt as f64 + j.gen_tokens as f64 / 2.0)
                        + params as f64
                            / (weights_per_s(ty) * boost * gpu * thread_factor(j.threads))
                };
                let prefill_tps = |prompt: u32| {
                    if self.attention_flops <= 0.0 {
                        return PREFILL_FLOPS / (2.0 * params as f64);
                    }
                    let output = (s.vocab_size * s.n_embd) as f64;
                    let matmul_flops = PREFILL_FLOPS;
                    let attention =
                        4.0 * layers * (s.n_heads * s.head_dim) as f64 * (prompt as f64 / 2.0);
                    1.0 / (2.0 * (params as f64 - output) / matmul_flops
                        + attention / self.attention_flops)
                };
                let t = decode_t(j.prompt_tokens);
                // Three samples around the true rate, the fastest 2 % above it: the median must
                // be the true rate, and fits of the fastest repetitions are 2 % off.
                let spread = |tps: f64| vec![0.95 * tps, tps, 1.02 * tps];
                let long = j.long_prompt_tokens;
                JobRates {
                    prefill_tokens_per_s: if j.measure_prefill {
                        vec![prefill_tps(j.prompt_tokens); 3]
                    } else {
                        vec![]
                    },
                    long_prefill_tokens_per_s: if long > 0 {
                        vec![prefill_tps(long); 2]
                    } else {
                        vec![]
                    },
                    long_decode_tokens_per_s: if long > 0 {
                        spread(1.0 / decode_t(long))
                    } else {
                        vec![]
                    },
                    decode_tokens_per_s: spread(1.0 / t),
                    // A step with B sequences costs (1 + (B - 1) / 4) one-sequence steps.
                    batch_step_s: j
                        .batch_sizes
                        .iter()
                        .map(|&b| (b, vec![t * (1.0 + (b - 1) as f64 / 4.0); 3]))
                        .collect(),
                }
            })
            .collect();
        Ok((0.01, rates))
    }

    fn gpu_available(&self) -> bool {
        self.gpu
    }
}

fn profile(physical: u32, logical: u32) -> HardwareProfile {
    let text = std::fs::read_to_string("tests/fixtures/bench-2core-avx512.json").unwrap();
    let mut p = HardwareProfile::from_json(&text, "fixture").unwrap();
    p.cpu.physical_cores = physical;
    p.cpu.logical_cores = logical;
    p.memory_bandwidth = Some(BandwidthMeasurement {
        bytes_per_s: 20e9,
        threads: 2,
        buffer_bytes: 1 << 30,
        duration_s: 0.5,
    });
    p
}

fn options(dir: &Path) -> BenchOptions {
    let mut o = BenchOptions::new(dir.to_path_buf());
    let mut shape = tiny_shape();
    shape.n_layers = 8;
    o.model_shape = shape;
    o.second_layers = 2;
    o.types = vec![GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F16];
    o
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs()
}

#[test]
fn figures_recover_the_speed_law_of_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let r = runner::run_with(&fake, &profile(2, 2), &options(dir.path()), &NoProgress).unwrap();

    assert_eq!(r.threads, 2);
    let trials: Vec<u32> = r.thread_trials.iter().map(|t| t.threads).collect();
    assert_eq!(
        trials,
        [2, 1],
        "physical cores, then one fewer (no SMT siblings to add)"
    );

    let types: Vec<(&str, BenchBackend)> = r
        .quants
        .iter()
        .map(|q| (q.ggml_type.as_str(), q.backend))
        .collect();
    assert_eq!(types.len(), 4, "three types and the second Q4_K: {types:?}");
    for q in &r.quants {
        let ty = GgmlType::from_name(&q.ggml_type).unwrap();
        let t = OVERHEAD_S + q.params as f64 / weights_per_s(ty);
        assert!(
            close(q.decode_tokens_per_s.median, 1.0 / t, 1e-9),
            "{}: median of the samples",
            q.ggml_type
        );
        assert_eq!(q.decode_tokens_per_s.samples, 3);
        assert!(close(q.decode_weights_per_s, q.params as f64 / t, 1e-9));
        assert!(close(
            q.decode_bandwidth_bytes_per_s,
            q.weight_bytes_per_token as f64 / t,
            1e-9
        ));
        assert!(close(
            q.bandwidth_ratio.unwrap(),
            q.decode_bandwidth_bytes_per_s / 20e9,
            1e-9
        ));
        assert!(
            close(q.prefill_flops_per_s, PREFILL_FLOPS, 1e-9),
            "{}",
            q.prefill_flops_per_s
        );
        assert!(q.weight_bytes_per_token < q.file_bytes);
    }
    // Q8_0 reads 34/32 bytes per weight, F16 2, Q4_K 4.5 bits.
    let q = |t: &str| r.quant(t, BenchBackend::Cpu).unwrap();
    assert!(close(
        q("F16").weight_bytes_per_token as f64 / q("F16").params as f64,
        2.0,
        0.01
    ));
    assert!(close(
        q("Q4_K").weight_bytes_per_token as f64 / q("Q4_K").params as f64,
        4.5 / 8.0,
        0.02
    ));

    assert!(
        close(r.per_token_overhead_s, OVERHEAD_S, 1e-6),
        "overhead {}",
        r.per_token_overhead_s
    );
    assert_eq!(r.converged, Some(true));
    assert_eq!(r.probe_bandwidth_bytes_per_s, Some(20e9));
    assert!(
        r.warnings.iter().all(|w| !w.contains("cache")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_small_model_flattered_by_the_cache_is_reported_as_not_converged() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K];
    // The 2-layer model fits "in cache" and decodes 1.5× faster per weight.
    let small = {
        let mut s = o.model_shape.clone();
        s.n_layers = 2;
        minerva_setup::gguf::writer::WeightLayout::Uniform(GgmlType::Q4_K).tensors(&s)
    };
    fake.cache_below = reader::per_token_weights(&small, false).0 + 1;
    fake.cache_boost = 1.5;
    let r = runner::run_with(&fake, &profile(2, 2), &o, &NoProgress).unwrap();
    assert_eq!(r.converged, Some(false));
    assert!(
        r.warnings.iter().any(|w| w.contains("may fit in cache")),
        "{:?}",
        r.warnings
    );
    assert_eq!(
        r.per_token_overhead_s, 0.0,
        "a negative intercept is clamped"
    );
}

#[test]
fn a_faster_neighbour_thread_count_wins_and_a_given_count_is_not_tried() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    // 3 physical cores, 6 logical: candidates 3, 2, 4; 4 is fastest in the fake.
    let r = runner::run_with(&fake, &profile(3, 6), &options(dir.path()), &NoProgress).unwrap();
    let trials: Vec<u32> = r.thread_trials.iter().map(|t| t.threads).collect();
    assert_eq!(trials, [3, 2, 4]);
    assert_eq!(r.threads, 4);
    let calls = fake.calls.lock().unwrap();
    assert!(
        calls[0]
            .2
            .iter()
            .all(|j| j.budget_s > 0.1 && !j.measure_prefill && j.prompt_tokens < 128),
        "trials: decode only, with time"
    );
    assert!(
        calls[1..].iter().all(|(_, _, jobs)| jobs[0].threads == 4),
        "every measurement uses the winner"
    );

    let fake = Fake::new();
    let mut o = options(dir.path());
    o.threads = Some(1);
    let r = runner::run_with(&fake, &profile(3, 6), &o, &NoProgress).unwrap();
    assert!(r.thread_trials.is_empty());
    assert_eq!(r.threads, 1);
}

#[test]
fn models_are_written_once_and_reused_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let o = options(dir.path());
    runner::run_with(&Fake::new(), &profile(2, 2), &o, &NoProgress).unwrap();
    let bench_dir = dir.path().join("bench");
    let mtimes = |d: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().modified().unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let before = mtimes(&bench_dir);
    assert_eq!(before.len(), 4, "three types and the second Q4_K");
    runner::run_with(&Fake::new(), &profile(2, 2), &o, &NoProgress).unwrap();
    assert_eq!(mtimes(&bench_dir), before, "nothing rewritten");

    // A cut-short file under the final name (not possible through the writer, but a disk error
    // or a hand copy can do it) is rewritten, not trusted.
    let (name, _) = &before[0];
    let path = bench_dir.join(name);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    runner::run_with(&Fake::new(), &profile(2, 2), &o, &NoProgress).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
}

#[test]
fn with_a_gpu_every_type_is_measured_again_with_all_layers_offloaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    fake.gpu = true;
    let mut p = profile(2, 2);
    p.gpus.push(minerva_setup::profile::GpuInfo {
        vendor: minerva_setup::profile::GpuVendor::Nvidia,
        index: 0,
        name: "test GPU".into(),
        vram_total_bytes: 8 << 30,
        vram_free_bytes: None,
        compute_capability: None,
        memory_bus_width_bits: None,
        max_memory_clock_mhz: None,
        memory_bandwidth_bytes_per_s: None,
        driver_version: None,
        cuda_version: None,
        pci_id: None,
        unified_memory: false,
    });
    let r = runner::run_with(&fake, &p, &options(dir.path()), &NoProgress).unwrap();
    let gpu: Vec<_> = r
        .quants
        .iter()
        .filter(|q| q.backend == BenchBackend::Gpu)
        .collect();
    assert_eq!(gpu.len(), 4);
    assert!(
        gpu.iter().all(|q| q.bandwidth_ratio.is_none()),
        "RAM bandwidth is not the GPU's"
    );
    let cpu_q4k = r.quant("Q4_K", BenchBackend::Cpu).unwrap();
    let gpu_q4k = r.quant("Q4_K", BenchBackend::Gpu).unwrap();
    assert!(gpu_q4k.decode_tokens_per_s.median > cpu_q4k.decode_tokens_per_s.median);
    assert!(fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .any(|(_, layers, _)| *layers == 999));

    // The same machine without a GPU in its profile: CPU only.
    let r = runner::run_with(&fake, &profile(2, 2), &options(dir.path()), &NoProgress).unwrap();
    assert!(r.quants.iter().all(|q| q.backend == BenchBackend::Cpu));
}

#[test]
fn stat_takes_the_median_and_the_extremes() {
    let s = runner::stat(&[3.0, 1.0, 2.0, 10.0]);
    assert_eq!((s.median, s.min, s.max, s.samples), (2.5, 1.0, 10.0, 4));
    assert_eq!(runner::stat(&[]).samples, 0);
}

#[test]
fn the_second_size_may_be_the_larger_one_as_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K];
    o.second_layers = 16;
    let r = runner::run_with(&Fake::new(), &profile(2, 2), &o, &NoProgress).unwrap();
    assert_eq!(r.quants.len(), 2);
    assert!(r.quants[1].params > r.quants[0].params);
    assert_eq!(
        r.quant("Q4_K", BenchBackend::Cpu).unwrap().params,
        r.quants[1].params,
        "the larger one represents the type"
    );
    assert!(close(r.per_token_overhead_s, OVERHEAD_S, 1e-6));
    assert_eq!(r.converged, Some(true));
    assert_eq!(
        runner::BenchOptions::new(dir.path().to_path_buf()).second_layers,
        24
    );
}

#[test]
fn a_temporary_file_left_by_a_killed_run_is_removed_when_stale_and_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q8_0];
    let spec = minerva_setup::bench::models::spec_for(&o.model_shape, GgmlType::Q8_0);
    let key = minerva_setup::bench::models::cache_key(&spec);
    let bench_dir = dir.path().join("bench");
    std::fs::create_dir_all(&bench_dir).unwrap();
    let stale = bench_dir.join(format!(".{key}.tmp-999999"));
    let fresh = bench_dir.join(format!(".{key}.tmp-999998"));
    std::fs::write(&stale, b"half a model").unwrap();
    std::fs::write(&fresh, b"being written by another run").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    runner::run_with(&Fake::new(), &profile(2, 2), &o, &NoProgress).unwrap();
    assert!(!stale.exists());
    assert!(
        fresh.exists(),
        "a recent temporary may belong to a run in progress"
    );
    assert!(bench_dir.join(&key).exists());
}

#[test]
fn batched_decode_is_measured_only_for_several_users_and_once_per_type() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let one = runner::run_with(&fake, &profile(2, 2), &options(dir.path()), &NoProgress).unwrap();
    assert!(one.batch_decode.is_empty(), "one user needs no batches");
    assert!(fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .all(|(_, _, jobs)| jobs.iter().all(|j| j.batch_sizes.is_empty())));

    let fake = Fake::new();
    let opts = options(dir.path()).with_batches_for(4);
    let r = runner::run_with(&fake, &profile(2, 2), &opts, &NoProgress).unwrap();
    // Three types, the second Q4_K size adds nothing to the curve.
    let types: Vec<&str> = r
        .batch_decode
        .iter()
        .map(|b| b.ggml_type.as_str())
        .collect();
    assert_eq!(types, ["Q4_K", "Q8_0", "F16"]);
    for b in &r.batch_decode {
        let sizes: Vec<u32> = b.steps.iter().map(|s| s.sequences).collect();
        assert_eq!(sizes, runner::BATCH_SIZES);
        assert_eq!(b.context_tokens, runner::BATCH_PROMPT_TOKENS);
        // The fake's law: (1 + (B - 1) / 4) one-sequence steps.
        for (bs, want) in [(1, 1.0), (2, 1.25), (4, 1.75), (8, 2.75), (16, 4.75)] {
            assert!(close(b.step_ratio(bs).unwrap(), want, 1e-9), "{bs}: {b:?}");
        }
    }
    let q4k = r.batch_curve("Q4_K", BenchBackend::Cpu).unwrap();
    assert_eq!(
        q4k.params,
        r.quant("Q4_K", BenchBackend::Cpu).unwrap().params
    );
    // A type without its own curve borrows the one with the most weights per step.
    assert!(r.batch_curve("Q6_K", BenchBackend::Cpu).is_some());
}

#[test]
fn two_prompt_lengths_recover_the_attention_of_prefill_and_decode() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    fake.per_kv_row_s = 100e-9;
    fake.attention_flops = 10e9;
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K, GgmlType::Q8_0];
    o.second_layers = 16;
    let r = runner::run_with(&fake, &profile(2, 2), &o, &NoProgress).unwrap();

    // The long prompt ran once, on the main Q4_K model.
    let calls = fake.calls.lock().unwrap();
    let long: Vec<(String, u32)> = calls
        .iter()
        .flat_map(|(ty, _, jobs)| jobs.iter().map(move |j| (ty.clone(), j.long_prompt_tokens)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(long, [("Q4_K".to_string(), runner::LONG_PROMPT_TOKENS)]);

    let g = r
        .context_growth
        .as_ref()
        .expect("the context growth was measured");
    assert_eq!((g.n_layers, g.n_kv_heads, g.q_dim), (8, 2, 256));
    // The decode fit takes the fastest repetition (2 % above the true rate in the fake).
    let kv = g.decode_s_per_kv_row.unwrap();
    assert!(close(kv, 100e-9 / 1.02, 1e-6), "per KV row {kv}");
    let att = g.prefill_attention_flops_per_s.unwrap();
    assert!(close(att, 10e9, 1e-6), "attention {att}");
    // Prefill's FLOP rate of the matrices, attention and output matrix taken out: the law's.
    for q in &r.quants {
        assert!(
            close(q.prefill_flops_per_s, PREFILL_FLOPS, 1e-6),
            "{} {} layers: {}",
            q.ggml_type,
            q.n_layers,
            q.prefill_flops_per_s
        );
    }
    // The attention taken out of the recorded decode times leaves the weights' law: the
    // overhead fit through the two sizes still finds the fixed cost per token.
    assert!(
        close(r.per_token_overhead_s, OVERHEAD_S, 0.05),
        "per token {}",
        r.per_token_overhead_s
    );
}

#[test]
fn a_longer_context_that_is_not_slower_yields_no_growth_figures() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K];
    o.second_layers = 8;
    // The plain law: prefill and decode do not depend on the prompt's length.
    let r = runner::run_with(&Fake::new(), &profile(2, 2), &o, &NoProgress).unwrap();
    let g = r.context_growth.expect("the long prompt was measured");
    assert_eq!(g.decode_s_per_kv_row, None);
    assert_eq!(g.prefill_attention_flops_per_s, None);
}

#[test]
fn a_context_growth_implausibly_large_for_the_benchmark_model_is_rejected_as_noise() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    // The benchmark model's own attention would be over two thirds of its decoded token.
    fake.per_kv_row_s = 1e-6;
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K];
    o.second_layers = 16;
    let r = runner::run_with(&fake, &profile(2, 2), &o, &NoProgress).unwrap();
    let g = r.context_growth.expect("the long prompt was measured");
    assert_eq!(g.decode_s_per_kv_row, None);
    assert!(g.long_decode_tokens_per_s < g.short_decode_tokens_per_s);
}
