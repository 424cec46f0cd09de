//! The benchmark run: pick the thread count, measure each model, derive the figures the predictor
//! scales from, and assemble the `BenchResult`.
//!
//! The measuring itself sits behind [`Engine`], so the arithmetic here (medians, weights per
//! second, bandwidth ratios, the two-size overhead fit, thread choice) is tested with a fake engine;
//! [`LlamaEngine`] is the real one.

use std::path::Path;
use std::time::{Duration, Instant};

use super::models::{
    self, BenchModel, ModelError, CONVERGENCE_TYPE, DEFAULT_TYPES, LARGE_LAYERS, SECOND_LAYERS,
};
use crate::gguf::{GgmlType, ModelShape};
use crate::llama::cpu::VariantError;
use crate::llama::{self, LlamaError};
use crate::profile::HardwareProfile;
use crate::progress::Progress;
use crate::types::bench::{
    BatchDecode, BatchStep, BenchBackend, BenchConditions, BenchResult, ContextGrowth, QuantBench,
    Stat, ThreadTrial, BENCH_SCHEMA_VERSION,
};
use crate::types::cpu_variant::CpuVariant;

/// How to run the benchmark.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Types to measure with generated models (ignored with `bench_model`).
    pub types: Vec<GgmlType>,
    /// Thread count; `None` means the profile's physical cores, with a neighbour count tried.
    pub threads: Option<u32>,
    /// Benchmark this GGUF instead of generated models.
    pub bench_model: Option<std::path::PathBuf>,
    /// Generated models are cached under `<cache_dir>/bench/`.
    pub cache_dir: std::path::PathBuf,
    /// Prompt length of the prefill measurement.
    pub prompt_tokens: u32,
    /// Tokens generated per decode repetition.
    pub gen_tokens: u32,
    /// Wall time for all measurements (model writing excluded); each model gets its share.
    pub time_budget_s: f64,
    /// Also measure on the GPU when the build has a GPU backend and the profile lists a GPU.
    pub gpu: bool,
    /// Let llama.cpp's log lines through to stderr.
    pub llama_logs: bool,
    /// Shape of the generated models (tests use a tiny one).
    pub model_shape: crate::gguf::ModelShape,
    /// Layers of the second model of [`CONVERGENCE_TYPE`] (no second model when equal to
    /// `model_shape.n_layers`).
    pub second_layers: u32,
    /// Batch sizes of the batched-decode measurement (several users at once); empty: none.
    pub batch_sizes: Vec<u32>,
    /// `--cpu-variant`: run llama.cpp's CPU kernels built for this variant instead of the best
    /// one this CPU can run.
    pub cpu_variant: Option<String>,
}

impl BenchOptions {
    pub fn new(cache_dir: std::path::PathBuf) -> BenchOptions {
        BenchOptions {
            types: DEFAULT_TYPES.to_vec(),
            threads: None,
            bench_model: None,
            cache_dir,
            prompt_tokens: 128,
            gen_tokens: 32,
            time_budget_s: 6.5,
            gpu: true,
            llama_logs: false,
            model_shape: models::bench_shape(LARGE_LAYERS),
            second_layers: SECOND_LAYERS,
            batch_sizes: Vec::new(),
            cpu_variant: None,
        }
    }

    /// Also measure decode steps with 1, 2, 4 and 8 sequences in one batch: what a plan for
    /// `concurrency` users needs (nothing for one user).
    pub fn with_batches_for(mut self, concurrency: u32) -> BenchOptions {
        self.batch_sizes = if concurrency > 1 {
            BATCH_SIZES.to_vec()
        } else {
            Vec::new()
        };
        self
    }
}

/// Batch sizes measured for several users: a step's cost at 1, 2, 4 and 8 sequences; the
/// predictor interpolates between them and extends the last slope beyond 8.
pub const BATCH_SIZES: [u32; 4] = [1, 2, 4, 8];

/// Prompt tokens each sequence holds while batched decode steps are timed.
pub const BATCH_PROMPT_TOKENS: u32 = 64;

/// Timed steps per batch size (after one warm-up step).
pub const BATCH_STEPS: u32 = 6;

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("llama.cpp cannot run here")]
    Unsupported(#[source] VariantError),
    #[error("benchmark model unavailable")]
    Model(#[source] ModelError),
    #[error("benchmark failed")]
    Llama(#[source] LlamaError),
}

/// One measurement job on a loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub threads: u32,
    /// Prompt evaluated before decoding (decode runs at this context length).
    pub prompt_tokens: u32,
    /// Whether the prompt's evaluation is measured (false for decode-only thread trials).
    pub measure_prefill: bool,
    pub gen_tokens: u32,
    pub min_reps: u32,
    pub max_reps: u32,
    /// Stop repeating once `min_reps` are done and this much time has gone, or the figures agree.
    pub budget_s: f64,
    /// After the repetitions, time decode steps with this many sequences in one batch each.
    pub batch_sizes: Vec<u32>,
    /// After the repetitions, prefill a prompt of this many tokens and decode after it (the
    /// context growth); 0: none.
    pub long_prompt_tokens: u32,
}

/// Raw rates of one job, one entry per repetition (warm-up excluded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRates {
    pub prefill_tokens_per_s: Vec<f64>,
    pub decode_tokens_per_s: Vec<f64>,
    /// Per batch size of the job: the seconds of each timed step.
    pub batch_step_s: Vec<(u32, Vec<f64>)>,
    /// Prefill of the long prompt, and decode after it (empty without `long_prompt_tokens`).
    pub long_prefill_tokens_per_s: Vec<f64>,
    pub long_decode_tokens_per_s: Vec<f64>,
}

/// Measures models. The real one drives llama.cpp; tests use a fake.
pub trait Engine {
    /// Load `model` once (offloading `gpu_layers`), run `jobs` in order; returns load seconds and
    /// each job's rates.
    fn run(
        &self,
        model: &Path,
        gpu_layers: u32,
        jobs: &[Job],
    ) -> Result<(f64, Vec<JobRates>), BenchError>;
    /// Whether a GPU can take the layers.
    fn gpu_available(&self) -> bool {
        false
    }
    /// Which of llama.cpp's CPU kernel variants runs (`None` for engines that are not llama.cpp).
    fn cpu_variant(&self) -> Option<CpuVariant> {
        None
    }
}

/// Run the benchmark for the machine `profile` describes, measuring on this machine.
pub fn run_bench(
    profile: &HardwareProfile,
    opts: &BenchOptions,
    progress: &dyn Progress,
) -> Result<BenchResult, BenchError> {
    let threads = opts.threads.unwrap_or_else(|| profile.compute_cores());
    let engine = LlamaEngine::new(&llama::BackendConfig {
        simd: crate::probe::cpu::live_simd(),
        cpu_variant: opts.cpu_variant.clone(),
        threads,
        show_logs: opts.llama_logs,
        unchecked: false,
    })?;
    run_with(&engine, profile, opts, progress)
}

/// [`run_bench`] with a given engine (the seam tests use).
pub fn run_with(
    engine: &dyn Engine,
    profile: &HardwareProfile,
    opts: &BenchOptions,
    progress: &dyn Progress,
) -> Result<BenchResult, BenchError> {
    // Models first: writing them is not part of the measured wall time.
    let models = prepare_models(opts, progress)?;

    let start = Instant::now();
    let load_at_start = load_average();
    let cpu_at_start = cpu_times();
    let mut warnings: Vec<String> = busy_warning(profile).into_iter().collect();
    let backends = backends(engine, profile, opts);
    let runs = models.count() * backends.len() + usize::from(opts.threads.is_none());
    let mut budget = Budget::new(start, opts.time_budget_s, runs);
    let run = Run {
        engine,
        opts,
        progress,
    };

    let (threads, thread_trials) = choose_threads(&run, profile, &models.entries, &mut budget)?;
    let probe_bw = profile
        .memory_bandwidth
        .as_ref()
        .map(|b| b.bytes_per_s)
        .filter(|b| *b > 0.0);
    let measured = measure_models(
        &run,
        threads,
        &backends,
        &models,
        probe_bw,
        &mut budget,
        &mut warnings,
    )?;
    let conditions = load_at_start.map(|load| BenchConditions {
        load_average_1m: load,
        logical_cores: profile.cpu.logical_cores,
        steal_ratio: match (cpu_at_start, cpu_times()) {
            (Some(a), Some(b)) => steal_ratio(a, b),
            _ => 0.0,
        },
    });
    let mut result = assemble_result(
        opts,
        start,
        threads,
        thread_trials,
        measured,
        probe_bw,
        warnings,
    );
    result.conditions = conditions;
    result.cpu_variant = engine.cpu_variant().map(Box::new);
    if let Some(c) = conditions.filter(|c| c.steal_ratio >= 0.02) {
        result.warnings.push(format!(
            "the hypervisor took {:.0} % of the CPU time during the benchmark: predictions carry a wider band",
            c.steal_ratio * 100.0
        ));
    }
    Ok(result)
}

/// What every measuring step needs: the engine, the options and where progress goes.
struct Run<'a> {
    engine: &'a dyn Engine,
    opts: &'a BenchOptions,
    progress: &'a dyn Progress,
}

/// The models a run measures: one per type (or the one `bench_model`), and the second size of
/// [`CONVERGENCE_TYPE`] when there is one.
struct PreparedModels {
    entries: Vec<BenchModel>,
    second: Option<BenchModel>,
}

impl PreparedModels {
    /// Every model, the second size last.
    fn iter(&self) -> impl Iterator<Item = &BenchModel> {
        self.entries.iter().chain(self.second.iter())
    }

    fn count(&self) -> usize {
        self.entries.len() + self.second.iter().count()
    }
}

/// Load `bench_model`, or write (or find cached) the generated models; notes the writing time
/// when anything was written.
fn prepare_models(
    opts: &BenchOptions,
    progress: &dyn Progress,
) -> Result<PreparedModels, BenchError> {
    let write_start = Instant::now();
    let mut entries: Vec<BenchModel> = Vec::new();
    let mut second: Option<BenchModel> = None;
    match &opts.bench_model {
        Some(path) => entries.push(models::from_file(path).map_err(BenchError::Model)?),
        None => {
            let types = if opts.types.is_empty() {
                DEFAULT_TYPES.to_vec()
            } else {
                opts.types.clone()
            };
            for t in &types {
                let mut shape = opts.model_shape.clone();
                shape.n_layers = models::layers_for(*t, shape.n_layers);
                let spec = models::spec_for(&shape, *t);
                entries.push(
                    models::ensure_cached(&opts.cache_dir, &spec, progress)
                        .map_err(BenchError::Model)?,
                );
            }
            if types.contains(&CONVERGENCE_TYPE) && opts.second_layers != opts.model_shape.n_layers
            {
                let mut shape = opts.model_shape.clone();
                shape.n_layers = opts.second_layers.max(1);
                let spec = models::spec_for(&shape, CONVERGENCE_TYPE);
                second = Some(
                    models::ensure_cached(&opts.cache_dir, &spec, progress)
                        .map_err(BenchError::Model)?,
                );
            }
        }
    }
    let models = PreparedModels { entries, second };
    let wrote_any = models.iter().any(|m| m.written);
    let model_write_s = if wrote_any {
        write_start.elapsed().as_secs_f64()
    } else {
        0.0
    };
    if wrote_any {
        progress.note(&format!(
            "benchmark models written in {model_write_s:.1} s (cached for later runs under {})",
            opts.cache_dir.join("bench").display()
        ));
    }
    Ok(models)
}

/// A warning when the load average says other work competes for the CPUs.
fn busy_warning(profile: &HardwareProfile) -> Option<String> {
    let load = load_average()?;
    let cores = profile.cpu.logical_cores.max(1) as f64;
    (load >= 0.5 * cores).then(|| {
        format!(
            "the machine was busy when the benchmark started (load average {load:.1} on {} CPUs): other work competes with llama.cpp's threads and the figures may be low",
            profile.cpu.logical_cores
        )
    })
}

/// The backends to measure on, each with the layers it offloads: always the CPU, and the GPU
/// when asked for, available to the engine and listed in the profile.
fn backends(
    engine: &dyn Engine,
    profile: &HardwareProfile,
    opts: &BenchOptions,
) -> Vec<(BenchBackend, u32)> {
    let mut backends = vec![(BenchBackend::Cpu, 0u32)];
    if opts.gpu && engine.gpu_available() && !profile.gpus.is_empty() {
        // 999 layers: llama.cpp caps at the model's count, so every layer goes to the GPU.
        backends.push((BenchBackend::Gpu, 999));
    }
    backends
}

/// The time budget, shared out as the run goes.
///
/// Each measurement gets an equal share of what is left of the budget, so one that overran
/// (other load on the machine) shortens the rest instead of the total. Thread trials count as one.
struct Budget {
    start: Instant,
    total_s: f64,
    runs_left: usize,
    floor_s: f64,
}

impl Budget {
    fn new(start: Instant, total_s: f64, runs: usize) -> Budget {
        Budget {
            start,
            total_s,
            runs_left: runs,
            floor_s: 0.2 * total_s / runs.max(1) as f64,
        }
    }

    /// The next measurement's share in seconds: what is left divided by the runs left, at least
    /// a fifth of an equal share of the whole.
    fn next_share(&mut self) -> f64 {
        let left = (self.total_s - self.start.elapsed().as_secs_f64()).max(0.0);
        let share = (left / self.runs_left.max(1) as f64).max(self.floor_s);
        self.runs_left = self.runs_left.saturating_sub(1);
        share
    }
}

/// The thread count, and the trials that chose it.
///
/// Physical cores (capped by a quota) unless given; a neighbour count is tried on the first
/// model with short decode-only runs and kept if faster.
fn choose_threads(
    run: &Run,
    profile: &HardwareProfile,
    entries: &[BenchModel],
    budget: &mut Budget,
) -> Result<(u32, Vec<ThreadTrial>), BenchError> {
    let Run {
        engine,
        opts,
        progress,
    } = *run;
    let mut thread_trials = Vec::new();
    let threads = match opts.threads {
        Some(t) => t.max(1),
        None => {
            let base = profile.compute_cores();
            let max = profile.cpu.logical_cores.max(base);
            let mut candidates = vec![base];
            if base > 1 {
                candidates.push(base - 1);
            }
            if base < max {
                candidates.push(base + 1);
            }
            let first = &entries[0];
            let trial_share = budget.next_share();
            progress.phase(
                &format!(
                    "trying {} thread counts on {}",
                    candidates.len(),
                    label(first)
                ),
                None,
            );
            let jobs: Vec<Job> = candidates
                .iter()
                .map(|&t| Job {
                    threads: t,
                    // A short prompt: the comparison between thread counts does not depend on
                    // the context length, and on a busy machine a slow candidate's prefill of
                    // the full prompt would eat the budget.
                    prompt_tokens: WARMUP_PROMPT,
                    measure_prefill: false,
                    gen_tokens: opts.gen_tokens,
                    min_reps: 2,
                    max_reps: 2,
                    budget_s: trial_share / candidates.len() as f64,
                    batch_sizes: Vec::new(),
                    long_prompt_tokens: 0,
                })
                .collect();
            let (_, rates) = engine.run(&first.path, 0, &jobs)?;
            progress.finish();
            for (t, r) in candidates.iter().zip(&rates) {
                thread_trials.push(ThreadTrial {
                    threads: *t,
                    decode_tokens_per_s: stat(&r.decode_tokens_per_s).median,
                });
            }
            // The default wins ties within 3 %: more threads than needed only adds contention.
            let best = thread_trials
                .iter()
                .skip(1)
                .fold(&thread_trials[0], |b, t| {
                    if t.decode_tokens_per_s > b.decode_tokens_per_s * 1.03 {
                        t
                    } else {
                        b
                    }
                });
            best.threads
        }
    };
    Ok((threads, thread_trials))
}

/// Measure every model on every backend, one job each, and derive the per-type figures; warns
/// about each wide decode spread.
fn measure_models(
    run: &Run,
    threads: u32,
    backends: &[(BenchBackend, u32)],
    models: &PreparedModels,
    probe_bw: Option<f64>,
    budget: &mut Budget,
    warnings: &mut Vec<String>,
) -> Result<Measured, BenchError> {
    let Run {
        engine,
        opts,
        progress,
    } = *run;
    let mut quants = Vec::new();
    let mut growth = None;
    let mut shapes = Vec::new();
    let mut batches = Vec::new();
    for (backend, gpu_layers) in backends {
        for m in models.iter() {
            progress.phase(
                &format!("measuring {} ({})", label(m), backend_name(*backend)),
                None,
            );
            let mut job = main_job(opts, threads, budget.next_share());
            // Batched decode on each type's main model (the second size adds nothing to it).
            let is_second = models.second.as_ref().is_some_and(|s| s.path == m.path);
            if !is_second {
                job.batch_sizes = opts.batch_sizes.clone();
            }
            // The context growth on the CPU, once, on the main model of the convergence type.
            let growth_model = *backend == BenchBackend::Cpu
                && !is_second
                && opts.bench_model.is_none()
                && m.dominant_type() == CONVERGENCE_TYPE;
            if growth_model {
                job.long_prompt_tokens = LONG_PROMPT_TOKENS;
            }
            let (load_s, rates) = engine.run(&m.path, *gpu_layers, &[job])?;
            progress.finish();
            if let Some(b) = derive_batches(m, *backend, &rates[0]) {
                batches.push(b);
            }
            let q = derive(m, *backend, load_s, opts, &rates[0], probe_bw);
            if growth_model {
                growth = fit_context_growth(&q, &m.shape, LONG_PROMPT_TOKENS, &rates[0]);
            }
            shapes.push(m.shape.clone());
            if q.decode_tokens_per_s.spread() > 0.10 {
                warnings.push(format!(
                    "{} decode spread is {:.0}% (other load on the machine?)",
                    q.ggml_type,
                    q.decode_tokens_per_s.spread() * 100.0
                ));
            }
            quants.push(q);
        }
    }
    if let Some(g) = growth.as_ref() {
        for (q, shape) in quants.iter_mut().zip(&shapes) {
            if q.backend == BenchBackend::Cpu {
                q.prefill_flops_per_s = net_prefill_flops(q, shape, g);
            }
        }
    }
    Ok(Measured {
        quants,
        batches,
        growth,
    })
}

/// What [`measure_models`] found: one entry per model and backend, the batched-decode curves, and
/// the context growth when the long prompt ran.
struct Measured {
    quants: Vec<QuantBench>,
    batches: Vec<BatchDecode>,
    growth: Option<ContextGrowth>,
}

/// The batched-decode curve of one model's job, when it measured one.
fn derive_batches(m: &BenchModel, backend: BenchBackend, r: &JobRates) -> Option<BatchDecode> {
    let steps: Vec<BatchStep> = r
        .batch_step_s
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(b, v)| BatchStep {
            sequences: *b,
            step_s: stat(v),
        })
        .collect();
    if steps.is_empty() {
        return None;
    }
    let (params, _) = m.per_token();
    Some(BatchDecode {
        ggml_type: m.dominant_type().name().to_string(),
        backend,
        params,
        context_tokens: BATCH_PROMPT_TOKENS,
        steps,
    })
}

/// The measuring job of one model: the full prompt, prefill measured, up to 12 repetitions.
fn main_job(opts: &BenchOptions, threads: u32, share: f64) -> Job {
    Job {
        threads,
        prompt_tokens: opts.prompt_tokens,
        measure_prefill: true,
        gen_tokens: opts.gen_tokens,
        min_reps: 2,
        max_reps: 12,
        budget_s: share,
        batch_sizes: Vec::new(),
        long_prompt_tokens: 0,
    }
}

/// The result: the two-size overhead fit, the load overhead, the remaining warnings and the
/// description of what was measured. `start` is when measuring began (the wall time's origin).
fn assemble_result(
    opts: &BenchOptions,
    start: Instant,
    threads: u32,
    thread_trials: Vec<ThreadTrial>,
    measured: Measured,
    probe_bw: Option<f64>,
    mut warnings: Vec<String>,
) -> BenchResult {
    let Measured {
        quants,
        batches: batch_decode,
        growth,
    } = measured;
    let per_kv_row_s = growth
        .as_ref()
        .and_then(|g| g.decode_s_per_kv_row)
        .unwrap_or(0.0);
    let (per_token_overhead_s, converged) = convergence(&quants, per_kv_row_s, &mut warnings);
    let load_overhead_s = load_overhead(&quants);
    if probe_bw.is_none() {
        warnings.push(
            "the hardware profile has no memory bandwidth: bandwidth ratios not computed".into(),
        );
    }

    BenchResult {
        schema_version: BENCH_SCHEMA_VERSION,
        threads,
        thread_trials,
        per_token_overhead_s,
        load_overhead_s,
        quants,
        probe_bandwidth_bytes_per_s: probe_bw,
        converged,
        wall_s: start.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
        source: source_description(opts),
        warnings,
        batch_decode,
        conditions: None,
        context_growth: growth,
        cpu_variant: None,
    }
}

/// `(steal, total)` jiffies of all CPUs from the `cpu` line of /proc/stat.
fn cpu_times() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu_times(s.lines().next()?)
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice`: steal is the 8th
/// value; guest time is already counted in user and is left out of the total.
fn parse_cpu_times(line: &str) -> Option<(u64, u64)> {
    let mut f = line.split_whitespace();
    if f.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = f.take(8).map(|x| x.parse().ok()).collect::<Option<_>>()?;
    (v.len() == 8).then(|| (v[7], v.iter().sum()))
}

/// Stolen share of the CPU time between two `/proc/stat` readings.
fn steal_ratio((steal_a, total_a): (u64, u64), (steal_b, total_b): (u64, u64)) -> f64 {
    let total = total_b.saturating_sub(total_a);
    if total == 0 {
        return 0.0;
    }
    steal_b.saturating_sub(steal_a) as f64 / total as f64
}

/// The per-token overhead and whether the two sizes of [`CONVERGENCE_TYPE`] on the CPU agree,
/// if both were measured (`(0.0, None)` otherwise); warns when they do not agree.
fn convergence(
    quants: &[QuantBench],
    per_kv_row_s: f64,
    warnings: &mut Vec<String>,
) -> (f64, Option<bool>) {
    let sizes: Vec<&QuantBench> = quants
        .iter()
        .filter(|q| q.ggml_type == CONVERGENCE_TYPE.name() && q.backend == BenchBackend::Cpu)
        .collect();
    let smaller = sizes.iter().min_by_key(|q| q.params);
    let larger = sizes.iter().max_by_key(|q| q.params);
    match (smaller, larger) {
        (Some(s), Some(l)) if s.params < l.params => {
            let (overhead, conv) = overhead_fit(s, l, per_kv_row_s);
            if !conv {
                warnings.push(format!(
                    "{} weights/s differ by more than 15% between {} M and {} M weights: the smaller model may fit in cache, or the machine was busy",
                    CONVERGENCE_TYPE,
                    s.params / 1_000_000,
                    l.params / 1_000_000
                ));
            }
            (overhead, Some(conv))
        }
        _ => (0.0, None),
    }
}

/// The result's `source`: which models, prompt and generation lengths were measured.
fn source_description(opts: &BenchOptions) -> String {
    match &opts.bench_model {
        Some(p) => format!(
            "measured with {}, {}-token prompt, {} tokens per decode repetition",
            p.display(),
            opts.prompt_tokens,
            opts.gen_tokens
        ),
        None => format!(
            "measured: generated llama models {} wide, {} layers ({} for the second {}), {}-token prompt, {} tokens per decode repetition",
            opts.model_shape.n_embd,
            opts.model_shape.n_layers,
            opts.second_layers,
            CONVERGENCE_TYPE,
            opts.prompt_tokens,
            opts.gen_tokens
        ),
    }
}

fn label(m: &BenchModel) -> String {
    let (params, _) = m.per_token();
    format!("{} {} M weights", m.dominant_type(), params / 1_000_000)
}

fn backend_name(b: BenchBackend) -> &'static str {
    match b {
        BenchBackend::Cpu => "CPU",
        BenchBackend::Gpu => "GPU",
    }
}

/// Median, min and max of repeated rates.
pub fn stat(v: &[f64]) -> Stat {
    if v.is_empty() {
        return Stat {
            median: 0.0,
            min: 0.0,
            max: 0.0,
            samples: 0,
        };
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Stat {
        median,
        min: s[0],
        max: s[n - 1],
        samples: n as u32,
    }
}

/// The per-type figures from one model's rates.
fn derive(
    m: &BenchModel,
    backend: BenchBackend,
    load_s: f64,
    opts: &BenchOptions,
    r: &JobRates,
    probe_bw: Option<f64>,
) -> QuantBench {
    let (params, bytes) = m.per_token();
    let decode = stat(&r.decode_tokens_per_s);
    let prefill = stat(&r.prefill_tokens_per_s);
    let bw = bytes as f64 * decode.median;
    QuantBench {
        ggml_type: m.dominant_type().name().to_string(),
        backend,
        params,
        weight_bytes_per_token: bytes,
        file_bytes: m.file_bytes,
        load_s,
        prompt_tokens: opts.prompt_tokens,
        prefill_tokens_per_s: prefill.clone(),
        generated_tokens: opts.gen_tokens,
        decode_tokens_per_s: decode.clone(),
        decode_weights_per_s: params as f64 * decode.median,
        decode_bandwidth_bytes_per_s: bw,
        // The probe measures system RAM; a GPU's figure is not comparable with it.
        bandwidth_ratio: match backend {
            BenchBackend::Cpu => probe_bw.map(|p| bw / p),
            BenchBackend::Gpu => None,
        },
        prefill_flops_per_s: 2.0 * params as f64 * prefill.median,
        n_layers: m.shape.n_layers,
        n_kv_heads: m.shape.n_kv_heads,
    }
}

/// Attention FLOP per prompt token of a `prompt`-token prompt: QKᵀ and AV, `4 × layers × q_dim`
/// FLOP per earlier token, at the prompt's average position.
pub fn prefill_attention_flop_per_token(shape: &ModelShape, prompt: f64) -> f64 {
    4.0 * shape.n_layers as f64 * (shape.n_heads * shape.head_dim) as f64 * (prompt / 2.0)
}

/// The context growth from the main measurement `q` of a model of `shape` and its job's long
/// prompt of `long` tokens: the prefill attention rate from the two prompt lengths' seconds per
/// token, and decode's seconds per KV row from the two decode speeds. `None` without a
/// measurement of the long prompt; a figure is `None` when the longer context was not slower or
/// the figure is implausible (see the field docs of [`ContextGrowth`]).
pub fn fit_context_growth(
    q: &QuantBench,
    shape: &ModelShape,
    long: u32,
    r: &JobRates,
) -> Option<ContextGrowth> {
    // The fastest repetition of each: the fit takes differences of small numbers, and on a
    // shared machine noise only ever slows a repetition down.
    let long_pp = stat(&r.long_prefill_tokens_per_s).max;
    let long_tg = stat(&r.long_decode_tokens_per_s).max;
    let (short_pp, short_tg) = (q.prefill_tokens_per_s.max, q.decode_tokens_per_s.max);
    if [long_pp, long_tg, short_pp, short_tg]
        .iter()
        .any(|v| *v <= 0.0)
        || long <= q.prompt_tokens
    {
        return None;
    }
    let d_flop = prefill_attention_flop_per_token(shape, long as f64)
        - prefill_attention_flop_per_token(shape, q.prompt_tokens as f64);
    let d_prefill_s = 1.0 / long_pp - 1.0 / short_pp;
    let d_rows = shape.n_layers as f64 * shape.n_kv_heads as f64 * (long - q.prompt_tokens) as f64;
    let d_decode_s = 1.0 / long_tg - 1.0 / short_tg;
    // Plausibility: attention is never faster per FLOP than the same model's weight matrices,
    // and the benchmark model's attention at its own position is a minor part of a decoded
    // token (under [`MAX_ATTENTION_SHARE`]); a fit beyond either describes the noise of a shared
    // machine.
    let matmul_flops = 2.0 * q.params as f64 * short_pp;
    let attention_flops = (d_prefill_s > 0.0 && d_flop > 0.0)
        .then(|| d_flop / d_prefill_s)
        .filter(|f| *f <= matmul_flops);
    let per_kv_row_s = (d_decode_s > 0.0 && d_rows > 0.0)
        .then(|| d_decode_s / d_rows)
        .filter(|c| c * q.decode_kv_rows() <= MAX_ATTENTION_SHARE / short_tg);
    Some(ContextGrowth {
        ggml_type: q.ggml_type.clone(),
        n_layers: shape.n_layers,
        n_kv_heads: shape.n_kv_heads,
        q_dim: shape.n_heads * shape.head_dim,
        short_prompt_tokens: q.prompt_tokens,
        long_prompt_tokens: long,
        generated_tokens: q.generated_tokens,
        short_prefill_tokens_per_s: short_pp,
        long_prefill_tokens_per_s: long_pp,
        short_decode_tokens_per_s: short_tg,
        long_decode_tokens_per_s: long_tg,
        prefill_attention_flops_per_s: attention_flops,
        decode_s_per_kv_row: per_kv_row_s,
    })
}

/// The FLOP/s of `q`'s weight matrices in prefill: its prompt's attention (at the growth's
/// measured rate) taken out of the time, and the output matrix (evaluated for the last token
/// only) out of the FLOP. The recorded figure when there is no measured attention rate, or when
/// taking it out would leave less than half the time (a noisy fit).
pub fn net_prefill_flops(q: &QuantBench, shape: &ModelShape, g: &ContextGrowth) -> f64 {
    let (Some(rate), pp) = (
        g.prefill_attention_flops_per_s,
        q.prefill_tokens_per_s.median,
    ) else {
        return q.prefill_flops_per_s;
    };
    if pp <= 0.0 {
        return q.prefill_flops_per_s;
    }
    let per_token_s = 1.0 / pp;
    let attention_s = prefill_attention_flop_per_token(shape, q.prompt_tokens as f64) / rate;
    let output = shape.vocab_size as u64 * shape.n_embd as u64;
    let matmul_params = q.params.saturating_sub(output) as f64;
    let net_s = per_token_s - attention_s;
    if net_s < 0.5 * per_token_s || matmul_params <= 0.0 {
        return q.prefill_flops_per_s;
    }
    2.0 * matmul_params / net_s
}

/// From one type at two sizes: `t = overhead + weights / weights_per_s` solved for the overhead
/// (clamped at zero), and whether the naive weights/s of the two agree within 15 % (a smaller
/// model that fits in cache would decode faster per weight). The attention over the KV cache (at
/// `per_kv_row_s` per row, 0 when unmeasured) is taken out of each time first: it grows with the
/// layers, not with the weights (the output matrix is the same in both sizes), and left in it
/// tilts the line towards a smaller intercept.
pub fn overhead_fit(small: &QuantBench, large: &QuantBench, per_kv_row_s: f64) -> (f64, bool) {
    let net =
        |q: &QuantBench| 1.0 / q.decode_tokens_per_s.median - per_kv_row_s * q.decode_kv_rows();
    let (t_small, t_large) = (net(small), net(large));
    let dw = large.params as f64 - small.params as f64;
    let dt = t_large - t_small;
    let overhead = if dt > 0.0 && dw > 0.0 {
        let wps = dw / dt;
        (t_small - small.params as f64 / wps).max(0.0)
    } else {
        0.0
    };
    let (a, b) = (small.decode_weights_per_s, large.decode_weights_per_s);
    let converged = a > 0.0 && b > 0.0 && (a - b).abs() / a.max(b) <= 0.15;
    (overhead, converged)
}

/// The smallest CPU load time measured: an upper bound of the fixed cost of loading (context and
/// buffers) when the file is already in the page cache; the predictor adds bytes / disk rate for a
/// cold load. Types that llama.cpp repacks at load (Q4_0, Q4_K on x86) take longer: see each
/// type's `load_s`.
fn load_overhead(quants: &[QuantBench]) -> f64 {
    quants
        .iter()
        .filter(|q| q.backend == BenchBackend::Cpu)
        .map(|q| q.load_s)
        .reduce(f64::min)
        .unwrap_or(0.0)
}

/// The one-minute load average, where /proc has it.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Peak resident set size of this process (`VmHWM`), where /proc has it.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The real engine: llama.cpp through `llama-cpp-2`.
pub struct LlamaEngine {
    backend: &'static llama_cpp_2::llama_backend::LlamaBackend,
    cpu_variant: CpuVariant,
}

impl LlamaEngine {
    /// Initialise llama.cpp (or take the process's backend when it already is): choose and
    /// check the CPU kernels (see [`crate::llama::cpu`]).
    pub fn new(cfg: &llama::BackendConfig) -> Result<LlamaEngine, BenchError> {
        let b = llama::init(cfg).map_err(|e| match e {
            LlamaError::CpuVariant(v) => BenchError::Unsupported(v),
            e => BenchError::Llama(e),
        })?;
        Ok(LlamaEngine {
            backend: &b.llama,
            cpu_variant: b.cpu_variant.clone(),
        })
    }
}

/// Tokens of the warm-up prompt and generation before measuring.
const WARMUP_PROMPT: u32 = 16;
const WARMUP_GEN: u32 = 2;
/// Special tokens of generated models are skipped when making up prompts.
const PROMPT_SKIP: i32 = 8;
/// Repetitions that measure prefill (the rest measure decode only).
const PREFILL_REPS: u32 = 2;

/// The long prompt of the context growth: three times the main prompt. Its attention is 3 % of
/// the benchmark model's FLOP per token in prefill and about a third of a decoded token's time
/// after it: the decode figure stands well out of the noise, the prefill one only on a quiet
/// machine (its fit is then rejected as implausible more often than not, and the F16 matrices'
/// rate stands in). 512 tokens would double the prefill signal for another second of the 10 s
/// budget. It runs in one batch, so the difference to the 128-token prompt also holds any change
/// of the matrices' efficiency with the batch size, part of what a longer prompt costs.
pub const LONG_PROMPT_TOKENS: u32 = 384;

/// The most of the benchmark model's decoded token that its own attention (at its position) may
/// take in the context growth's fit: beyond, the fit is rejected as noise. Measured on an idle
/// 2-core Xeon VM: 15–20 %.
const MAX_ATTENTION_SHARE: f64 = 0.35;

/// Decode repetitions after the long prompt (its prefill is measured once).
const LONG_REPS: u32 = 2;

impl LlamaEngine {
    /// The job's long prompt prefilled into a fresh context, and decode after it [`LONG_REPS`]
    /// times: the context growth's second point. Returns the prefill and decode tokens/s.
    fn long_prompt(
        &self,
        lm: &llama::LoadedModel,
        job: &Job,
    ) -> Result<(Vec<f64>, Vec<f64>), BenchError> {
        let n = job.long_prompt_tokens;
        let mut s = lm
            .session(self.backend, job.threads, n + job.gen_tokens + 16, n)
            .map_err(BenchError::Llama)?;
        let prompt = llama::prompt_tokens(n, lm.n_vocab(), PROMPT_SKIP);
        let (mut prefill, mut decode) = (Vec::new(), Vec::new());
        for rep in 0..LONG_REPS {
            // Prefill in the first repetition only (a second costs a second of the budget);
            // later ones rewind to the end of the prompt.
            if rep == 0 {
                let p_s = s.prefill(&prompt).map_err(BenchError::Llama)?;
                if p_s > 0.0 {
                    prefill.push(n as f64 / p_s);
                }
            } else {
                s.rewind().map_err(BenchError::Llama)?;
            }
            let g_s = s.generate(job.gen_tokens).map_err(BenchError::Llama)?;
            if g_s > 0.0 {
                decode.push(job.gen_tokens as f64 / g_s);
            }
        }
        Ok((prefill, decode))
    }

    /// Decode steps with each of the job's batch sizes: one context holding the largest batch,
    /// the sequences sharing a [`BATCH_PROMPT_TOKENS`] prompt.
    fn batch_steps(
        &self,
        lm: &llama::LoadedModel,
        job: &Job,
    ) -> Result<Vec<(u32, Vec<f64>)>, BenchError> {
        let largest = job.batch_sizes.iter().copied().max().unwrap_or(1).max(1);
        let n_ctx = BATCH_PROMPT_TOKENS + largest * (BATCH_STEPS + 1) + 16;
        let n_batch = BATCH_PROMPT_TOKENS.max(largest);
        let mut ms = lm
            .multi_session(self.backend, job.threads, n_ctx, n_batch, largest)
            .map_err(BenchError::Llama)?;
        let prompt = llama::prompt_tokens(BATCH_PROMPT_TOKENS, lm.n_vocab(), PROMPT_SKIP);
        let mut out = Vec::new();
        for &b in &job.batch_sizes {
            let steps = ms
                .batched_decode_steps(&prompt, b, BATCH_STEPS)
                .map_err(BenchError::Llama)?;
            out.push((b, steps));
        }
        Ok(out)
    }
}

impl Engine for LlamaEngine {
    fn run(
        &self,
        model: &Path,
        gpu_layers: u32,
        jobs: &[Job],
    ) -> Result<(f64, Vec<JobRates>), BenchError> {
        let lm = llama::load(self.backend, model, gpu_layers).map_err(BenchError::Llama)?;
        let mut out = Vec::with_capacity(jobs.len());
        for job in jobs {
            let prompt_len = job.prompt_tokens.max(WARMUP_PROMPT);
            let n_ctx = prompt_len + job.gen_tokens + WARMUP_GEN + 16;
            let mut s = lm
                .session(self.backend, job.threads, n_ctx, prompt_len)
                .map_err(BenchError::Llama)?;
            let prompt = llama::prompt_tokens(prompt_len, lm.n_vocab(), PROMPT_SKIP);
            // Warm-up: touch every weight (page faults, repacking, thread pool start), discarded.
            s.prefill(&prompt[..WARMUP_PROMPT as usize])
                .map_err(BenchError::Llama)?;
            s.generate(WARMUP_GEN).map_err(BenchError::Llama)?;
            let mut rates = JobRates::default();
            let started = Instant::now();
            for rep in 0..job.max_reps.max(1) {
                // Prefill is measured in the first PREFILL_REPS repetitions only: it is steadier
                // than decode and costs more per repetition; later ones rewind the KV cache to the
                // end of the prompt, so every decode runs at the same context length.
                let spent = started.elapsed().as_secs_f64();
                let last_prefill = rates
                    .prefill_tokens_per_s
                    .last()
                    .map_or(0.0, |r| job.prompt_tokens as f64 / r);
                let prefill_fits = rep == 0 || spent + last_prefill < job.budget_s;
                if job.measure_prefill && rep < PREFILL_REPS && prefill_fits {
                    let p_s = s.prefill(&prompt).map_err(BenchError::Llama)?;
                    if p_s > 0.0 {
                        rates
                            .prefill_tokens_per_s
                            .push(job.prompt_tokens as f64 / p_s);
                    }
                } else if rep == 0 {
                    // Decode-only job (thread trials): the full prompt once, not measured.
                    s.prefill(&prompt).map_err(BenchError::Llama)?;
                } else {
                    // Same context length as a measured repetition, without paying for prefill.
                    s.rewind().map_err(BenchError::Llama)?;
                }
                // Past the deadline a repetition stops early: a loaded machine must not stretch
                // the run far beyond its budget. Fewer tokens still give a rate.
                let deadline = started + Duration::from_secs_f64(job.budget_s.max(0.0));
                let (n, g_s) = s
                    .generate_until(job.gen_tokens, Some(deadline))
                    .map_err(BenchError::Llama)?;
                if g_s > 0.0 {
                    rates.decode_tokens_per_s.push(n as f64 / g_s);
                }
                let done = rep + 1;
                if done >= job.min_reps.max(1) {
                    let spent = started.elapsed().as_secs_f64();
                    // A decode-only repetition costs about the last one; stop before overrunning.
                    let next = g_s + 0.01;
                    let stable = done >= 4 && stat(&rates.decode_tokens_per_s).spread() < 0.04;
                    if stable || spent + next > job.budget_s {
                        break;
                    }
                }
            }
            drop(s);
            if job.long_prompt_tokens > 0 {
                let (prefill, decode) = self.long_prompt(&lm, job)?;
                rates.long_prefill_tokens_per_s = prefill;
                rates.long_decode_tokens_per_s = decode;
            }
            if !job.batch_sizes.is_empty() {
                rates.batch_step_s = self.batch_steps(&lm, job)?;
            }
            out.push(rates);
        }
        Ok((lm.load_s, out))
    }

    fn cpu_variant(&self) -> Option<CpuVariant> {
        Some(self.cpu_variant.clone())
    }

    fn gpu_available(&self) -> bool {
        cfg!(any(
            feature = "cuda",
            feature = "vulkan",
            feature = "metal",
            feature = "rocm"
        )) && llama::gpu_offload_available(self.backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_read_from_proc_stat() {
        let a = parse_cpu_times("cpu  100 0 50 800 10 0 5 20 0 0").unwrap();
        assert_eq!(a, (20, 985));
        let b = parse_cpu_times("cpu  200 0 100 1600 20 0 5 60 7 0").unwrap();
        assert!((steal_ratio(a, b) - 40.0 / 1000.0).abs() < 1e-12);
        assert_eq!(parse_cpu_times("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(parse_cpu_times("cpu 1 2 3"), None);
        assert_eq!(steal_ratio(a, a), 0.0);
    }
}
