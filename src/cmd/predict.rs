//! `minerva-setup predict MODEL_ID_OR_FILE`: memory, placement, load time and latency of one
//! model on this machine (or the `--hardware` one).

use std::fmt::Write as _;
use std::path::Path;

use clap::Args;

use indicatif::HumanBytes;

use crate::app::args::WorkloadArgs;
use crate::app::failure::state_failure;
use crate::app::settings::{component_ratios, correction_ratio, load_registry, remote_model};
use crate::app::{Ctx, Human};
use crate::env_vars::MINERVA_MIRROR;
use crate::exit::{Exit, Failure, ResultExt};
use crate::pipeline::stored;
use crate::predict::{self, ModelInput, PlacementKind, PredictOptions, Prediction};
use crate::select::{self, DEFAULT_WORKLOAD};

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A registry id (see `registry list`), a local .gguf file, or a file on Hugging Face:
    /// `hf:ORG/REPO/PATH.gguf` or `hf:ORG/REPO:QUANT` (only its header is read).
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Branch, tag or commit of an `hf:` model's repository [default: main].
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// Hugging Face endpoint or mirror for an `hf:` model (default: HF_ENDPOINT, else
    /// huggingface.co).
    #[arg(long, value_name = "URL", env = MINERVA_MIRROR)]
    pub mirror: Option<String>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Keep every layer on the CPU even when a GPU is present.
    #[arg(long)]
    pub cpu_only: bool,
}

pub fn run(ctx: &Ctx, args: &PredictArgs) -> Result<(), Failure> {
    let hw = ctx.hardware(true)?;
    let (bench, _source) = stored::known_bench(
        &hw,
        &ctx.paths.state_dir,
        ctx.machine(),
        ctx.cpu_variant.as_deref(),
    )
    .map_err(state_failure)?;
    let (reg, tiers) = load_registry(ctx)?;
    let remote = remote_model(
        ctx,
        &args.model,
        args.mirror.as_deref(),
        args.revision.as_deref(),
    )?;
    if args.revision.is_some() && remote.is_none() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!(
                "--revision applies to an `hf:` model, not to `{}`",
                args.model
            ),
        )
        .hint("drop --revision, or name the model as hf:ORG/REPO/PATH.gguf"));
    }
    let (input, base) = match (remote, reg.get(&args.model)) {
        (Some(r), _) => {
            // The same input `predict FILE` builds from the downloaded file's header.
            let input = ModelInput::from_gguf(
                r.file.id.clone(),
                r.model.shape,
                r.model.tensors,
                r.model.file_bytes,
            );
            (input, DEFAULT_WORKLOAD)
        }
        (None, Some(f)) => {
            // The same tier `plan --model` would use: its workload applies.
            let base =
                select::tier_for_model(&hw, &tiers, &f.id).map_or(DEFAULT_WORKLOAD, |t| t.workload);
            (select::model_input(f), base)
        }
        (None, None) => {
            let path = Path::new(&args.model);
            if !path.exists() {
                return Err(Failure::new(
                    Exit::Usage,
                    anyhow::anyhow!(
                        "`{}` is neither a registry id, a file nor an `hf:` model",
                        args.model
                    ),
                )
                .hint("run `minerva-setup registry list` for the ids, or name a file on Hugging Face as hf:ORG/REPO/PATH.gguf"));
            }
            (read_gguf_model(path)?, DEFAULT_WORKLOAD)
        }
    };
    let workload = args.workload.overrides().apply(base);
    let opts = PredictOptions {
        correction_ratio: correction_ratio(ctx, &hw, &args.workload).unwrap_or(1.0),
        components: component_ratios(ctx, &hw, &args.workload),
        cpu_only: args.cpu_only,
    };
    let p = predict::predict(&hw, bench.as_ref(), &input, &workload, &opts);
    ctx.emit(&p)
}

/// The single place where a local GGUF file becomes the predictor's input: its header gives
/// `(ModelShape, Vec<TensorSummary>)` and the file its size, passed to [`ModelInput::from_gguf`].
/// A split model's first part stands for the model: the header is read across its parts.
fn read_gguf_model(path: &Path) -> Result<ModelInput, Failure> {
    let model = crate::gguf::split::read_model(path)
        .exit(Exit::BadInput)
        .map_err(|f| f.hint("check that the file is a complete GGUF model (llama.cpp's format)"))?;
    Ok(ModelInput::from_gguf(
        path.display().to_string(),
        model.shape,
        model.tensors,
        model.file_bytes,
    ))
}

impl Human for Prediction {
    fn human(&self) -> String {
        let mut s = String::new();
        let w = &self.workload;
        let m = &self.memory;
        let _ = writeln!(
            s,
            "Model     {} ({:.2}B weights in matrices)",
            self.model,
            self.parameters as f64 / 1e9
        );
        let _ = writeln!(
            s,
            "Workload  {} prompt tokens, {} response tokens, context {}{}",
            w.prompt_tokens,
            w.response_tokens,
            w.context_tokens,
            if w.users() > 1 {
                format!(
                    " per conversation, {} conversations at once ({} in all)",
                    w.users(),
                    w.total_context_tokens()
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "File      {:.2} GB{}",
            self.file_bytes as f64 / 1e9,
            if self.file_bytes_estimated {
                " (estimated from the tensor table)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "Memory    {} = weights {} + KV cache {} (F16) + buffers {}",
            HumanBytes(m.total_bytes),
            HumanBytes(m.weights_bytes),
            HumanBytes(m.kv_cache_bytes),
            HumanBytes(m.compute_buffer_bytes)
        );
        let pl = &self.placement;
        let place = match pl.kind {
            PlacementKind::Cpu => format!(
                "all {} layers on the CPU, {} RAM",
                pl.n_layers,
                HumanBytes(pl.ram_bytes)
            ),
            PlacementKind::Gpu => format!(
                "all {} layers on {} GPU(s) ({}), {} VRAM",
                pl.n_layers,
                pl.gpus.len(),
                pl.gpus
                    .iter()
                    .map(|g| format!("GPU {}: {} layers", g.index, g.layers))
                    .collect::<Vec<_>>()
                    .join(", "),
                HumanBytes(pl.vram_bytes)
            ),
            PlacementKind::Split => format!(
                "split: {} of {} layers on {} GPU(s) ({} VRAM), the rest on the CPU ({} RAM)",
                pl.gpu_layers,
                pl.n_layers,
                pl.gpus.len(),
                HumanBytes(pl.vram_bytes),
                HumanBytes(pl.ram_bytes)
            ),
        };
        let _ = writeln!(s, "Placement {place}");
        let _ = writeln!(
            s,
            "Decode    {:.1} tokens/s, limited by {} ({:.2} GB read per token at {:.1} GB/s effective)",
            self.decode_tokens_per_s,
            self.limited_by.describe(),
            self.weight_bytes_per_token as f64 / 1e9,
            self.effective_bandwidth_bytes_per_s / 1e9
        );
        let _ = writeln!(s, "Prefill   {:.1} tokens/s", self.prefill_tokens_per_s);
        let _ = writeln!(
            s,
            "Turn      {} warm (prefill {:.1} s + decode {:.1} s), first token after {:.1} s",
            self.turn_with_band(),
            self.prefill_s,
            self.decode_s,
            self.time_to_first_token_s
        );
        if let Some(u) = self.concurrency.as_ref().filter(|u| u.users > 1) {
            let _ = writeln!(
                s,
                "Users     {} at once: turn p50 {:.1} s, p95 {:.1} s; first token p50 {:.1} s, p95 {:.1} s; {:.1} tok/s in all",
                u.users, u.turn_p50_s, u.turn_p95_s, u.ttft_p50_s, u.ttft_p95_s, u.aggregate_tokens_per_s
            );
            let _ = writeln!(
                s,
                "          (closed loop, {} turns each, first prompts {:.1} s apart)",
                u.turns / u.users.max(1),
                u.stagger_s
            );
        }
        let _ = writeln!(
            s,
            "Cold      load {:.1} s, first turn {:.1} s",
            self.cold_load_s, self.cold_turn_s
        );
        let _ = writeln!(
            s,
            "Basis     {}",
            if self.measured {
                "measured (from benchmark figures)"
            } else {
                "unmeasured (no benchmark): estimates"
            }
        );
        for n in &self.notes {
            let _ = writeln!(s, "  - {n}");
        }
        s
    }
}
