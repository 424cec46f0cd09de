//! `minerva-setup bench`: run the llama.cpp micro-benchmark, store it in the state directory and
//! print it.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use crate::app::failure::bench_failure;
use crate::app::{Ctx, Human};
use crate::bench::runner::{self, BenchOptions};
use crate::exit::{Exit, Failure, ResultExt};
use crate::gguf::GgmlType;
use crate::types::bench::{BenchBackend, BenchResult, Stat};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Threads for llama.cpp (default: physical cores, and a neighbouring count is tried).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Benchmark this GGUF file instead of the generated models.
    #[arg(long, value_name = "FILE")]
    pub bench_model: Option<PathBuf>,
    /// Quantisation types to measure, comma-separated (default: Q4_K,Q5_K,Q6_K,Q8_0,Q4_0,F16,Q5_0,Q3_K,IQ4_XS).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = parse_type)]
    pub types: Vec<GgmlType>,
    /// Seconds for all measurements together (model writing excluded). Each measurement needs a
    /// load, a warm-up and one prefill whatever the budget, so a busy machine can overrun it; the
    /// default leaves room for that within 10 s.
    #[arg(long, value_name = "SECONDS", default_value_t = 8.0)]
    pub budget: f64,
    /// Prompt tokens of the prefill measurement.
    #[arg(long, value_name = "N", default_value_t = 128, value_parser = clap::value_parser!(u32).range(16..=2048))]
    pub prompt_tokens: u32,
    /// Tokens generated per decode repetition (each decode model reads 300 MB per token: a
    /// repetition of 8 takes 0.1-0.4 s).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub gen_tokens: u32,
    /// Measure on the CPU only, even with a GPU build and a GPU present.
    #[arg(long)]
    pub no_gpu: bool,
    /// Show llama.cpp's own log lines on stderr.
    #[arg(long)]
    pub llama_logs: bool,
    /// Also time decode steps with 1, 2, 4 and 8 sequences in one batch, which predictions for
    /// N > 1 users at once need (a few seconds more).
    #[arg(long, value_name = "N", env = crate::env_vars::MINERVA_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=crate::types::workload::MAX_CONCURRENCY as i64))]
    pub concurrency: Option<u32>,
    /// Do not write `bench.json` into the state directory.
    #[arg(long)]
    pub no_save: bool,
    /// Also probe the memory's streaming bandwidth first, for the table's ratio column (what
    /// share of it llama.cpp's decode reaches). Off by default: it takes most of a second where
    /// the reported cache is large, and no prediction uses it once the benchmark has measured.
    #[arg(long)]
    pub bandwidth: bool,
}

fn parse_type(s: &str) -> Result<GgmlType, String> {
    let supported = || {
        GgmlType::all()
            .filter(|t| crate::gguf::writer::supports(*t))
            .map(|t| t.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match GgmlType::from_name(s.trim()) {
        Some(t) if crate::gguf::writer::supports(t) => Ok(t),
        Some(t) => Err(format!(
            "benchmark models cannot be generated in {t}; supported: {}",
            supported()
        )),
        None => Err(format!(
            "unknown ggml type `{s}`; supported: {}",
            supported()
        )),
    }
}

pub fn run(ctx: &Ctx, args: &BenchArgs) -> Result<(), Failure> {
    let profile = ctx.hardware(args.bandwidth)?;
    let mut opts = BenchOptions::new(ctx.paths.cache_dir.clone());
    opts.threads = args.threads;
    opts.bench_model = args.bench_model.clone();
    opts.cpu_variant = ctx.cpu_variant.clone();
    if !args.types.is_empty() {
        opts.types = args.types.clone();
    }
    opts.time_budget_s = args.budget.max(0.1);
    opts.prompt_tokens = args.prompt_tokens;
    opts.gen_tokens = args.gen_tokens;
    opts.gpu = !args.no_gpu;
    opts.llama_logs = args.llama_logs;
    opts = opts.with_batches_for(args.concurrency.unwrap_or(1));
    let progress = ctx.progress();
    let result =
        runner::run_bench(&profile, &opts, progress.as_ref()).map_err(|e| bench_failure(ctx, e))?;
    if !args.no_save {
        crate::state::save_bench(&ctx.paths.state_dir, &result)
            .exit(Exit::Failure)
            .map_err(|f| {
                f.hint(format!(
                    "the state directory `{}` must be writable (or pass --no-save)",
                    ctx.paths.state_dir.display()
                ))
            })?;
    }
    ctx.emit(&result)
}

fn mib(b: u64) -> String {
    format!("{:.0}", b as f64 / (1u64 << 20) as f64)
}

fn spread(s: &Stat) -> String {
    if s.samples < 2 {
        "(n=1)".to_string()
    } else {
        format!("±{:.0}%", s.spread() * 50.0)
    }
}

impl Human for BenchResult {
    fn human(&self) -> String {
        let mut s = String::new();
        let trials = if self.thread_trials.is_empty() {
            "given".to_string()
        } else {
            let t: Vec<String> = self
                .thread_trials
                .iter()
                .map(|t| format!("{} → {:.1} tok/s", t.threads, t.decode_tokens_per_s))
                .collect();
            format!("tried {}", t.join(", "))
        };
        let _ = writeln!(s, "Threads   {} ({trials})", self.threads);
        if let Some(v) = &self.cpu_variant {
            let _ = writeln!(s, "Kernels   {}", crate::app::render::variant_line(v));
        }
        let probe = self
            .probe_bandwidth_bytes_per_s
            .map(|b| format!("{:.1} GB/s", b / 1e9))
            .unwrap_or_else(|| {
                "not probed (`bench --bandwidth` does; the ratio column needs it)".into()
            });
        let _ = writeln!(s, "Probe     memory bandwidth {probe}");
        let _ = writeln!(
            s,
            "{:<4} {:<5} {:>9} {:>8} {:>9} {:>7} {:>15} {:>14} {:>10} {:>9} {:>6} {:>9}",
            "back",
            "type",
            "M weights",
            "file MiB",
            "MiB/token",
            "load s",
            "prefill tok/s",
            "decode tok/s",
            "Gweight/s",
            "eff GB/s",
            "ratio",
            "GFLOP/s"
        );
        for q in &self.quants {
            let back = match q.backend {
                BenchBackend::Cpu => "cpu",
                BenchBackend::Gpu => "gpu",
            };
            let ratio = q
                .bandwidth_ratio
                .map(|r| format!("{r:.2}"))
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "{:<4} {:<5} {:>9.1} {:>8} {:>9} {:>7.2} {:>9.1} {:>5} {:>8.1} {:>5} {:>10.2} {:>9.1} {:>6} {:>9.1}",
                back,
                q.ggml_type,
                q.params as f64 / 1e6,
                mib(q.file_bytes),
                mib(q.weight_bytes_per_token),
                q.load_s,
                q.prefill_tokens_per_s.median,
                spread(&q.prefill_tokens_per_s),
                q.decode_tokens_per_s.median,
                spread(&q.decode_tokens_per_s),
                q.decode_weights_per_s / 1e9,
                q.decode_bandwidth_bytes_per_s / 1e9,
                ratio,
                q.prefill_flops_per_s / 1e9
            );
        }
        if !self.width_curve.is_empty() {
            let points: Vec<String> = self
                .width_curve
                .iter()
                .map(|p| {
                    format!(
                        "{} wide {:.0} GFLOP/s",
                        p.n_embd,
                        p.prefill_flops_per_s / 1e9
                    )
                })
                .collect();
            let _ = writeln!(s, "Width     prefill {}", points.join(", "));
        }
        let per_prompt = match self.prefill_s_per_prompt {
            Some(c) => format!("{:.1} ms per prompt", c * 1e3),
            None => "per-prompt cost not measured".to_string(),
        };
        let _ = writeln!(
            s,
            "Overhead  prefill {per_prompt}; decode {:.2} ms per token; load {:.2} s",
            self.per_token_overhead_s * 1e3,
            self.load_overhead_s
        );
        let rss = self
            .peak_rss_bytes
            .map(|b| format!("{} MiB", mib(b)))
            .unwrap_or_else(|| "unknown".into());
        let _ = writeln!(
            s,
            "Run       {:.1} s wall, peak RSS {rss}, {}",
            self.wall_s, self.source
        );
        for b in &self.batch_decode {
            let steps: Vec<String> = b
                .steps
                .iter()
                .map(|st| {
                    format!(
                        "{} seq {:.1} ms ({:.2}×)",
                        st.sequences,
                        st.step_s.median * 1e3,
                        b.step_ratio(st.sequences).unwrap_or(f64::NAN)
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "Batched   {} {:.0} M weights, decode step with {}",
                b.ggml_type,
                b.params as f64 / 1e6,
                steps.join(", ")
            );
        }
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        s
    }
}
