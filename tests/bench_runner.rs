//! The benchmark's arithmetic, driven by a fake engine whose speeds follow a known law: decode
//! `t_token = overhead + weights / weights_per_s[type] / thread_factor` (+ attention per layer and
//! position: a cost per query head and one per KV head),
//! prefill `t_prompt = fixed + prompt × (2 × weights per token / FLOP/s(width) + attention) +
//! weights multiplied once × decode's cost per weight`. What the runner derives (thread choice,
//! per-type figures, the width curve, the per-prompt cost, the context growth, GPU entries) must
//! recover that law.

use std::path::Path;
use std::sync::Mutex;

use minerva_setup::bench::runner::{self, BenchError, BenchOptions, Engine, Job, JobRates};
use minerva_setup::bench::BenchBackend;
use minerva_setup::gguf::reader;
use minerva_setup::gguf::writer::tiny_shape;
use minerva_setup::gguf::{prefill_weights, GgmlType};
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

/// The fake's disk: what a load of an uncached model reads per second.
const COLD_READ_BYTES_PER_S: f64 = 400e6;

struct Fake {
    /// Models smaller than this many weights decode `cache_boost` times faster per weight.
    cache_below: u64,
    cache_boost: f64,
    gpu: bool,
    /// The context-growth law (all zero: the plain law above): decode's seconds per layer and
    /// earlier position per query head, per KV head and per KV element (KV heads × head size),
    /// and prefill's attention FLOP/s.
    per_query_head_s: f64,
    per_kv_head_s: f64,
    per_kv_element_s: f64,
    attention_flops: f64,
    /// Seconds every prompt costs beyond its tokens and its once-per-prompt matrices.
    per_prompt_s: f64,
    /// Prefill FLOP/s scale with `(width / 256) ^ width_exponent`.
    width_exponent: f64,
    calls: Mutex<Vec<(String, u32, Vec<Job>)>>,
}

impl Fake {
    fn new() -> Fake {
        Fake {
            cache_below: 0,
            cache_boost: 1.0,
            gpu: false,
            per_query_head_s: 0.0,
            per_kv_head_s: 0.0,
            per_kv_element_s: 0.0,
            attention_flops: 0.0,
            per_prompt_s: 0.0,
            width_exponent: 0.0,
            calls: Mutex::new(Vec::new()),
        }
    }

    fn prefill_flops(&self, n_embd: u32) -> f64 {
        PREFILL_FLOPS * (f64::from(n_embd) / 256.0).powf(self.width_exponent)
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
    /// A cold load reads the file at [`COLD_READ_BYTES_PER_S`] on top of the cached load.
    fn cold_load(&self, model: &Path) -> Result<Option<f64>, BenchError> {
        let bytes = std::fs::metadata(model).unwrap().len();
        Ok(Some(
            self.run(model, 0, &[])?.0 + bytes as f64 / COLD_READ_BYTES_PER_S,
        ))
    }

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
        let (w_tok, w_once) = prefill_weights(&m.tensors, s.n_layers, s.tied_embeddings);
        let rates = jobs
            .iter()
            .map(|j| {
                let decode_t = |prompt: u32| {
                    OVERHEAD_S
                        + (self.per_query_head_s * s.n_heads as f64
                            + self.per_kv_head_s * s.n_kv_heads as f64
                            + self.per_kv_element_s * (s.n_kv_heads * s.head_dim) as f64)
                            * layers
                            * (prompt as f64 + j.gen_tokens as f64 / 2.0)
                        + params as f64
                            / (weights_per_s(ty) * boost * gpu * thread_factor(j.threads))
                };
                // The once-per-prompt matrices cost what decoding reads of them costs at the
                // job's own context.
                let once_s = w_once as f64 * decode_t(j.prompt_tokens) / params as f64;
                let prefill_tps = |prompt: u32| {
                    let attention = if self.attention_flops > 0.0 {
                        4.0 * layers * (s.n_heads * s.head_dim) as f64 * (prompt as f64 / 2.0)
                            / self.attention_flops
                    } else {
                        0.0
                    };
                    let per_token = 2.0 * w_tok as f64 / self.prefill_flops(s.n_embd) + attention;
                    prompt as f64 / (self.per_prompt_s + once_s + prompt as f64 * per_token)
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
                    deep_decode_tokens_per_s: match j.deep_context_tokens {
                        0 => vec![],
                        deep => spread(1.0 / decode_t(deep)),
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

/// Weight bytes the tiny decode models read per token, at least: more than the 8-layer Q4_K
/// prefill model reads (so Q4_K gets a deeper decode model), less than the Q8_0 and F16 ones
/// (which are then decoded on their prefill models).
const DECODE_BYTES: u64 = 4_000_000;

fn options(dir: &Path) -> BenchOptions {
    let mut o = BenchOptions::new(dir.to_path_buf());
    let mut shape = tiny_shape();
    shape.n_layers = 8;
    o.model_shape = shape;
    o.decode_model_bytes = DECODE_BYTES;
    o.types = vec![GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::F16];
    o
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs()
}

/// The jobs the fake ran on models of `ty`.
fn jobs_on(fake: &Fake, ty: GgmlType) -> Vec<Job> {
    fake.calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _, jobs)| t == ty.name() && !jobs.is_empty())
        .flat_map(|(_, _, jobs)| jobs.clone())
        .collect()
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

    let types: Vec<&str> = r.quants.iter().map(|q| q.ggml_type.as_str()).collect();
    assert_eq!(types, ["Q4_K", "Q8_0", "F16"], "one entry per type");
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
        // The once-per-prompt matrices taken out at decode's cost per weight: the law's rate.
        assert!(
            close(q.prefill_flops_per_s, PREFILL_FLOPS, 1e-9),
            "{}: {}",
            q.ggml_type,
            q.prefill_flops_per_s
        );
        assert_eq!(q.prefill_n_embd, Some(256));
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
    assert_eq!(r.per_token_overhead_s, 0.0);
    assert_eq!(r.probe_bandwidth_bytes_per_s, Some(20e9));
}

#[test]
fn decode_is_measured_on_a_model_reading_the_decode_bytes_and_prefill_on_the_shallow_one() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let r = runner::run_with(&fake, &profile(2, 2), &options(dir.path()), &NoProgress).unwrap();
    let q4k = r.quant("Q4_K", BenchBackend::Cpu).unwrap();
    assert!(q4k.weight_bytes_per_token >= DECODE_BYTES, "{q4k:?}");
    assert!(q4k.n_layers > 8, "more layers than the prefill model");
    assert_eq!(
        q4k.decode_context_tokens,
        Some(runner::DECODE_PROMPT_TOKENS)
    );
    // The shallow prefill model's prompt, measured on it alone.
    assert_eq!(q4k.prompt_tokens, 128);
    assert!(q4k.prefill_tokens_per_s.median > 0.0);
    // Q8_0's and F16's 8 layers already read the decode bytes: one model, both measurements.
    for t in ["Q8_0", "F16"] {
        let q = r.quant(t, BenchBackend::Cpu).unwrap();
        assert_eq!((q.n_layers, q.decode_context_tokens), (8, None), "{t}");
    }
    let q4k_jobs = jobs_on(&fake, GgmlType::Q4_K);
    assert!(
        q4k_jobs
            .iter()
            .any(|j| !j.measure_prefill && j.prompt_tokens == runner::DECODE_PROMPT_TOKENS),
        "a decode-only job after a short prompt: {q4k_jobs:?}"
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
        calls[1..]
            .iter()
            .filter(|(_, _, jobs)| !jobs.is_empty())
            .all(|(_, _, jobs)| jobs[0].threads == 4),
        "every measurement uses the winner (the cold load's runs have no job)"
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
    assert_eq!(
        before.len(),
        5,
        "three prefill models, Q4_K's decode model and its depth model"
    );
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
    assert_eq!(gpu.len(), 3);
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
fn a_fixed_cost_per_prompt_is_found_from_two_depths_and_left_out_of_the_rates() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    fake.per_prompt_s = 2e-3;
    let r = runner::run_with(&fake, &profile(2, 2), &options(dir.path()), &NoProgress).unwrap();
    let c0 = r
        .prefill_s_per_prompt
        .expect("two depths of Q4_K were measured");
    assert!(close(c0, 2e-3, 1e-6), "per prompt {c0}");
    for q in &r.quants {
        assert!(
            close(q.prefill_flops_per_s, PREFILL_FLOPS, 1e-6),
            "{}: {}",
            q.ggml_type,
            q.prefill_flops_per_s
        );
    }
    // Counted as the matrices' time instead, it would have lowered every rate.
    let mut o = options(dir.path());
    o.width_curve = false;
    let r = runner::run_with(&fake, &profile(2, 2), &o, &NoProgress).unwrap();
    assert_eq!(r.prefill_s_per_prompt, None, "one depth only");
    assert!(r
        .quants
        .iter()
        .all(|q| q.prefill_flops_per_s < 0.99 * PREFILL_FLOPS));
}

#[test]
fn the_width_curve_recovers_a_rate_that_grows_with_the_width() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    fake.width_exponent = 0.3;
    fake.attention_flops = 10e9;
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K];
    // 512 wide: the half-width model is 256 wide with four times the layers.
    let mut shape = tiny_shape();
    shape.n_layers = 2;
    shape.n_embd = 512;
    shape.n_ff = 1024;
    shape.n_heads = 8;
    shape.n_kv_heads = 4;
    o.model_shape = shape;
    o.decode_model_bytes = 0;
    let r = runner::run_with(&fake, &profile(2, 2), &o, &NoProgress).unwrap();
    let points: Vec<(u32, u32)> = r
        .width_curve
        .iter()
        .map(|p| (p.n_embd, p.n_layers))
        .collect();
    assert_eq!(points, [(256, 8), (512, 2)]);
    // Every model written was measured, the depth model too although Q4_K decodes on its prefill
    // model here: the thread trials, the prefill model, the depth model, the half-width model and
    // its twin with heads of 128.
    assert_eq!(fake.calls.lock().unwrap().len(), 5);
    // Both growth models fitted the law's attention rate, each recorded at its head size.
    let (g, wide) = (
        r.context_growth.as_ref().unwrap(),
        r.context_growth_wide_heads
            .as_ref()
            .expect("measured on larger heads"),
    );
    assert_eq!((g.head_dim, wide.head_dim), (o.model_shape.head_dim, 128));
    for x in [g, wide] {
        let att = x.prefill_attention_flops_per_s.unwrap();
        assert!(close(att, 10e9, 1e-3), "heads of {}: {att}", x.head_dim);
    }
    for p in &r.width_curve {
        assert!(
            close(p.prefill_flops_per_s, fake.prefill_flops(p.n_embd), 1e-6),
            "{} wide: {}",
            p.n_embd,
            p.prefill_flops_per_s
        );
    }
    let rates = minerva_setup::predict::rates::cpu_rates(&profile(2, 2), Some(&r));
    let half = 0.5f64.powf(0.3);
    assert!(close(rates.prefill_width_factor(256), half, 1e-6));
    assert!(close(rates.prefill_width_factor(512), 1.0, 1e-9));
    // Between the points in log width, the nearest point's beyond them.
    let mid = (half + 1.0) / 2.0;
    assert!(close(rates.prefill_width_factor(362), mid, 1e-3));
    assert!(close(rates.prefill_width_factor(128), half, 1e-9));
    assert!(close(rates.prefill_width_factor(4096), 1.0, 1e-9));
}

#[test]
fn a_temporary_file_left_by_a_killed_run_is_removed_when_stale_and_never_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K];
    let spec = minerva_setup::bench::models::spec_for(&o.model_shape, GgmlType::Q4_K);
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
    // On the decode model, whose weights the type's entry describes.
    let q4k = r.batch_curve("Q4_K", BenchBackend::Cpu).unwrap();
    assert_eq!(
        q4k.params,
        r.quant("Q4_K", BenchBackend::Cpu).unwrap().params
    );
    // A type without its own curve borrows the one with the most weights per step.
    assert!(r.batch_curve("Q6_K", BenchBackend::Cpu).is_some());
}

#[test]
fn two_prompt_lengths_and_three_head_layouts_recover_the_attention_of_prefill_and_decode() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    fake.per_query_head_s = 10e-9;
    fake.per_kv_head_s = 8e-9;
    fake.per_kv_element_s = 0.5e-9;
    fake.attention_flops = 10e9;
    fake.per_prompt_s = 1e-3;
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K, GgmlType::Q8_0, GgmlType::Q6_K];
    let r = runner::run_with(&fake, &profile(2, 2), &o, &NoProgress).unwrap();

    // The long prompt ran once, on the Q4_K prefill model (no narrower width model here); the
    // deep context on the Q4_K, Q8_0 and Q6_K decode models, Q8_0's with a KV head per query
    // head, Q6_K's with heads of 128.
    let calls = fake.calls.lock().unwrap();
    let runs_with = |f: fn(&Job) -> u32| -> Vec<(String, u32)> {
        calls
            .iter()
            .flat_map(|(ty, _, jobs)| jobs.iter().map(move |j| (ty.clone(), f(j))))
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    assert_eq!(
        runs_with(|j| j.long_prompt_tokens),
        [("Q4_K".to_string(), runner::LONG_PROMPT_TOKENS)]
    );
    let deep = runner::DEEP_CONTEXT_TOKENS;
    assert_eq!(
        runs_with(|j| j.deep_context_tokens),
        [
            ("Q4_K".to_string(), deep),
            ("Q8_0".to_string(), deep),
            ("Q6_K".to_string(), deep)
        ]
    );
    let layouts: Vec<(u32, u32, u32)> = r
        .deep_decode
        .iter()
        .map(|p| (p.n_heads, p.n_kv_heads, p.head_dim))
        .collect();
    assert_eq!(layouts, [(4, 2, 64), (4, 4, 64), (2, 1, 128)]);

    let g = r
        .context_growth
        .as_ref()
        .expect("the context growth was measured");
    assert_eq!((g.n_layers, g.n_kv_heads, g.q_dim), (8, 2, 256));
    // Decode: the three costs of the law from the three layouts.
    let a = r.decode_attention.expect("decode's attention was fitted");
    assert!(close(a.s_per_query_head, 10e-9, 1e-6), "{a:?}");
    assert!(close(a.s_per_kv_head, 8e-9, 1e-6), "{a:?}");
    assert!(close(a.s_per_kv_element, 0.5e-9, 1e-6), "{a:?}");
    // With the attention taken out, each type's decode is the law's weights per second.
    for q in r.quants.iter().filter(|q| q.ggml_type != "F16") {
        let t = GgmlType::from_name(&q.ggml_type).unwrap();
        let net = 1.0 / q.decode_tokens_per_s.median - OVERHEAD_S - q.decode_attention_s(&a);
        assert!(
            close(q.params as f64 / net, weights_per_s(t), 1e-6),
            "{}",
            q.ggml_type
        );
    }
    // Prefill: the fixed and once-per-prompt costs taken out of both lengths first.
    let att = g.prefill_attention_flops_per_s.unwrap();
    assert!(close(att, 10e9, 1e-3), "attention {att}");
    // Too narrow for a half-width model: no second head size.
    assert!(r.context_growth_wide_heads.is_none());
    let c0 = r.prefill_s_per_prompt.unwrap();
    assert!(close(c0, 1e-3, 1e-3), "per prompt {c0}");
    // Prefill's FLOP rate of the matrices, attention and once-per-prompt work taken out: the law's.
    for q in &r.quants {
        assert!(
            close(q.prefill_flops_per_s, PREFILL_FLOPS, 1e-3),
            "{} {} layers: {}",
            q.ggml_type,
            q.n_layers,
            q.prefill_flops_per_s
        );
    }
}

#[test]
fn one_layout_charges_decodes_attention_per_kv_element() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    fake.per_query_head_s = 20e-9;
    fake.per_kv_element_s = 1.5e-9;
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K];
    let r = runner::run_with(&fake, &profile(2, 2), &o, &NoProgress).unwrap();
    assert_eq!(r.deep_decode.len(), 1);
    // The Q4_K decode model's slope (4 query heads and 2 KV heads of 64) spread over its KV
    // elements.
    let a = r.decode_attention.unwrap();
    assert_eq!((a.s_per_query_head, a.s_per_kv_head), (0.0, 0.0));
    assert!(
        close(
            a.s_per_kv_element,
            (4.0 * 20e-9 + 128.0 * 1.5e-9) / 128.0,
            1e-6
        ),
        "{a:?}"
    );
}

#[test]
fn a_longer_context_that_is_not_slower_yields_no_growth_figures() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K, GgmlType::Q8_0];
    // The plain law: prefill and decode do not depend on the prompt's length.
    let r = runner::run_with(&Fake::new(), &profile(2, 2), &o, &NoProgress).unwrap();
    let g = r.context_growth.expect("the long prompt was measured");
    assert_eq!(g.prefill_attention_flops_per_s, None);
    assert_eq!(r.deep_decode.len(), 2);
    assert_eq!(r.decode_attention, None);
}

#[test]
fn a_decode_attention_implausibly_large_for_the_benchmark_model_is_rejected_as_noise() {
    let dir = tempfile::tempdir().unwrap();
    let mut fake = Fake::new();
    // The decode models' attention at the deep context would be nearly all of their token.
    fake.per_kv_element_s = 1e-3 / 64.0;
    let mut o = options(dir.path());
    o.types = vec![GgmlType::Q4_K, GgmlType::Q8_0];
    let r = runner::run_with(&fake, &profile(2, 2), &o, &NoProgress).unwrap();
    assert_eq!(r.decode_attention, None);
    assert!(r
        .deep_decode
        .iter()
        .all(|p| p.deep_tokens_per_s.median < p.short_tokens_per_s));
}

/// Slopes (seconds per layer and position) of head layouts, fitted as `a × query heads + b × KV
/// heads + c × KV elements`: exact points give all three back; points whose fit would make a
/// cost negative give the others their least-squares values; layouts that cannot tell costs
/// apart fall back to fewer.
#[test]
fn decode_attention_fit_solves_three_costs_and_never_goes_negative() {
    use minerva_setup::bench::Stat;
    use minerva_setup::types::bench::DeepDecodePoint;
    // A point whose deep decode is slower than the short one by `slope × layers × 500`.
    let point = |heads: u32, kv: u32, head_dim: u32, slope: f64| {
        let short = 0.02;
        DeepDecodePoint {
            ggml_type: "Q4_K".into(),
            n_layers: 10,
            n_heads: heads,
            n_kv_heads: kv,
            head_dim,
            short_position: 20.0,
            deep_position: 520.0,
            short_tokens_per_s: 1.0 / short,
            deep_tokens_per_s: Stat::single(1.0 / (short + slope * 10.0 * 500.0)),
        }
    };
    let law = |h: f64, kv: f64, d: f64| 4e-9 * h + 9e-9 * kv + 0.6e-9 * kv * d;
    let pts = [
        point(32, 8, 64, law(32.0, 8.0, 64.0)),
        point(32, 32, 64, law(32.0, 32.0, 64.0)),
        point(16, 4, 128, law(16.0, 4.0, 128.0)),
    ];
    let a = runner::fit_decode_attention(&pts).unwrap();
    assert!(
        close(a.s_per_query_head, 4e-9, 1e-6)
            && close(a.s_per_kv_head, 9e-9, 1e-6)
            && close(a.s_per_kv_element, 0.6e-9, 1e-6),
        "{a:?}"
    );
    // Heads of one size cannot tell the KV heads from their elements: the query heads and the
    // KV elements carry them, exactly.
    let a = runner::fit_decode_attention(&pts[..2]).unwrap();
    assert_eq!(a.s_per_kv_head, 0.0);
    assert!(close(a.s_per_query_head, 4e-9, 1e-6), "{a:?}");
    assert!(
        close(a.s_per_kv_element, 0.6e-9 + 9e-9 / 64.0, 1e-6),
        "{a:?}"
    );
    // More ungrouped slope than grouping explains: the KV costs would be negative, so the query
    // heads alone carry it (least squares over both points).
    let pts = [point(32, 8, 64, 1e-6), point(32, 32, 64, 0.5e-6)];
    let a = runner::fit_decode_attention(&pts).unwrap();
    assert_eq!((a.s_per_kv_head, a.s_per_kv_element), (0.0, 0.0));
    assert!(
        close(a.s_per_query_head, (1e-6 + 0.5e-6) / 64.0, 1e-6),
        "{a:?}"
    );
    // The reverse: the query heads' cost negative, the KV elements alone.
    let pts = [point(32, 8, 64, 0.1e-6), point(32, 32, 64, 2e-6)];
    let a = runner::fit_decode_attention(&pts).unwrap();
    assert_eq!((a.s_per_query_head, a.s_per_kv_head), (0.0, 0.0));
    let (x1, x2) = (8.0 * 64.0, 32.0 * 64.0);
    let want = (x1 * 0.1e-6 + x2 * 2e-6) / (x1 * x1 + x2 * x2);
    assert!(close(a.s_per_kv_element, want, 1e-6), "{a:?}");
    // One point: charged per KV element.
    let a = runner::fit_decode_attention(&pts[..1]).unwrap();
    assert_eq!((a.s_per_query_head, a.s_per_kv_head), (0.0, 0.0));
    assert!(close(a.s_per_kv_element, 0.1e-6 / 512.0, 1e-6), "{a:?}");
    // A deep context that was faster is no point at all, nor one of unknown head size.
    let mut faster = point(32, 8, 64, 1e-7);
    faster.deep_tokens_per_s = Stat::single(60.0);
    assert_eq!(runner::fit_decode_attention(&[faster]), None);
    assert_eq!(runner::fit_decode_attention(&[point(32, 8, 0, 1e-7)]), None);
}

#[test]
fn the_q8_0_prefill_model_is_also_loaded_cold_and_its_read_speed_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new();
    let r = runner::run_with(&fake, &profile(2, 2), &options(dir.path()), &NoProgress).unwrap();
    let c = r.cold_load.expect("a cold load was timed");
    assert_eq!(c.ggml_type, "Q8_0");
    let read = c.read_bytes_per_s().unwrap();
    assert!(close(read, COLD_READ_BYTES_PER_S, 1e-9), "{read}");
    // Loaded twice more than its measurement needed: cold, then from the cache.
    let q8_loads = fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _, jobs)| t == "Q8_0" && jobs.is_empty())
        .count();
    assert_eq!(q8_loads, 2);
}
