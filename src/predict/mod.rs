//! The speed and memory model: from a machine (`HardwareProfile` + `BenchResult`) and a model
//! (shape, tensor table, file size) to memory need, placement, load time, time to first token,
//! decode speed and seconds per turn, with the factor that limits it.
//!
//! The physics: decode time per token is
//! `overhead + max(bytes read / effective bandwidth, Σ_type weights of type / weights_per_s[type])`,
//! summed per tensor by its own type; prefill is compute, `2 × weights` FLOP per token plus
//! attention over the context; a turn is `prompt / prefill + response / decode`. Everything here
//! is a pure function of its inputs. Knows nothing about files, the registry or the network.
//!
//! The steps of [`predict`] live in submodules: `memory` (what the model needs), `placement`
//! (which device holds which layers and tensors) and `timing` (decode and prefill per token, and
//! the limit); `rates` turns the profile and the benchmark into per-device rates. Their public
//! items are re-exported here.

pub mod band;
pub mod concurrency;
mod memory;
mod placement;
pub mod rates;
mod timing;

use serde::{Deserialize, Serialize};

use crate::gguf::{ModelShape, TensorSummary};
use crate::profile::HardwareProfile;
use crate::types::bench::{BenchBackend, BenchResult};
use crate::types::workload::{UserLatencies, DEFAULT_STAGGER_S, TURNS_PER_USER};
// tests.rs names ggml types through `use super::*`.
#[cfg(test)]
use crate::gguf::GgmlType;
pub use memory::{compute_buffer_bytes, memory_need, MemoryNeed, UBATCH_TOKENS};
pub use placement::{place, GpuShare, Placement, PlacementKind, GPU_RESERVED_BYTES};
pub use rates::{CpuRates, GpuRates, TypeRate};
pub use timing::Limit;

use placement::{split_tensors, TensorSplit};
use timing::{DecodeTime, PrefillTime};

/// Version of the `Prediction` JSON form.
pub const PREDICTION_SCHEMA_VERSION: u32 = 1;

/// Disk read rate assumed for a cold load: a SATA SSD or a cloud block volume. An NVMe drive is
/// faster, a spinning disk 2–4× slower (the seed server needed 135 s to warm up a 7.3 GiB file).
pub const ASSUMED_DISK_READ_BYTES_PER_S: f64 = 250e6;

pub use crate::types::workload::Workload;

/// A model as the predictor sees it. A registry entry gives it through `tensors_for`; a local
/// GGUF file through its header.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    /// Registry id or file path, for messages.
    pub label: String,
    pub shape: ModelShape,
    pub tensors: Vec<TensorSummary>,
    pub file_bytes: u64,
    /// True when `file_bytes` is the tensor-table estimate, not the real size.
    pub file_bytes_estimated: bool,
}

impl ModelInput {
    /// From what a GGUF header gives: shape, tensor table and the file's size.
    pub fn from_gguf(
        label: impl Into<String>,
        shape: ModelShape,
        tensors: Vec<TensorSummary>,
        file_bytes: u64,
    ) -> Self {
        ModelInput {
            label: label.into(),
            shape,
            tensors,
            file_bytes,
            file_bytes_estimated: false,
        }
    }

    /// Parameters in the weight matrices (everything but 1-D norms and biases).
    pub fn parameters(&self) -> u64 {
        self.tensors
            .iter()
            .filter(|t| t.dims.len() >= 2)
            .map(|t| t.n_elements)
            .sum()
    }
}

/// Options that are not part of the machine or the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    /// Measured/predicted ratio of turn time from an earlier verification run on this machine;
    /// multiplies the predicted prefill and decode times (1.0 = no correction); load time, which
    /// depends on the disk, is not scaled.
    pub correction_ratio: f64,
    /// Measured/predicted ratios of prefill and of decode from an earlier verification; when
    /// given they replace `correction_ratio` for their part of the turn (the two parts are off
    /// by different amounts, and a workload with another prompt/answer mix needs each).
    pub components: Option<ComponentRatios>,
    /// Keep everything on the CPU even when a GPU could take layers.
    pub cpu_only: bool,
}

/// The measured/predicted time ratios of prefill and of decode of one verified turn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ComponentRatios {
    pub prefill_ratio: f64,
    pub decode_ratio: f64,
}

impl ComponentRatios {
    fn usable(&self) -> bool {
        [self.prefill_ratio, self.decode_ratio]
            .iter()
            .all(|r| r.is_finite() && *r > 0.0)
    }
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            correction_ratio: 1.0,
            components: None,
            cpu_only: false,
        }
    }
}

/// Everything predicted for one model on one machine for one workload. Times include the
/// correction factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub schema_version: u32,
    pub model: String,
    /// False when no benchmark covered the device doing the work ("unmeasured").
    pub measured: bool,
    pub workload: Workload,
    pub parameters: u64,
    pub file_bytes: u64,
    pub file_bytes_estimated: bool,
    pub memory: MemoryNeed,
    pub placement: Placement,
    /// Weight bytes read per decoded token (token embedding is a lookup and not counted).
    pub weight_bytes_per_token: u64,
    /// Effective bandwidth of the device that holds most layers.
    pub effective_bandwidth_bytes_per_s: f64,
    pub decode_tokens_per_s: f64,
    pub prefill_tokens_per_s: f64,
    pub prefill_s: f64,
    pub decode_s: f64,
    pub time_to_first_token_s: f64,
    /// Seconds per turn with the model loaded.
    pub turn_s: f64,
    /// The band the turn falls in on this machine (see [`band`]): the benchmark's fastest and
    /// slowest repetitions, widened when it ran on a busy machine. 0 in older predictions.
    #[serde(default)]
    pub turn_s_low: f64,
    #[serde(default)]
    pub turn_s_high: f64,
    pub cold_load_s: f64,
    /// First turn after a restart: load plus one turn.
    pub cold_turn_s: f64,
    pub limited_by: Limit,
    /// The correction of the turn as a whole: the one given, or, with component ratios, the
    /// ratio of the corrected to the uncorrected turn they add up to.
    pub correction_ratio: f64,
    /// The prefill and decode ratios applied, when they were (see [`PredictOptions::components`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_ratios: Option<ComponentRatios>,
    /// What each user waits for with `workload.concurrency` conversations in flight, from the
    /// simulated server loop (`concurrency`); for one user it equals the figures above.
    #[serde(default)]
    pub concurrency: Option<UserLatencies>,
    /// How each figure was obtained, stand-ins and assumptions.
    pub notes: Vec<String>,
}

/// Predict a model's memory, placement and speed on a machine for a workload.
pub fn predict(
    hw: &HardwareProfile,
    bench: Option<&BenchResult>,
    model: &ModelInput,
    workload: &Workload,
    opts: &PredictOptions,
) -> Prediction {
    let shape = &model.shape;
    let tied = shape.tied_embeddings;
    let mut notes = Vec::new();
    let inputs = Inputs {
        hw,
        model,
        workload,
        cpu: rates::cpu_rates(hw, bench),
        gpus: rates::gpu_rates(hw, bench),
    };
    // One KV cache per conversation in flight.
    let need = memory_need(shape, &model.tensors, workload.total_context_tokens());
    let placement = place(&inputs.gpus, shape, &model.tensors, &need, opts.cpu_only);
    let split = split_tensors(&placement, &model.tensors, tied);

    let decode = timing::decode_time(&inputs, &placement, &split, &mut notes);
    let prefill = timing::prefill_time(&inputs, &placement, &split);
    let components = opts.components.filter(ComponentRatios::usable);
    let (cp, cd) = match components {
        Some(r) => (r.prefill_ratio, r.decode_ratio),
        None => {
            let c = correction_factor(opts);
            (c, c)
        }
    };
    let turn = turn_times(&decode, &prefill, workload, cp, cd);
    // The turn's overall correction, for the notes and for the next calibration.
    let c = match components {
        Some(_) => {
            let raw = turn_times(&decode, &prefill, workload, 1.0, 1.0).turn_s;
            if raw > 0.0 {
                turn.turn_s / raw
            } else {
                1.0
            }
        }
        None => cp,
    };
    // The correction comes from a measured turn (prefill and decode): loading depends on the
    // disk, not on the compute the ratio describes, so it is not scaled.
    let cold_load_s = model.file_bytes as f64 / disk_read_bytes_per_s(hw, &inputs.cpu).0
        + inputs.cpu.load_overhead_s;

    let weight_bytes_per_token = weight_bytes_per_token(model);
    let effective_bandwidth_bytes_per_s = effective_bandwidth(&inputs, &placement, &decode);
    let measured = is_measured(&inputs, &placement);
    push_notes(&inputs, &placement, c, &turn, &mut notes);
    if let Some(r) = components {
        notes.push(format!(
            "prefill times ×{:.2} and decode times ×{:.2}, as an earlier verification on this machine measured them",
            r.prefill_ratio, r.decode_ratio
        ));
    }
    let backend = match placement.kind {
        PlacementKind::Cpu => BenchBackend::Cpu,
        _ => BenchBackend::Gpu,
    };
    let band_factors = band_factors(bench, backend, &inputs.cpu, model);
    let turn_band = band::turn_band(turn.prefill_s, turn.decode_s, &band_factors);
    // Only a margin the note's whole percent can show (a trace of steal time on an idle
    // machine is not "shared").
    if band_factors.busy_margin >= 0.005 {
        if let Some(c) = bench.and_then(|b| b.conditions.as_ref()) {
            notes.push(format!(
                "band widened by ±{:.0} %: the benchmark shared the machine (load average {:.1} on {} CPUs, {:.0} % of the CPU time stolen); benchmark again on an idle machine for a narrower band",
                band_factors.busy_margin * 100.0,
                c.load_average_1m,
                c.logical_cores,
                c.steal_ratio * 100.0
            ));
        }
    }
    let concurrency = several_users(
        bench,
        backend,
        &inputs.cpu,
        model,
        workload,
        &decode,
        &prefill,
        (cp, cd),
        &mut notes,
    );

    Prediction {
        schema_version: PREDICTION_SCHEMA_VERSION,
        model: model.label.clone(),
        measured,
        workload: *workload,
        parameters: model.parameters(),
        file_bytes: model.file_bytes,
        file_bytes_estimated: model.file_bytes_estimated,
        memory: need,
        placement,
        weight_bytes_per_token,
        effective_bandwidth_bytes_per_s,
        decode_tokens_per_s: turn.decode_tokens_per_s,
        prefill_tokens_per_s: turn.prefill_tokens_per_s,
        prefill_s: turn.prefill_s,
        decode_s: turn.decode_s,
        time_to_first_token_s: turn.time_to_first_token_s,
        turn_s: turn.turn_s,
        turn_s_low: turn_band.low_s,
        turn_s_high: turn_band.high_s,
        cold_load_s,
        cold_turn_s: cold_load_s + turn.turn_s,
        limited_by: decode.limited_by,
        correction_ratio: c,
        component_ratios: components,
        concurrency: Some(concurrency),
        notes,
    }
}

impl Prediction {
    /// The per-user turn a promise is held to: the p95 over the users' turns when several are
    /// in flight, else the one-user turn.
    pub fn per_user_turn_p95_s(&self) -> f64 {
        match &self.concurrency {
            Some(c) if c.users > 1 => c.turn_p95_s,
            _ => self.turn_s,
        }
    }

    /// The turn a promise is judged on: the per-user turn ([`Self::per_user_turn_p95_s`]) at the
    /// upper end of the band, so that a promise holds on the slow side of what was measured.
    pub fn upper_turn_s(&self) -> f64 {
        let ratio = if self.turn_s > 0.0 && self.turn_s_high > self.turn_s {
            self.turn_s_high / self.turn_s
        } else {
            1.0
        };
        self.per_user_turn_p95_s() * ratio
    }

    /// `16.3 s (15.1–17.6)`: the turn with its band (just the turn when there is none).
    pub fn turn_with_band(&self) -> String {
        if self.turn_s_high > self.turn_s_low && self.turn_s_low > 0.0 {
            format!(
                "{:.1} s ({:.1}–{:.1})",
                self.turn_s, self.turn_s_low, self.turn_s_high
            )
        } else {
            format!("{:.1} s", self.turn_s)
        }
    }

    /// Conversations in flight this prediction is for.
    pub fn users(&self) -> u32 {
        self.workload.users()
    }
}

/// The users' latencies from the simulated server loop, with step costs from this prediction's
/// one-user rates (correction applied) and the benchmark's batched-decode curve for the model's
/// main type; notes where the curve came from.
#[allow(clippy::too_many_arguments)]
fn several_users(
    bench: Option<&BenchResult>,
    backend: BenchBackend,
    cpu: &CpuRates,
    model: &ModelInput,
    workload: &Workload,
    decode: &DecodeTime,
    prefill: &PrefillTime,
    (cp, cd): (f64, f64),
    notes: &mut Vec<String>,
) -> UserLatencies {
    let users = workload.users();
    let cost = concurrency::MeasuredStepCost {
        decode_token_s: decode.token_s * cd,
        prefill_token_s: prefill.token_s * cp,
        prefill_once_s: prefill.once_s * cp,
        batch: batch_parts(bench, backend, cpu, model, cd),
    };
    if users > 1 {
        if cost.batch.is_empty() {
            notes.push(format!(
                "{users} users: batched decode not measured, each sequence assumed to cost a whole step (an upper bound; `bench --concurrency {users}` measures it)"
            ));
        } else {
            notes.push(format!(
                "{users} users: a step with {users} sequences costs {:.2}× one: what the benchmark measured extra sequences to add ({}), times the model's weights of each type over the benchmark model's",
                cost.batch_ratio(users),
                cost.batch
                    .iter()
                    .map(|p| format!(
                        "{} ×{:.1}: {}",
                        p.curve.ggml_type,
                        p.weights_scale / cd,
                        p.curve
                            .steps
                            .iter()
                            .map(|s| format!("{} seq {:.1} ms", s.sequences, s.step_s.median * 1e3))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
    }
    let sc = concurrency::Scenario {
        users,
        prompt_tokens: workload.prompt_tokens,
        response_tokens: workload.response_tokens,
        turns_per_user: TURNS_PER_USER,
        stagger_s: DEFAULT_STAGGER_S,
        n_batch: UBATCH_TOKENS as u32,
    };
    concurrency::simulate(&sc, &cost).latencies(&sc)
}

/// The batched-decode curves that stand for a model's weights: for each of its matrices (the
/// output matrix included, an untied token embedding not: decode only looks rows up in it), the
/// benchmark's curve of the measured type standing in for the matrix's type, else the curve of
/// the largest benchmark model on `backend`; with the model's weights per weight of the curve's
/// model, times the decode calibration `cd`.
fn batch_parts(
    bench: Option<&BenchResult>,
    backend: BenchBackend,
    cpu: &CpuRates,
    model: &ModelInput,
    cd: f64,
) -> Vec<concurrency::BatchPart> {
    let Some(b) = bench else {
        return Vec::new();
    };
    let tied = model.shape.tied_embeddings;
    let mut parts: Vec<(&crate::types::bench::BatchDecode, u64)> = Vec::new();
    for t in model
        .tensors
        .iter()
        .filter(|t| t.dims.len() >= 2 && (tied || !t.is_token_embedding()))
    {
        let measured = cpu.for_type(t.ggml_type).0.ggml_type.name();
        // A curve without a one-sequence step or a weight count says nothing here: then the
        // upper bound, as without curves.
        let Some(curve) = b
            .batch_curve(measured, backend)
            .filter(|c| c.params > 0 && c.extra_step_s(1).is_some())
        else {
            return Vec::new();
        };
        match parts.iter_mut().find(|(c, _)| std::ptr::eq(*c, curve)) {
            Some(p) => p.1 += t.n_elements,
            None => parts.push((curve, t.n_elements)),
        }
    }
    parts
        .into_iter()
        .map(|(c, weights)| concurrency::BatchPart {
            weights_scale: weights as f64 / c.params as f64 * cd,
            curve: c.clone(),
        })
        .collect()
}

/// The ggml type holding most of a model's matrix bytes.
fn main_type(model: &ModelInput) -> Option<crate::gguf::GgmlType> {
    let mut by_type: Vec<(crate::gguf::GgmlType, u64)> = Vec::new();
    for t in model.tensors.iter().filter(|t| t.dims.len() >= 2) {
        match by_type.iter_mut().find(|(n, _)| *n == t.ggml_type) {
            Some(e) => e.1 += t.n_bytes,
            None => by_type.push((t.ggml_type, t.n_bytes)),
        }
    }
    by_type.into_iter().max_by_key(|e| e.1).map(|e| e.0)
}

/// The band's factors from the benchmark entries of the type holding most of the model's
/// weights (or the measured type standing in for it) on the device doing the work.
fn band_factors(
    bench: Option<&BenchResult>,
    backend: BenchBackend,
    cpu: &CpuRates,
    model: &ModelInput,
) -> band::BandFactors {
    let Some(b) = bench else {
        return band::BandFactors::NONE;
    };
    let main = main_type(model).map(|t| cpu.for_type(t).0.ggml_type.name().to_string());
    let entries: Vec<&crate::types::bench::QuantBench> = b
        .quants
        .iter()
        .filter(|q| q.backend == backend && Some(q.ggml_type.as_str()) == main.as_deref())
        .collect();
    band::factors(&entries, b.conditions.as_ref())
}

/// The models directory's uncached read speed: measured by the probe, else assumed; and whether
/// it was measured.
fn disk_read_bytes_per_s(hw: &HardwareProfile, cpu: &CpuRates) -> (f64, DiskReadSource) {
    if let Some(r) = cpu.cold_read_bytes_per_s.filter(|r| *r > 0.0) {
        return (r, DiskReadSource::ColdLoad);
    }
    match hw.disk.as_ref().and_then(|d| d.read) {
        Some(r) if r.bytes_per_s > 0.0 => (r.bytes_per_s, DiskReadSource::Probe),
        _ => (ASSUMED_DISK_READ_BYTES_PER_S, DiskReadSource::Assumed),
    }
}

/// Where the read speed of a cold load comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiskReadSource {
    /// The benchmark's cold load of one of its models: llama.cpp's own reading of a file.
    ColdLoad,
    /// The probe's uncached sequential read of a file it wrote.
    Probe,
    Assumed,
}

/// What the steps of [`predict`] share: the machine's rates and the question asked.
struct Inputs<'a> {
    hw: &'a HardwareProfile,
    model: &'a ModelInput,
    workload: &'a Workload,
    cpu: CpuRates,
    gpus: Vec<GpuRates>,
}

/// The correction factor to apply: the option when it is a positive number, else 1.
fn correction_factor(opts: &PredictOptions) -> f64 {
    if opts.correction_ratio.is_finite() && opts.correction_ratio > 0.0 {
        opts.correction_ratio
    } else {
        1.0
    }
}

/// The times of one turn with the model loaded, correction applied.
struct TurnTimes {
    decode_tokens_per_s: f64,
    prefill_tokens_per_s: f64,
    prefill_s: f64,
    decode_s: f64,
    time_to_first_token_s: f64,
    turn_s: f64,
}

/// A turn is `prompt / prefill + response / decode`; the decode and prefill times are multiplied
/// by the correction `c`.
fn turn_times(
    decode: &DecodeTime,
    prefill: &PrefillTime,
    workload: &Workload,
    cp: f64,
    cd: f64,
) -> TurnTimes {
    let token_s = decode.token_s;
    let prefill_token_s = prefill.token_s;
    let decode_tokens_per_s = 1.0 / (token_s * cd);
    let prefill_once_s = prefill.once_s;
    let prompt = workload.prompt_tokens as f64;
    let prefill_s = (prompt * prefill_token_s + prefill_once_s) * cp;
    let prefill_tokens_per_s = if prompt > 0.0 {
        prompt / prefill_s
    } else {
        1.0 / ((prefill_token_s + prefill_once_s) * cp)
    };
    let decode_s = workload.response_tokens as f64 / decode_tokens_per_s;
    let time_to_first_token_s = prefill_s + 1.0 / decode_tokens_per_s;
    let turn_s = prefill_s + decode_s;
    TurnTimes {
        decode_tokens_per_s,
        prefill_tokens_per_s,
        prefill_s,
        decode_s,
        time_to_first_token_s,
        turn_s,
    }
}

/// Weight bytes read per decoded token (the token embedding is a lookup, unless it is tied to
/// the output).
fn weight_bytes_per_token(model: &ModelInput) -> u64 {
    let tied = model.shape.tied_embeddings;
    model
        .tensors
        .iter()
        .filter(|t| !t.is_token_embedding() || tied)
        .map(|t| t.n_bytes)
        .sum()
}

/// Effective bandwidth of the device that takes the larger share of a token: the CPU's, or the
/// first GPU's when the GPUs take longer.
fn effective_bandwidth(inputs: &Inputs, placement: &Placement, decode: &DecodeTime) -> f64 {
    let cpu = &inputs.cpu;
    let gpus = &inputs.gpus;
    let (cpu_s, gpu_s) = (decode.cpu_s, decode.gpu_s);
    match placement.kind {
        PlacementKind::Cpu => cpu.effective_bandwidth_bytes_per_s,
        _ if cpu_s > gpu_s => cpu.effective_bandwidth_bytes_per_s,
        _ => placement
            .gpus
            .first()
            .and_then(|s| gpus.iter().find(|g| g.index == s.index))
            .map_or(cpu.effective_bandwidth_bytes_per_s, |g| {
                g.effective_bandwidth_bytes_per_s
            }),
    }
}

/// Whether a benchmark covered the devices doing the work.
fn is_measured(inputs: &Inputs, placement: &Placement) -> bool {
    let cpu = &inputs.cpu;
    let gpus = &inputs.gpus;
    let gpu_measured = gpus.iter().all(|g| g.measured);
    match placement.kind {
        PlacementKind::Cpu => cpu.measured,
        PlacementKind::Gpu => gpu_measured,
        PlacementKind::Split => cpu.measured && gpu_measured,
    }
}

/// Notes on how each figure was obtained, after the ones the decode step wrote.
fn push_notes(
    inputs: &Inputs,
    placement: &Placement,
    c: f64,
    turn: &TurnTimes,
    notes: &mut Vec<String>,
) {
    let Inputs {
        hw,
        model,
        workload,
        ref cpu,
        ref gpus,
    } = *inputs;
    let shape = &model.shape;
    let (prefill_s, decode_s) = (turn.prefill_s, turn.decode_s);
    if placement.kind != PlacementKind::Gpu {
        notes.push(format!(
            "CPU: {:.1} GB/s effective ({})",
            cpu.effective_bandwidth_bytes_per_s / 1e9,
            cpu.bandwidth_source
        ));
        if !cpu.measured {
            let kernels = match crate::llama::cpu::expected_variant(&hw.cpu.simd) {
                Some(v) if !hw.cpu.simd.avx2 && hw.cpu.simd.avx => format!(
                    " (llama.cpp's {} kernels: AVX without AVX2, a fraction of AVX2's rate)",
                    v.name
                ),
                Some(v) => format!(" (llama.cpp's {} kernels)", v.name),
                None => String::new(),
            };
            notes.push(format!(
                "CPU compute ceiling unmeasured: per-core figures for {}{kernels} × {} cores",
                hw.cpu.simd_level.as_str(),
                hw.compute_cores()
            ));
        }
    }
    for s in &placement.gpus {
        if let Some(g) = gpus.iter().find(|g| g.index == s.index) {
            notes.push(format!(
                "GPU {} {}: {} layers, {:.0} GB/s effective ({}), assumes a llama.cpp build with its backend",
                g.index,
                g.name,
                s.layers,
                g.effective_bandwidth_bytes_per_s / 1e9,
                g.bandwidth_source
            ));
        }
    }
    if let Some(r) = &placement.split_reason {
        notes.push(format!("split: {r}"));
    }
    if workload.context_tokens > shape.context_length {
        notes.push(format!(
            "context {} exceeds the model's trained context {}: llama.cpp needs RoPE scaling and answers degrade",
            workload.context_tokens, shape.context_length
        ));
    }
    if model.file_bytes_estimated {
        notes.push("file size estimated from the tensor table (no published size)".into());
    }
    let (read_bps, read_source) = disk_read_bytes_per_s(hw, cpu);
    notes.push(format!(
        "cold load: {:.1} GB at {:.0} MB/s {} + {:.1} s setup",
        model.file_bytes as f64 / 1e9,
        read_bps / 1e6,
        match read_source {
            DiskReadSource::ColdLoad => "(the benchmark's load of an uncached model)",
            DiskReadSource::Probe => "(the probe's uncached disk read)",
            DiskReadSource::Assumed => "(an assumed disk read)",
        },
        cpu.load_overhead_s
    ));
    if c != 1.0 {
        notes.push(format!(
            "times scaled by the correction factor {c:.2} from an earlier verification"
        ));
    }
    if prefill_s > decode_s {
        notes.push(format!(
            "prompt processing takes {prefill_s:.1} s of the turn, more than generation"
        ));
    }
}

#[cfg(test)]
mod tests;
