//! The benchmark run: pick the thread count, measure each model, derive the figures the predictor
//! scales from, and assemble the `BenchResult`.
//!
//! The measuring itself sits behind [`Engine`], so the arithmetic here (medians, weights per
//! second, bandwidth ratios, the two-size overhead fit, thread choice) is tested with a fake engine;
//! [`LlamaEngine`] is the real one.

use std::path::Path;
use std::time::{Duration, Instant};

use super::models::{
    self, BenchModel, ModelError, COLD_LOAD_TYPE, CONVERGENCE_TYPE, DECODE_MODEL_BYTES,
    DEFAULT_TYPES, PREFILL_LAYERS, UNGROUPED_TYPE, WIDE_HEAD_DECODE_TYPE,
};
use super::sched::{self, OnCpu, Samples};
use crate::gguf::{prefill_weights, GgmlType, ModelShape};
use crate::llama::cpu::VariantError;
use crate::llama::{self, LlamaError};
use crate::profile::HardwareProfile;
use crate::progress::Progress;
use crate::types::bench::{
    BatchDecode, BatchStep, BenchBackend, BenchConditions, BenchResult, ColdLoad, ContextGrowth,
    DecodeAttention, DeepDecodePoint, QuantBench, Stat, ThreadTrial, WidthPoint,
    BENCH_SCHEMA_VERSION,
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
    /// Shape of the generated prefill models (tests use a tiny one).
    pub model_shape: crate::gguf::ModelShape,
    /// Weight bytes each type's decode model reads per token, at least (its layers are added to
    /// `model_shape` until it does); 0: decode is measured on the prefill model.
    pub decode_model_bytes: u64,
    /// Also measure [`CONVERGENCE_TYPE`] at [`models::width_shapes`] of `model_shape`: half its
    /// width (the width curve of prefill, the context growth) and twice its depth (the fixed cost
    /// per prompt).
    pub width_curve: bool,
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
            gen_tokens: 8,
            time_budget_s: 6.5,
            gpu: true,
            llama_logs: false,
            model_shape: models::bench_shape(PREFILL_LAYERS),
            decode_model_bytes: DECODE_MODEL_BYTES,
            width_curve: true,
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
    /// Repetitions that measure prefill, at most (the rest measure decode only).
    pub prefill_reps: u32,
    pub gen_tokens: u32,
    pub min_reps: u32,
    pub max_reps: u32,
    /// Stop repeating once `min_reps` are done and this much time has gone, or the figures agree.
    pub budget_s: f64,
    /// After the repetitions, time decode steps with this many sequences in one batch each.
    pub batch_sizes: Vec<u32>,
    /// After the repetitions, prefill a prompt of this many tokens (the context growth of
    /// prefill); 0: none.
    pub long_prompt_tokens: u32,
    /// After the repetitions, decode with this many tokens in the KV cache (restored, see
    /// [`Session::restore_state`](crate::llama::Session::restore_state)): the context growth of
    /// decode; 0: none.
    pub deep_context_tokens: u32,
}

/// Raw rates of one job, one entry per repetition (warm-up excluded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRates {
    pub prefill_tokens_per_s: Vec<f64>,
    pub decode_tokens_per_s: Vec<f64>,
    /// Per batch size of the job: the seconds of each timed step.
    pub batch_step_s: Vec<(u32, Vec<f64>)>,
    /// Prefill of the long prompt (empty without `long_prompt_tokens`).
    pub long_prefill_tokens_per_s: Vec<f64>,
    /// Decode at the deep context (empty without `deep_context_tokens`).
    pub deep_decode_tokens_per_s: Vec<f64>,
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
    /// Load `model` with its pages dropped from the page cache first (synced, then
    /// `posix_fadvise(DONTNEED)`): seconds, or `None` when they could not be dropped.
    fn cold_load(&self, model: &Path) -> Result<Option<f64>, BenchError> {
        let dropped = std::fs::File::open(model)
            .is_ok_and(|f| f.sync_all().is_ok() && crate::probe::disk::drop_cached_pages(&f));
        if !dropped {
            return Ok(None);
        }
        Ok(Some(self.run(model, 0, &[])?.0))
    }
    /// Whether a GPU can take the layers.
    fn gpu_available(&self) -> bool {
        false
    }
    /// Which of llama.cpp's CPU kernel variants runs (`None` for engines that are not llama.cpp).
    fn cpu_variant(&self) -> Option<CpuVariant> {
        None
    }
    /// How long the threads were on a CPU in the timed repetitions so far (`None`: not known).
    fn on_cpu(&self) -> Option<OnCpu> {
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
    let cold_load =
        if opts.bench_model.is_none() && backends.iter().any(|(b, _)| *b == BenchBackend::Cpu) {
            measure_cold_load(&run, &models)?
        } else {
            None
        };
    let on_cpu = engine.on_cpu();
    let conditions = load_at_start.map(|load| BenchConditions {
        load_average_1m: load,
        logical_cores: profile.cpu.logical_cores,
        steal_ratio: match (cpu_at_start, cpu_times()) {
            (Some(a), Some(b)) => steal_ratio(a, b),
            _ => 0.0,
        },
        on_cpu_share: on_cpu.and_then(|o| o.share()),
        descheduled_repetitions: on_cpu.map_or(0, |o| o.descheduled),
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
    result.cold_load = cold_load;
    result.cpu_variant = engine.cpu_variant().map(Box::new);
    if let Some(c) = conditions.filter(|c| c.steal_ratio >= 0.02) {
        result.warnings.push(format!(
            "the hypervisor took {:.0} % of the CPU time during the benchmark: predictions carry a wider band",
            c.steal_ratio * 100.0
        ));
    }
    if let Some(c) = conditions {
        if c.off_cpu_share() >= 0.05 {
            result.warnings.push(format!(
                "the benchmark's threads were off the CPU for {:.0} % of the timed wall time (other work on the machine?); {} repetition(s) discarded for it: predictions carry a wider band",
                c.off_cpu_share() * 100.0,
                c.descheduled_repetitions
            ));
        } else if c.descheduled_repetitions > 0 {
            result.warnings.push(format!(
                "{} repetition(s) discarded: the benchmark's threads were off the CPU for more than a tenth of them",
                c.descheduled_repetitions
            ));
        }
    }
    Ok(result)
}

/// What every measuring step needs: the engine, the options and where progress goes.
struct Run<'a> {
    engine: &'a dyn Engine,
    opts: &'a BenchOptions,
    progress: &'a dyn Progress,
}

/// One type's models: prefill is measured on `prefill`, decode on `decode` (on `prefill` when
/// there is no separate one: a user's model, or `decode_model_bytes` 0).
struct TypeModels {
    prefill: BenchModel,
    decode: Option<BenchModel>,
}

impl TypeModels {
    fn decode_model(&self) -> &BenchModel {
        self.decode.as_ref().unwrap_or(&self.prefill)
    }
}

/// The models a run measures: one or two per type (or the one `bench_model`), and the width
/// curve's models of [`CONVERGENCE_TYPE`] when asked for.
struct PreparedModels {
    entries: Vec<TypeModels>,
    width: Vec<BenchModel>,
    /// The half-width growth model with heads of [`models::WIDE_HEAD_DIM`] (prefill's attention
    /// rate at a second head size).
    wide_heads: Option<BenchModel>,
}

impl PreparedModels {
    /// Every model.
    fn iter(&self) -> impl Iterator<Item = &BenchModel> {
        self.entries
            .iter()
            .flat_map(|e| std::iter::once(&e.prefill).chain(e.decode.iter()))
            .chain(self.width.iter())
            .chain(self.wide_heads.iter())
    }

    fn count(&self) -> usize {
        self.iter().count()
    }
}

/// Load `bench_model`, or write (or find cached) the generated models; notes the writing time
/// when anything was written.
fn prepare_models(
    opts: &BenchOptions,
    progress: &dyn Progress,
) -> Result<PreparedModels, BenchError> {
    let write_start = Instant::now();
    let mut entries: Vec<TypeModels> = Vec::new();
    let mut width: Vec<BenchModel> = Vec::new();
    let mut wide_heads: Option<BenchModel> = None;
    let cached = |shape: &ModelShape, t: GgmlType| {
        models::ensure_cached(&opts.cache_dir, &models::spec_for(shape, t), progress)
            .map_err(BenchError::Model)
    };
    match &opts.bench_model {
        Some(path) => entries.push(TypeModels {
            prefill: models::from_file(path).map_err(BenchError::Model)?,
            decode: None,
        }),
        None => {
            let types = if opts.types.is_empty() {
                DEFAULT_TYPES.to_vec()
            } else {
                opts.types.clone()
            };
            for t in &types {
                let shape = &opts.model_shape;
                let deeper = models::decode_shape(shape, *t, opts.decode_model_bytes);
                // One layer short (F16's two 2048-wide layers read 214 MB): one model of the
                // decode depth serves both, which costs less than a second load and warm-up.
                let entry = if deeper.n_layers > shape.n_layers + 1 {
                    TypeModels {
                        prefill: cached(shape, *t)?,
                        decode: Some(cached(&deeper, *t)?),
                    }
                } else {
                    TypeModels {
                        prefill: cached(&deeper, *t)?,
                        decode: None,
                    }
                };
                entries.push(entry);
            }
            if opts.width_curve && types.contains(&CONVERGENCE_TYPE) {
                for s in models::width_shapes(&opts.model_shape) {
                    width.push(cached(&s, CONVERGENCE_TYPE)?);
                }
                if let Some(s) = models::wide_head_shape(&opts.model_shape) {
                    wide_heads = Some(cached(&s, CONVERGENCE_TYPE)?);
                }
            }
        }
    }
    let models = PreparedModels {
        entries,
        width,
        wide_heads,
    };
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
    entries: &[TypeModels],
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
            let first = &entries[0].prefill;
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
                    prefill_reps: 0,
                    gen_tokens: opts.gen_tokens,
                    min_reps: 2,
                    max_reps: 2,
                    budget_s: trial_share / candidates.len() as f64,
                    batch_sizes: Vec::new(),
                    long_prompt_tokens: 0,
                    deep_context_tokens: 0,
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

/// Measure every model on every backend and derive the per-type figures; warns about each wide
/// decode spread.
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
    // The context growth's model, its figures and rates; the fit waits for the per-prompt cost.
    let mut growth_input: Option<(QuantBench, &BenchModel, JobRates)> = None;
    // The convergence type's prefill at two depths: the per-prompt cost.
    let mut depth_pair: Vec<PrefillPoint> = Vec::new();
    // Per CPU entry of `quants`: the model its prefill was measured on, and that model's decode
    // rate.
    let mut prefill_models: Vec<(usize, &BenchModel, f64)> = Vec::new();
    let mut batches = Vec::new();
    let mut width_runs: Vec<(&BenchModel, JobRates)> = Vec::new();
    let mut deep_decode: Vec<DeepDecodePoint> = Vec::new();
    // The context growth on the narrowest width model: its attention is the largest share of its
    // token (about a third of a prompt token at the long prompt and a fifth of a decoded one, on
    // a 2-core Xeon VM), so that the fit stands out of the noise.
    let growth_width = models
        .width
        .iter()
        .enumerate()
        .filter(|(_, m)| m.shape.n_embd < opts.model_shape.n_embd)
        .min_by_key(|(_, m)| m.shape.n_embd)
        .map(|(i, _)| i);
    // The width model at the prefill models' own width (more layers): the depth pair's second.
    let depth_model = models
        .width
        .iter()
        .find(|m| m.shape.n_embd == opts.model_shape.n_embd);
    for (backend, gpu_layers) in backends {
        let cpu = *backend == BenchBackend::Cpu;
        for e in &models.entries {
            // Without width models, the context growth is measured on the convergence type's
            // prefill model.
            let growth_model = cpu
                && opts.bench_model.is_none()
                && growth_width.is_none()
                && e.prefill.dominant_type() == CONVERGENCE_TYPE;
            let reference = cpu && is_width_reference(opts, &e.prefill);
            // The prefill model: the whole measurement when it is also the decode model.
            let single_deep = cpu && e.decode.is_none() && attention_pair(opts, &e.prefill);
            let mut job = match (&e.decode, reference) {
                (None, _) => Job {
                    batch_sizes: opts.batch_sizes.clone(),
                    deep_context_tokens: if single_deep { DEEP_CONTEXT_TOKENS } else { 0 },
                    ..main_job(opts, threads, budget.next_share())
                },
                (Some(_), true) => depth_job(opts, threads, budget.next_share()),
                (Some(_), false) => prefill_job(opts, threads, budget.next_share()),
            };
            if reference {
                job.prefill_reps = DEPTH_PREFILL_REPS;
            }
            if growth_model {
                job.long_prompt_tokens = LONG_PROMPT_TOKENS;
            }
            let what = if e.decode.is_some() { " prefill" } else { "" };
            progress.phase(
                &format!(
                    "measuring {}{what} ({})",
                    label(&e.prefill),
                    backend_name(*backend)
                ),
                None,
            );
            let (load_s, mut rates) = engine.run(&e.prefill.path, *gpu_layers, &[job])?;
            progress.finish();
            let rp = rates.remove(0);
            if single_deep {
                deep_decode.extend(deep_point(&e.prefill, opts.prompt_tokens, opts, &rp));
            }
            let qp = derive(&e.prefill, *backend, load_s, opts, &rp, probe_bw);
            if cpu {
                prefill_models.push((quants.len(), &e.prefill, qp.decode_tokens_per_s.median));
            }
            if growth_model {
                growth_input = Some((qp.clone(), &e.prefill, rp.clone()));
            }
            if reference {
                width_runs.push((&e.prefill, rp.clone()));
                depth_pair.extend(PrefillPoint::of(&e.prefill, opts.prompt_tokens, &rp));
                // The depth model right after: the pair's difference is small, and the
                // machine's speed drifts over seconds.
                if let Some(m) = depth_model {
                    progress.phase(&format!("measuring {} prefill (CPU)", label(m)), None);
                    let job = depth_job(opts, threads, budget.next_share());
                    let (_, mut rates) = engine.run(&m.path, 0, &[job])?;
                    progress.finish();
                    depth_pair.extend(PrefillPoint::of(m, opts.prompt_tokens, &rates.remove(0)));
                }
            }
            let (q, decode_rates) = match &e.decode {
                None => (qp, rp),
                Some(d) => {
                    progress.phase(
                        &format!("measuring {} decode ({})", label(d), backend_name(*backend)),
                        None,
                    );
                    let deep = cpu && attention_pair(opts, d);
                    let job = Job {
                        batch_sizes: opts.batch_sizes.clone(),
                        deep_context_tokens: if deep { DEEP_CONTEXT_TOKENS } else { 0 },
                        ..decode_job(opts, threads, budget.next_share())
                    };
                    let (load_s, mut rates) = engine.run(&d.path, *gpu_layers, &[job])?;
                    progress.finish();
                    let rd = rates.remove(0);
                    if deep {
                        deep_decode.extend(deep_point(d, DECODE_PROMPT_TOKENS, opts, &rd));
                    }
                    // Decode from the decode model, prefill from the prefill model.
                    let q = QuantBench {
                        decode_context_tokens: Some(DECODE_PROMPT_TOKENS),
                        prompt_tokens: qp.prompt_tokens,
                        prefill_tokens_per_s: qp.prefill_tokens_per_s,
                        prefill_flops_per_s: qp.prefill_flops_per_s,
                        prefill_n_embd: qp.prefill_n_embd,
                        ..derive(d, *backend, load_s, opts, &rd, probe_bw)
                    };
                    (q, rd)
                }
            };
            if let Some(b) = derive_batches(e.decode_model(), *backend, &decode_rates) {
                batches.push(b);
            }
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
    for (i, m) in models.width.iter().enumerate() {
        if depth_model.is_some_and(|d| d.path == m.path) {
            continue;
        }
        progress.phase(
            &format!("measuring {} ({} wide)", label(m), m.shape.n_embd),
            None,
        );
        let mut job = prefill_job(opts, threads, budget.next_share());
        if growth_width == Some(i) {
            job.long_prompt_tokens = LONG_PROMPT_TOKENS;
        }
        let (_, mut rates) = engine.run(&m.path, 0, &[job])?;
        progress.finish();
        let r = rates.remove(0);
        if growth_width == Some(i) {
            let q = derive(m, BenchBackend::Cpu, 0.0, opts, &r, probe_bw);
            growth_input = Some((q, m, r.clone()));
        }
        width_runs.push((m, r));
    }
    // Prefill's attention at the second head size: the same prompts on the half-width model with
    // heads of WIDE_HEAD_DIM (fitted below, once the per-prompt cost is known).
    let mut wide_input: Option<(QuantBench, &BenchModel, JobRates)> = None;
    if let Some(m) = &models.wide_heads {
        progress.phase(
            &format!(
                "measuring {} ({}-dimension heads)",
                label(m),
                m.shape.head_dim
            ),
            None,
        );
        let job = Job {
            long_prompt_tokens: LONG_PROMPT_TOKENS,
            ..prefill_job(opts, threads, budget.next_share())
        };
        let (_, mut rates) = engine.run(&m.path, 0, &[job])?;
        progress.finish();
        let r = rates.remove(0);
        let q = derive(m, BenchBackend::Cpu, 0.0, opts, &r, probe_bw);
        wide_input = Some((q, m, r));
    }
    // The attention fit and the per-prompt cost each enter the other's: three rounds settle them
    // (each shrinks the other's error by a factor of about 25 on the benchmark's models).
    let mut per_prompt_s = None;
    let mut growth = None;
    for _ in 0..3 {
        growth = growth_input
            .as_ref()
            .and_then(|input| growth_fit(input, per_prompt_s.unwrap_or(0.0)));
        per_prompt_s = per_prompt_fit(&depth_pair, growth.as_ref());
    }
    let c0 = per_prompt_s.unwrap_or(0.0);
    let growth_wide_heads = wide_input.as_ref().and_then(|input| growth_fit(input, c0));
    for (i, m, tg) in &prefill_models {
        let q = &quants[*i];
        let point = PrefillPoint {
            model: m,
            prompt: q.prompt_tokens,
            tokens_per_s: q.prefill_tokens_per_s.max,
            decode_tps: *tg,
        };
        if let Some(f) = point.flops(c0, growth.as_ref()) {
            quants[*i].prefill_flops_per_s = f;
        }
    }
    let mut width_curve: Vec<WidthPoint> = width_runs
        .iter()
        .filter_map(|(m, r)| width_point(m, opts.prompt_tokens, r, c0, growth.as_ref()))
        .collect();
    width_curve.sort_by_key(|p| p.n_embd);
    let decode_attention = fit_decode_attention(&deep_decode);
    Ok(Measured {
        quants,
        batches,
        growth,
        growth_wide_heads,
        deep_decode,
        decode_attention,
        width_curve,
        prefill_s_per_prompt: per_prompt_s,
    })
}

/// The context growth of a growth model's measurement (its figures, the model, its job's rates),
/// with the fixed cost `per_prompt_s` and the model's once-per-prompt matrices taken out of both
/// prompt lengths (what each prompt costs whatever its length).
fn growth_fit(
    (q, m, r): &(QuantBench, &BenchModel, JobRates),
    per_prompt_s: f64,
) -> Option<ContextGrowth> {
    let point = PrefillPoint {
        model: m,
        prompt: q.prompt_tokens,
        tokens_per_s: q.prefill_tokens_per_s.max,
        decode_tps: q.decode_tokens_per_s.median,
    };
    fit_context_growth(
        q,
        &m.shape,
        LONG_PROMPT_TOKENS,
        r,
        per_prompt_s + point.once_s(),
    )
}

/// The deep-decode point of model `m` whose job decoded after `short_context` tokens and at
/// [`DEEP_CONTEXT_TOKENS`]; `None` without both.
fn deep_point(
    m: &BenchModel,
    short_context: u32,
    opts: &BenchOptions,
    r: &JobRates,
) -> Option<DeepDecodePoint> {
    if r.deep_decode_tokens_per_s.is_empty() || r.decode_tokens_per_s.is_empty() {
        return None;
    }
    let half_gen = f64::from(opts.gen_tokens) / 2.0;
    Some(DeepDecodePoint {
        ggml_type: m.dominant_type().name().to_string(),
        n_layers: m.shape.n_layers,
        n_heads: m.shape.n_heads,
        n_kv_heads: m.shape.n_kv_heads,
        head_dim: m.shape.head_dim,
        short_position: f64::from(short_context) + half_gen,
        deep_position: f64::from(DEEP_CONTEXT_TOKENS) + half_gen,
        short_tokens_per_s: stat(&r.decode_tokens_per_s).median,
        deep_tokens_per_s: stat(&r.deep_decode_tokens_per_s),
    })
}

/// Whether `d` is one of the attention's decode models (the convergence type's, the ungrouped
/// type's and the wide-head type's), which also decode at [`DEEP_CONTEXT_TOKENS`]: generated models with the width curve
/// on (the full benchmark).
fn attention_pair(opts: &BenchOptions, d: &BenchModel) -> bool {
    opts.width_curve
        && opts.bench_model.is_none()
        && [CONVERGENCE_TYPE, UNGROUPED_TYPE, WIDE_HEAD_DECODE_TYPE].contains(&d.dominant_type())
}

/// Whether `m` is the width curve's point at the prefill models' own width: the convergence
/// type's prefill model, when the curve is measured.
fn is_width_reference(opts: &BenchOptions, m: &BenchModel) -> bool {
    opts.width_curve && opts.bench_model.is_none() && m.dominant_type() == CONVERGENCE_TYPE
}

/// llama.cpp's load of the [`COLD_LOAD_TYPE`] prefill model with its pages dropped from the page
/// cache, then again from the cache right after; `None` without that model or when its pages
/// could not be dropped.
fn measure_cold_load(run: &Run, models: &PreparedModels) -> Result<Option<ColdLoad>, BenchError> {
    let Some(m) = models
        .entries
        .iter()
        .map(|e| &e.prefill)
        .find(|m| m.dominant_type() == COLD_LOAD_TYPE)
    else {
        return Ok(None);
    };
    run.progress
        .phase(&format!("measuring a cold load of {}", label(m)), None);
    let cold = run.engine.cold_load(&m.path)?;
    let (warm_load_s, _) = run.engine.run(&m.path, 0, &[])?;
    run.progress.finish();
    Ok(cold.map(|cold_load_s| ColdLoad {
        ggml_type: COLD_LOAD_TYPE.name().to_string(),
        file_bytes: m.file_bytes,
        cold_load_s,
        warm_load_s,
    }))
}

/// What [`measure_models`] found: one entry per type and backend, the batched-decode curves, the
/// context growth when the long prompt ran, the width curve and the fixed cost per prompt.
struct Measured {
    quants: Vec<QuantBench>,
    batches: Vec<BatchDecode>,
    growth: Option<ContextGrowth>,
    growth_wide_heads: Option<ContextGrowth>,
    deep_decode: Vec<DeepDecodePoint>,
    decode_attention: Option<DecodeAttention>,
    width_curve: Vec<WidthPoint>,
    prefill_s_per_prompt: Option<f64>,
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

/// The measuring job of a model that serves prefill and decode: the full prompt, prefill
/// measured, up to 12 repetitions.
fn main_job(opts: &BenchOptions, threads: u32, share: f64) -> Job {
    Job {
        threads,
        prompt_tokens: opts.prompt_tokens,
        measure_prefill: true,
        prefill_reps: PREFILL_REPS,
        gen_tokens: opts.gen_tokens,
        min_reps: 2,
        max_reps: 12,
        budget_s: share,
        batch_sizes: Vec::new(),
        long_prompt_tokens: 0,
        deep_context_tokens: 0,
    }
}

/// The job of a prefill model (and of a width-curve model): the prompt [`PREFILL_REPS`] times,
/// each followed by a short decode (whose rate prices the once-per-prompt matrices).
fn prefill_job(opts: &BenchOptions, threads: u32, share: f64) -> Job {
    Job {
        min_reps: 1,
        max_reps: PREFILL_REPS,
        ..main_job(opts, threads, share)
    }
}

/// The job of a decode model: a short prompt, not measured (on the large model a full prompt
/// would cost more than the decode), then decode repetitions.
fn decode_job(opts: &BenchOptions, threads: u32, share: f64) -> Job {
    Job {
        prompt_tokens: DECODE_PROMPT_TOKENS,
        measure_prefill: false,
        min_reps: 2,
        max_reps: 8,
        ..main_job(opts, threads, share)
    }
}

/// Prefill repetitions of either model of the depth pair (the convergence type's prefill model
/// and the depth model): one more, since the per-prompt cost is a small difference.
const DEPTH_PREFILL_REPS: u32 = PREFILL_REPS + 1;

/// The job of a model of the depth pair.
fn depth_job(opts: &BenchOptions, threads: u32, share: f64) -> Job {
    Job {
        max_reps: DEPTH_PREFILL_REPS,
        prefill_reps: DEPTH_PREFILL_REPS,
        ..prefill_job(opts, threads, share)
    }
}

/// The saved KV cache of `tokens` prompt tokens on `model` (next to it, in the benchmark cache).
pub fn deep_state_path(model: &Path, tokens: u32) -> std::path::PathBuf {
    model.with_extension(format!("kv{tokens}.state"))
}

/// Tokens in the KV cache while a decode model's repetitions are timed.
pub const DECODE_PROMPT_TOKENS: u32 = 16;

/// The result: the load overhead, the remaining warnings and the description of what was
/// measured. `start` is when measuring began (the wall time's origin).
fn assemble_result(
    opts: &BenchOptions,
    start: Instant,
    threads: u32,
    thread_trials: Vec<ThreadTrial>,
    measured: Measured,
    probe_bw: Option<f64>,
    warnings: Vec<String>,
) -> BenchResult {
    let Measured {
        quants,
        batches: batch_decode,
        growth,
        growth_wide_heads,
        deep_decode,
        decode_attention,
        width_curve,
        prefill_s_per_prompt,
    } = measured;
    let load_overhead_s = load_overhead(&quants);

    BenchResult {
        schema_version: BENCH_SCHEMA_VERSION,
        threads,
        thread_trials,
        per_token_overhead_s: 0.0,
        load_overhead_s,
        quants,
        probe_bandwidth_bytes_per_s: probe_bw,
        converged: None,
        wall_s: start.elapsed().as_secs_f64(),
        peak_rss_bytes: peak_rss_bytes(),
        source: source_description(opts),
        warnings,
        batch_decode,
        conditions: None,
        context_growth: growth,
        context_growth_wide_heads: growth_wide_heads,
        deep_decode,
        decode_attention,
        cpu_variant: None,
        width_curve,
        prefill_s_per_prompt,
        cold_load: None,
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
            "measured: generated llama models {} wide, prefill on {} layers with a {}-token prompt, decode on as many layers as read {} MB per token, {} tokens per decode repetition{}",
            opts.model_shape.n_embd,
            opts.model_shape.n_layers,
            opts.prompt_tokens,
            opts.decode_model_bytes / 1_000_000,
            opts.gen_tokens,
            if opts.width_curve {
                format!(", {CONVERGENCE_TYPE} also at half the width and at twice the depth")
            } else {
                String::new()
            }
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
    let point = PrefillPoint {
        model: m,
        prompt: opts.prompt_tokens,
        tokens_per_s: prefill.max,
        decode_tps: decode.median,
    };
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
        prefill_flops_per_s: point.flops(0.0, None).unwrap_or(0.0),
        n_layers: m.shape.n_layers,
        n_heads: m.shape.n_heads,
        n_kv_heads: m.shape.n_kv_heads,
        head_dim: m.shape.head_dim,
        decode_context_tokens: None,
        prefill_n_embd: Some(m.shape.n_embd),
    }
}

/// One prefill measurement of a benchmark model: a `prompt`-token prompt at `tokens_per_s` (the
/// fastest repetition: on a shared machine noise only slows one down), the model decoding at
/// `decode_tps`.
struct PrefillPoint<'a> {
    model: &'a BenchModel,
    prompt: u32,
    tokens_per_s: f64,
    decode_tps: f64,
}

impl<'a> PrefillPoint<'a> {
    fn of(model: &'a BenchModel, prompt: u32, r: &JobRates) -> Option<PrefillPoint<'a>> {
        let p = PrefillPoint {
            model,
            prompt,
            tokens_per_s: stat(&r.prefill_tokens_per_s).max,
            decode_tps: stat(&r.decode_tokens_per_s).median,
        };
        (p.tokens_per_s > 0.0 && p.decode_tps > 0.0).then_some(p)
    }

    /// Weights a prompt token is multiplied by ([`crate::gguf::TensorSummary::prefill_use`]).
    fn token_weights(&self) -> f64 {
        let m = self.model;
        prefill_weights(&m.tensors, m.shape.n_layers, m.tied_embeddings).0 as f64
    }

    /// Seconds of the whole prompt spent on the weights multiplied per token: the prompt's time
    /// less the matrices multiplied once per prompt (at what decoding reads of them costs, at the
    /// model's own decode rate; the predictor counts them the same way), the fixed cost per
    /// prompt `per_prompt_s` and the attention (at `g`'s rate, where measured).
    fn matmul_s(&self, per_prompt_s: f64, g: Option<&ContextGrowth>) -> f64 {
        let m = self.model;
        let prompt = f64::from(self.prompt.max(1));
        let attention_s = g
            .and_then(|g| g.prefill_attention_flops_per_s)
            .map_or(0.0, |rate| {
                prompt * prefill_attention_flop_per_token(&m.shape, prompt) / rate
            });
        prompt / self.tokens_per_s - self.once_s() - per_prompt_s - attention_s
    }

    /// Seconds of the matrices multiplied once per prompt: what decoding reads of them costs, at
    /// the model's own decode rate (0 without one).
    fn once_s(&self) -> f64 {
        let m = self.model;
        let (_, once) = prefill_weights(&m.tensors, m.shape.n_layers, m.tied_embeddings);
        let decode_weights_per_s = m.per_token().0 as f64 * self.decode_tps;
        if decode_weights_per_s > 0.0 {
            once as f64 / decode_weights_per_s
        } else {
            0.0
        }
    }

    /// FLOP/s of the weights multiplied per token; `None` when the rate is missing or less than
    /// half the prompt's time is left for them (the subtracted figures are then noise).
    fn flops(&self, per_prompt_s: f64, g: Option<&ContextGrowth>) -> Option<f64> {
        if self.tokens_per_s <= 0.0 {
            return None;
        }
        let total = f64::from(self.prompt.max(1)) / self.tokens_per_s;
        let s = self.matmul_s(per_prompt_s, g);
        (s >= 0.5 * total).then(|| 2.0 * f64::from(self.prompt.max(1)) * self.token_weights() / s)
    }
}

/// The fixed cost of a prompt beyond its matrices, attention and once-per-prompt work (graph
/// build, thread start, buffers), from one type's prefill at two depths: `seconds = per prompt +
/// 2 × prompt × weights / rate` through both. On a 2-core Xeon VM a 2-layer and a 6-layer Q8_0
/// model put the intercept at about 6 ms before the attention and the once-per-prompt matrices
/// were taken out (15 % of the 2-layer model's 128-token prompt), which counted as matrix time
/// would under-rate every type by as much. `None` without two depths, or when the line is
/// implausible (a negative cost or rate, or a cost of more than half the shallower model's
/// prompt).
fn per_prompt_fit(points: &[PrefillPoint], g: Option<&ContextGrowth>) -> Option<f64> {
    let [a, b] = points else {
        return None;
    };
    let (small, large) = if a.token_weights() <= b.token_weights() {
        (a, b)
    } else {
        (b, a)
    };
    let (ts, tl) = (small.matmul_s(0.0, g), large.matmul_s(0.0, g));
    let dw = large.token_weights() - small.token_weights();
    if dw <= 0.0 || tl <= ts || small.prompt != large.prompt {
        return None;
    }
    let s_per_weight = (tl - ts) / dw;
    let c0 = ts - small.token_weights() * s_per_weight;
    (c0 >= 0.0 && c0 <= 0.5 * ts).then_some(c0)
}

/// Attention FLOP per prompt token of a `prompt`-token prompt: QKᵀ and AV, `4 × layers × q_dim`
/// FLOP per earlier token, at the prompt's average position.
pub fn prefill_attention_flop_per_token(shape: &ModelShape, prompt: f64) -> f64 {
    4.0 * shape.n_layers as f64 * (shape.n_heads * shape.head_dim) as f64 * (prompt / 2.0)
}

/// The context growth of prefill from the main measurement `q` of a model of `shape` and its
/// job's long prompt of `long` tokens: the attention rate from the two prompt lengths' seconds
/// per token. `None` without a measurement of the long prompt; the rate is `None` when the longer
/// prompt was not slower or the rate is implausible (see [`ContextGrowth`]).
pub fn fit_context_growth(
    q: &QuantBench,
    shape: &ModelShape,
    long: u32,
    r: &JobRates,
    per_prompt_s: f64,
) -> Option<ContextGrowth> {
    // `per_prompt_s`: what a prompt of either length costs beyond its tokens, taken out of each
    // before the two are compared. The fastest repetition (noise only ever slows one down; the
    // fit takes differences of small numbers).
    let long_pp = stat(&r.long_prefill_tokens_per_s).max;
    let short_pp = q.prefill_tokens_per_s.max;
    if long_pp <= 0.0 || short_pp <= 0.0 || long <= q.prompt_tokens {
        return None;
    }
    let d_flop = prefill_attention_flop_per_token(shape, long as f64)
        - prefill_attention_flop_per_token(shape, q.prompt_tokens as f64);
    // The per-prompt cost is spread over fewer tokens in the shorter prompt.
    let d_prefill_s = (1.0 / long_pp - per_prompt_s / f64::from(long))
        - (1.0 / short_pp - per_prompt_s / f64::from(q.prompt_tokens.max(1)));
    // Plausibility: attention is never faster per FLOP than the same model's weight matrices; a
    // fit beyond describes the noise of a shared machine.
    let matmul_flops = 2.0 * q.params as f64 * short_pp;
    let attention_flops = (d_prefill_s > 0.0 && d_flop > 0.0)
        .then(|| d_flop / d_prefill_s)
        .filter(|f| *f <= matmul_flops);
    Some(ContextGrowth {
        ggml_type: q.ggml_type.clone(),
        n_layers: shape.n_layers,
        n_kv_heads: shape.n_kv_heads,
        head_dim: shape.head_dim,
        q_dim: shape.n_heads * shape.head_dim,
        short_prompt_tokens: q.prompt_tokens,
        long_prompt_tokens: long,
        generated_tokens: q.generated_tokens,
        short_prefill_tokens_per_s: short_pp,
        long_prefill_tokens_per_s: long_pp,
        prefill_attention_flops_per_s: attention_flops,
    })
}

/// The most of a deep-context token that attention may take in [`fit_decode_attention`]: beyond,
/// the point is taken for noise. At 512 tokens the decode models' attention was 25-40 % of their
/// token (2-core Xeon VM).
const MAX_DEEP_ATTENTION_SHARE: f64 = 0.75;

/// The subsets of [`DecodeAttention`]'s costs (indices into
/// [`crate::types::bench::Heads::features`]) the fit tries, in the order it prefers them among
/// equally good fits. Two groupings of heads of one size cannot tell a cost per KV head from one
/// per KV element: they are charged per query head and per KV element (the bytes read); one
/// point alone is charged per KV element.
const ATTENTION_COST_SETS: [&[usize]; 7] =
    [&[0, 1, 2], &[0, 2], &[0, 1], &[1, 2], &[2], &[0], &[1]];

/// Decode's attention costs from deep-decode points: each point's slope (extra seconds per
/// token, layer and earlier position) is `a × query heads + b × KV heads + c × KV elements`.
/// Three models that differ in grouping and head size determine all three; the least-squares
/// fit that keeps every cost non-negative is taken (a negative cost is noise: the others then
/// carry the slope), among equally good ones the first of [`ATTENTION_COST_SETS`]. `None`
/// without a plausible point.
pub fn fit_decode_attention(points: &[DeepDecodePoint]) -> Option<DecodeAttention> {
    let usable: Vec<([f64; 3], f64)> = points
        .iter()
        .filter_map(|p| {
            let slope = p.slope()?;
            let attention_s = slope * f64::from(p.n_layers) * p.deep_position;
            let share = attention_s * p.deep_tokens_per_s.median;
            (share <= MAX_DEEP_ATTENTION_SHARE && p.head_dim > 0)
                .then_some((p.heads().features(), slope))
        })
        .collect();
    if usable.is_empty() {
        return None;
    }
    let total: f64 = usable.iter().map(|(_, y)| y * y).sum();
    let mut best: Option<(f64, [f64; 3])> = None;
    for set in ATTENTION_COST_SETS {
        let Some(costs) = least_squares(&usable, set) else {
            continue;
        };
        if costs.iter().any(|c| *c < 0.0) {
            continue;
        }
        let residual: f64 = usable
            .iter()
            .map(|(x, y)| {
                let fit: f64 = x.iter().zip(costs).map(|(x, c)| x * c).sum();
                (y - fit).powi(2)
            })
            .sum();
        if best.is_none_or(|(r, _)| residual < r - 1e-9 * total) {
            best = Some((residual, costs));
        }
    }
    best.map(|(_, c)| DecodeAttention {
        s_per_query_head: c[0],
        s_per_kv_head: c[1],
        s_per_kv_element: c[2],
    })
}

/// The least-squares costs of `points` (features, slope) on the features in `set` (the others
/// 0); `None` when the points cannot tell them apart.
fn least_squares(points: &[([f64; 3], f64)], set: &[usize]) -> Option<[f64; 3]> {
    let n = set.len();
    // Normal equations, scaled per feature so that the pivots compare.
    let scale: Vec<f64> = set
        .iter()
        .map(|&j| points.iter().map(|(x, _)| x[j] * x[j]).sum::<f64>().sqrt())
        .collect();
    if scale.iter().any(|s| *s <= 0.0) {
        return None;
    }
    let mut m = vec![vec![0.0; n + 1]; n];
    for (x, y) in points {
        let z: Vec<f64> = set.iter().zip(&scale).map(|(&j, s)| x[j] / s).collect();
        for r in 0..n {
            for c in 0..n {
                m[r][c] += z[r] * z[c];
            }
            m[r][n] += z[r] * y;
        }
    }
    // Gauss-Jordan with partial pivoting.
    for col in 0..n {
        let pivot = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-9 {
            return None;
        }
        m.swap(col, pivot);
        let pivot_row = m[col].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut costs = [0.0; 3];
    for (i, &j) in set.iter().enumerate() {
        costs[j] = m[i][n] / m[i][i] / scale[i];
    }
    Some(costs)
}

/// The width curve's point of model `m` from its job's rates (prefill of a `prompt`-token
/// prompt, decode after it); `None` without both figures.
fn width_point(
    m: &BenchModel,
    prompt: u32,
    r: &JobRates,
    per_prompt_s: f64,
    g: Option<&ContextGrowth>,
) -> Option<WidthPoint> {
    let p = PrefillPoint::of(m, prompt, r)?;
    let flops = p.flops(per_prompt_s, g)?;
    Some(WidthPoint {
        ggml_type: m.dominant_type().name().to_string(),
        n_embd: m.shape.n_embd,
        n_layers: m.shape.n_layers,
        matmul_params: p.token_weights() as u64,
        prompt_tokens: prompt,
        prefill_tokens_per_s: p.tokens_per_s,
        prefill_flops_per_s: flops,
        decode_tokens_per_s: p.decode_tps,
    })
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
    on_cpu: std::cell::Cell<OnCpu>,
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
            on_cpu: std::cell::Cell::new(OnCpu::default()),
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

/// The long prompt of the context growth: four times the main prompt, on the half-width model.
/// There its attention is about a third of a prompt token's time (2-core Xeon VM); the fitted
/// attention rate was 26-40 GFLOP/s over nine benchmarks. It runs in one batch, so the
/// difference to the 128-token prompt also holds any change of the matrices' efficiency with the
/// batch size, part of what a longer prompt costs.
pub const LONG_PROMPT_TOKENS: u32 = 512;

/// Tokens in the KV cache for the deep-context decode of the attention pair's decode models.
/// Restored from a saved state, so the depth costs no prefill; decode there is 25-40 % slower
/// than after the short prompt (2-core Xeon VM), far beyond the repetitions' noise.
pub const DEEP_CONTEXT_TOKENS: u32 = 1024;

/// Decode repetitions at the deep context (its KV cache is restored once).
const DEEP_REPS: u32 = 2;

/// Tokens per second of `tokens` in `secs` (0 when no time was measured).
fn rate(tokens: u32, secs: f64) -> f64 {
    if secs > 0.0 {
        f64::from(tokens) / secs
    } else {
        0.0
    }
}

impl LlamaEngine {
    /// Run `f` (one timed repetition) and count its threads' time on a CPU: returns its result
    /// and whether it had its CPUs (see [`sched`]).
    fn timed<T>(
        &self,
        threads: u32,
        f: impl FnOnce() -> Result<T, LlamaError>,
    ) -> Result<(T, bool), BenchError> {
        let c0 = sched::on_cpu_s();
        let t0 = Instant::now();
        let out = f().map_err(BenchError::Llama)?;
        let wall = t0.elapsed().as_secs_f64();
        let on = sched::on_cpu_s().zip(c0).map(|(b, a)| b - a);
        let mut o = self.on_cpu.get();
        let kept = o.record(on, wall, threads);
        self.on_cpu.set(o);
        Ok((out, kept))
    }

    /// The job's long prompt prefilled into a fresh context (the context growth's second point
    /// of prefill); returns its tokens/s, once, or nothing when descheduled.
    fn long_prompt(&self, lm: &llama::LoadedModel, job: &Job) -> Result<Vec<f64>, BenchError> {
        let n = job.long_prompt_tokens;
        let mut s = lm
            .session(self.backend, job.threads, n + 16, n)
            .map_err(BenchError::Llama)?;
        let prompt = llama::prompt_tokens(n, lm.n_vocab(), PROMPT_SKIP);
        // Once; again when descheduled.
        let mut samples = Samples::default();
        for _ in 0..2 {
            let (p_s, kept) = self.timed(job.threads, || s.prefill(&prompt))?;
            samples.add(rate(n, p_s), kept);
            if !samples.kept().is_empty() {
                break;
            }
        }
        Ok(samples.finish())
    }

    /// Decode with `deep_context_tokens` already in the KV cache, [`DEEP_REPS`] times: the KV
    /// cache is restored from a state file next to the model (written by the first run, which
    /// evaluates the prompt once), then one unmeasured step, then the timed repetitions, each
    /// rewound to the same position. Returns decode tokens/s per kept repetition.
    fn deep_decode(
        &self,
        lm: &llama::LoadedModel,
        model: &Path,
        job: &Job,
    ) -> Result<Vec<f64>, BenchError> {
        let n = job.deep_context_tokens;
        let n_ctx = n + job.gen_tokens + 16;
        let prompt = llama::prompt_tokens(n, lm.n_vocab(), PROMPT_SKIP);
        let state = deep_state_path(model, n);
        // A decode-only session first: its batch (and compute buffers) one token's, not the
        // prompt's.
        let mut s = lm
            .session(self.backend, job.threads, n_ctx, 16)
            .map_err(BenchError::Llama)?;
        if !s.restore_state(&prompt, &state) {
            drop(s);
            s = lm
                .session(self.backend, job.threads, n_ctx, n)
                .map_err(BenchError::Llama)?;
            s.prefill(&prompt).map_err(BenchError::Llama)?;
            s.save_state(&prompt, &state);
        }
        s.generate(1).map_err(BenchError::Llama)?;
        let mut samples = Samples::default();
        let mut attempts = 0;
        while (samples.kept().len() as u32) < DEEP_REPS && attempts < 2 * DEEP_REPS {
            attempts += 1;
            s.rewind().map_err(BenchError::Llama)?;
            let (g_s, kept) = self.timed(job.threads, || s.generate(job.gen_tokens))?;
            samples.add(rate(job.gen_tokens, g_s), kept);
        }
        Ok(samples.finish())
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
            let max_reps = job.max_reps.max(1);
            // A repetition whose threads were off the CPU is discarded and, within the budget,
            // repeated: up to twice as many attempts as repetitions.
            let mut attempts = 0;
            let mut prompt_in_cache = prompt_len == WARMUP_PROMPT;
            let (mut prefill, mut decode) = (Samples::default(), Samples::default());
            while (decode.kept().len() as u32) < max_reps && attempts < 2 * max_reps {
                attempts += 1;
                // Prefill is measured in the first `prefill_reps` repetitions only: it is
                // steadier than decode and costs more per repetition; later ones rewind the KV
                // cache to the end of the prompt, so every decode runs at the same context length.
                let spent = started.elapsed().as_secs_f64();
                let last_prefill = prefill
                    .kept()
                    .last()
                    .map_or(0.0, |r| job.prompt_tokens as f64 / r);
                let prefill_fits = attempts == 1 || spent + last_prefill < job.budget_s;
                let measured = prefill.kept().len() as u32;
                if job.measure_prefill && measured < job.prefill_reps && prefill_fits {
                    let (p_s, kept) = self.timed(job.threads, || s.prefill(&prompt))?;
                    prefill.add(rate(job.prompt_tokens, p_s), kept);
                    prompt_in_cache = true;
                } else if !prompt_in_cache {
                    // Decode-only job (thread trials): the full prompt once, not measured.
                    s.prefill(&prompt).map_err(BenchError::Llama)?;
                    prompt_in_cache = true;
                } else {
                    // Same context length as a measured repetition, without paying for prefill.
                    s.rewind().map_err(BenchError::Llama)?;
                }
                // Past the deadline a repetition stops early: a loaded machine must not stretch
                // the run far beyond its budget. Fewer tokens still give a rate.
                let deadline = started + Duration::from_secs_f64(job.budget_s.max(0.0));
                let ((n, g_s), kept) = self.timed(job.threads, || {
                    s.generate_until(job.gen_tokens, Some(deadline))
                })?;
                decode.add(rate(n, g_s), kept);
                let done = decode.kept().len() as u32;
                let prefill_missing =
                    job.measure_prefill && job.prefill_reps > 0 && prefill.kept().is_empty();
                if done >= job.min_reps.max(1) && !prefill_missing {
                    let spent = started.elapsed().as_secs_f64();
                    // A decode-only repetition costs about the last one; stop before overrunning.
                    let next = g_s + 0.01;
                    let stable = done >= 4 && stat(decode.kept()).spread() < 0.04;
                    if stable || spent + next > job.budget_s {
                        break;
                    }
                }
            }
            rates.prefill_tokens_per_s = prefill.finish();
            rates.decode_tokens_per_s = decode.finish();
            drop(s);
            if job.long_prompt_tokens > 0 {
                rates.long_prefill_tokens_per_s = self.long_prompt(&lm, job)?;
            }
            if job.deep_context_tokens > 0 {
                rates.deep_decode_tokens_per_s = self.deep_decode(&lm, model, job)?;
            }
            if !job.batch_sizes.is_empty() {
                rates.batch_step_s = self.batch_steps(&lm, job)?;
            }
            out.push(rates);
        }
        Ok((lm.load_s, out))
    }

    fn on_cpu(&self) -> Option<OnCpu> {
        Some(self.on_cpu.get())
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
