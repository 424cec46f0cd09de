//! Table tests of the speed and memory model on synthetic benches and the reference fixtures.

use super::*;
use crate::gguf::{tensors_for, FileType};
use crate::profile::{GpuInfo, GpuVendor};
use crate::types::bench::{BenchBackend, BenchResult, QuantBench, Stat};

fn profile(name: &str) -> HardwareProfile {
    let text = match name {
        "xeon" => include_str!("../../tests/fixtures/profiles/xeon-e5-2660v3.json"),
        "cloud" => include_str!("../../tests/fixtures/profiles/cloud-2vcpu-16g.json"),
        "h100" => include_str!("../../tests/fixtures/profiles/h100-80g.json"),
        "4090x2" => include_str!("../../tests/fixtures/profiles/rtx4090x2.json"),
        other => panic!("no fixture {other}"),
    };
    HardwareProfile::from_json(text, name).unwrap()
}

fn llama(
    layers: u32,
    embd: u32,
    ff: u32,
    heads: u32,
    kv: u32,
    vocab: u32,
    tied: bool,
) -> ModelShape {
    ModelShape {
        architecture: "llama".into(),
        n_layers: layers,
        n_embd: embd,
        n_ff: ff,
        n_heads: heads,
        n_kv_heads: kv,
        head_dim: embd / heads,
        vocab_size: vocab,
        context_length: 4096,
        tied_embeddings: tied,
    }
}

fn llama2_13b() -> ModelShape {
    llama(40, 5120, 13824, 40, 40, 32000, false)
}

fn llama3_8b() -> ModelShape {
    llama(32, 4096, 14336, 32, 8, 128256, false)
}

fn llama3_70b() -> ModelShape {
    llama(80, 8192, 28672, 64, 8, 128256, false)
}

fn input(label: &str, shape: ModelShape, ft: FileType) -> ModelInput {
    let tensors = tensors_for(&shape, ft);
    let bytes = tensors.iter().map(|t| t.n_bytes).sum();
    ModelInput {
        label: label.into(),
        shape,
        tensors,
        file_bytes: bytes,
        file_bytes_estimated: true,
    }
}

/// A one-type CPU bench entry whose recorded figures follow `1 / (overhead + max(bytes/bw, params/ceiling))`.
fn quant(
    t: &str,
    bytes_per_weight: f64,
    bw: f64,
    ceiling: f64,
    overhead: f64,
    flops: f64,
) -> QuantBench {
    let params = 1_000_000_000u64;
    let bytes = (params as f64 * bytes_per_weight) as u64;
    let tps = 1.0 / (overhead + (bytes as f64 / bw).max(params as f64 / ceiling));
    QuantBench {
        ggml_type: t.into(),
        backend: BenchBackend::Cpu,
        params,
        weight_bytes_per_token: bytes,
        file_bytes: bytes,
        load_s: 1.0,
        prompt_tokens: 256,
        prefill_tokens_per_s: Stat::single(flops / (2.0 * params as f64)),
        generated_tokens: 64,
        decode_tokens_per_s: Stat::single(tps),
        decode_weights_per_s: params as f64 * tps,
        decode_bandwidth_bytes_per_s: bytes as f64 * tps,
        bandwidth_ratio: None,
        prefill_flops_per_s: flops,
        n_layers: 0,
        n_heads: 0,
        n_kv_heads: 0,
        head_dim: 0,
        decode_context_tokens: None,
        prefill_n_embd: None,
    }
}

fn bench(quants: Vec<QuantBench>, overhead: f64) -> BenchResult {
    BenchResult {
        schema_version: 1,
        threads: 4,
        thread_trials: vec![],
        per_token_overhead_s: overhead,
        load_overhead_s: 1.0,
        quants,
        probe_bandwidth_bytes_per_s: None,
        converged: Some(true),
        wall_s: 1.0,
        peak_rss_bytes: None,
        source: "test".into(),
        warnings: vec![],
        batch_decode: vec![],
        conditions: None,
        context_growth: None,
        context_growth_wide_heads: None,
        deep_decode: Vec::new(),
        decode_attention: None,
        cpu_variant: None,
        width_curve: Vec::new(),
        prefill_s_per_prompt: None,
        cold_load: None,
    }
}

fn workload(prompt: u32, response: u32, ctx: u32) -> Workload {
    Workload {
        prompt_tokens: prompt,
        response_tokens: response,
        context_tokens: ctx,
        concurrency: 1,
    }
}

fn cpu_only(hw: &mut HardwareProfile) {
    hw.gpus.clear();
}

#[test]
fn kv_cache_and_memory_need_follow_the_formula() {
    // 2 × layers × ctx × kv_heads × head_dim × 2 bytes.
    let cases = [
        (llama3_8b(), 4096u32, 2u64 * 32 * 4096 * 8 * 128 * 2),
        (llama2_13b(), 2048, 2 * 40 * 2048 * 40 * 128 * 2),
        (llama3_70b(), 8192, 2 * 80 * 8192 * 8 * 128 * 2),
    ];
    for (shape, ctx, kv) in cases {
        let t = tensors_for(&shape, FileType::Q4_K_M);
        let m = memory_need(&shape, &t, ctx);
        assert_eq!(m.kv_cache_bytes, kv);
        assert_eq!(m.weights_bytes, t.iter().map(|x| x.n_bytes).sum::<u64>());
        assert_eq!(
            m.total_bytes,
            m.weights_bytes + m.kv_cache_bytes + m.compute_buffer_bytes
        );
        assert!(m.compute_buffer_bytes > 50 << 20 && m.compute_buffer_bytes < 1 << 30);
    }
}

#[test]
fn bandwidth_bound_decode_matches_bytes_over_bandwidth_plus_overhead() {
    // (effective bandwidth, overhead): every type is bandwidth-bound, so decode time per token is
    // overhead + (weight bytes read + KV read) / bandwidth.
    for (bw, overhead) in [(11.5e9, 0.006), (40e9, 0.002), (5e9, 0.0)] {
        let b = bench(
            vec![
                quant("Q4_K", 0.5625, bw, 1e15, overhead, 300e9),
                quant("Q6_K", 0.8203, bw, 1e15, overhead, 300e9),
                quant("F16", 2.0, bw, 1e15, overhead, 300e9),
            ],
            overhead,
        );
        let mut hw = profile("xeon");
        hw.bench = None;
        let m = input("13b", llama2_13b(), FileType::Q4_K_M);
        let w = workload(100, 30, 2048);
        let p = predict(&hw, Some(&b), &m, &w, &PredictOptions::default());
        let kv_read = 2.0 * 40.0 * (100.0 + 15.0) * 5120.0 * 2.0;
        let expect = overhead + (p.weight_bytes_per_token as f64 + kv_read) / bw;
        assert!(
            (1.0 / p.decode_tokens_per_s - expect).abs() / expect < 1e-3,
            "bw {bw}: {} vs {expect}",
            1.0 / p.decode_tokens_per_s
        );
        assert_eq!(p.limited_by, Limit::MemoryBandwidth);
        assert!(p.measured);
        assert!((p.effective_bandwidth_bytes_per_s - bw).abs() / bw < 1e-3);
    }
}

#[test]
fn slow_dequantisation_makes_compute_the_limit() {
    // Q4_K at 2e9 weights/s while memory could deliver 20 GB/s: compute-bound.
    let b = bench(
        vec![
            quant("F16", 2.0, 20e9, 1e15, 0.001, 200e9),
            quant("Q4_K", 0.5625, 20e9, 2e9, 0.001, 200e9),
        ],
        0.001,
    );
    let mut hw = profile("cloud");
    cpu_only(&mut hw);
    let m = input("8b", llama3_8b(), FileType::Q4_K_M);
    let p = predict(
        &hw,
        Some(&b),
        &m,
        &workload(100, 50, 1024),
        &PredictOptions::default(),
    );
    assert_eq!(p.limited_by, Limit::DequantisationCompute);
    // Q6_K tensors were not measured: mapped to the nearest measured type, and said so.
    assert!(
        p.notes.iter().any(|n| n.contains("Q6_K measured as")),
        "{:?}",
        p.notes
    );
}

#[test]
fn token_embedding_is_a_lookup_unless_tied() {
    let untied = input(
        "u",
        llama(16, 2048, 8192, 32, 8, 128256, false),
        FileType::Q8_0,
    );
    let tied = input(
        "t",
        llama(16, 2048, 8192, 32, 8, 128256, true),
        FileType::Q8_0,
    );
    let hw = profile("xeon");
    let w = workload(100, 50, 1024);
    let pu = predict(
        &hw,
        hw.bench.as_ref(),
        &untied,
        &w,
        &PredictOptions::default(),
    );
    let pt = predict(
        &hw,
        hw.bench.as_ref(),
        &tied,
        &w,
        &PredictOptions::default(),
    );
    let embd = |m: &ModelInput| {
        m.tensors
            .iter()
            .find(|t| t.is_token_embedding())
            .unwrap()
            .n_bytes
    };
    // Untied: output is read, the embedding is not. Tied: the embedding is the output, read once.
    assert_eq!(
        pu.weight_bytes_per_token,
        pu.memory.weights_bytes - embd(&untied)
    );
    assert_eq!(pt.weight_bytes_per_token, pt.memory.weights_bytes);
}

#[test]
fn turn_is_prefill_plus_decode_and_correction_scales_it() {
    let hw = profile("xeon");
    let m = input("8b", llama3_8b(), FileType::Q4_K_M);
    let w = workload(550, 150, 4096);
    let p1 = predict(&hw, hw.bench.as_ref(), &m, &w, &PredictOptions::default());
    assert!((p1.turn_s - (p1.prefill_s + p1.decode_s)).abs() < 1e-9);
    assert!((p1.prefill_s - 550.0 / p1.prefill_tokens_per_s).abs() < 1e-9);
    assert!((p1.decode_s - 150.0 / p1.decode_tokens_per_s).abs() < 1e-9);
    assert!(p1.time_to_first_token_s > p1.prefill_s && p1.time_to_first_token_s < p1.turn_s);
    assert!((p1.cold_turn_s - (p1.cold_load_s + p1.turn_s)).abs() < 1e-9);
    let p2 = predict(
        &hw,
        hw.bench.as_ref(),
        &m,
        &w,
        &PredictOptions {
            correction_ratio: 1.5,
            ..PredictOptions::default()
        },
    );
    assert!((p2.turn_s / p1.turn_s - 1.5).abs() < 1e-9);
    assert!((p2.decode_tokens_per_s * 1.5 / p1.decode_tokens_per_s - 1.0).abs() < 1e-9);
    assert_eq!(p2.correction_ratio, 1.5);
    assert_eq!(
        p2.cold_load_s, p1.cold_load_s,
        "loading depends on the disk, not the turn's correction"
    );
}

#[test]
fn seed_case_13b_on_the_xeon_is_bandwidth_bound_near_1_5_tokens_per_s() {
    let hw = profile("xeon");
    let m = input("llama-2-13b-chat-q4_k_m", llama2_13b(), FileType::Q4_K_M);
    // The seed ran with a short prompt and n_ctx 512.
    let p = predict(
        &hw,
        hw.bench.as_ref(),
        &m,
        &workload(20, 30, 512),
        &PredictOptions::default(),
    );
    assert_eq!(p.limited_by, Limit::MemoryBandwidth);
    assert!(
        p.decode_tokens_per_s > 1.3 && p.decode_tokens_per_s < 1.6,
        "{}",
        p.decode_tokens_per_s
    );
    assert!(
        p.decode_s >= 20.0 - 1.0,
        "30 tokens take {:.1} s",
        p.decode_s
    );
    // The estimated file size is TheBloke's published 7.87 GB within 1 %.
    assert!(
        (p.file_bytes as f64 / 7.87e9 - 1.0).abs() < 0.01,
        "{}",
        p.file_bytes
    );
}

#[test]
fn without_a_bench_the_prediction_is_unmeasured_and_uses_the_probe_bandwidth() {
    let mut hw = profile("xeon");
    hw.bench = None;
    let m = input("13b", llama2_13b(), FileType::Q4_K_M);
    let p = predict(
        &hw,
        None,
        &m,
        &workload(100, 30, 2048),
        &PredictOptions::default(),
    );
    assert!(!p.measured);
    let bw = hw.memory_bandwidth.as_ref().unwrap().bytes_per_s * rates::CPU_BANDWIDTH_EFFICIENCY;
    assert!((p.effective_bandwidth_bytes_per_s - bw).abs() < 1.0);
    assert!(p.notes.iter().any(|n| n.contains("unmeasured")));
    // No probe figure either: a conservative per-SIMD default, still a finite prediction.
    hw.memory_bandwidth = None;
    let p = predict(
        &hw,
        None,
        &m,
        &workload(100, 30, 2048),
        &PredictOptions::default(),
    );
    assert!(p.decode_tokens_per_s.is_finite() && p.decode_tokens_per_s > 0.0);
}

#[test]
fn one_core_without_avx2_is_compute_bound() {
    let mut hw = profile("cloud");
    hw.bench = None;
    hw.cpu.simd_level = crate::profile::SimdLevel::Avx;
    let m = input("8b", llama3_8b(), FileType::Q4_K_M);
    let p = predict(
        &hw,
        None,
        &m,
        &workload(100, 30, 2048),
        &PredictOptions::default(),
    );
    assert_eq!(p.limited_by, Limit::DequantisationCompute);
}

#[test]
fn placement_table() {
    // (fixture, model, expected kind, GPUs used)
    let cases: Vec<(&str, ModelShape, PlacementKind, usize)> = vec![
        ("h100", llama3_70b(), PlacementKind::Gpu, 1),
        ("h100", llama3_8b(), PlacementKind::Gpu, 1),
        ("4090x2", llama3_8b(), PlacementKind::Gpu, 1),
        ("4090x2", llama3_70b(), PlacementKind::Gpu, 2),
        ("xeon", llama3_70b(), PlacementKind::Cpu, 0),
    ];
    for (fx, shape, kind, n_gpus) in cases {
        let hw = profile(fx);
        let m = input("m", shape, FileType::Q4_K_M);
        let p = predict(
            &hw,
            hw.bench.as_ref(),
            &m,
            &workload(550, 150, 4096),
            &PredictOptions::default(),
        );
        assert_eq!(p.placement.kind, kind, "{fx}");
        assert_eq!(p.placement.gpus.len(), n_gpus, "{fx}");
        if kind == PlacementKind::Gpu {
            assert_eq!(p.placement.gpu_layers, p.placement.n_layers + 1);
            assert_eq!(p.limited_by, Limit::GpuVramBandwidth);
            let layers: u32 = p.placement.gpus.iter().map(|g| g.layers).sum();
            assert_eq!(layers, p.placement.n_layers);
            for g in &p.placement.gpus {
                assert!(g.bytes <= g.capacity_bytes);
            }
        }
    }
}

#[test]
fn a_model_too_big_for_vram_is_split_and_the_cpu_share_dominates() {
    let mut hw = profile("4090x2");
    hw.gpus.truncate(1); // one 24 GB card, a 42 GB model
    let m = input("70b", llama3_70b(), FileType::Q4_K_M);
    let p = predict(
        &hw,
        None,
        &m,
        &workload(550, 150, 4096),
        &PredictOptions::default(),
    );
    assert_eq!(p.placement.kind, PlacementKind::Split);
    assert!(
        p.placement.gpu_layers > 20 && p.placement.gpu_layers < 80,
        "{}",
        p.placement.gpu_layers
    );
    assert_eq!(p.limited_by, Limit::CpuShareOfSplitLayers);
    assert!(p.placement.split_reason.is_some());
    // Slower than all on GPU, faster than all on CPU.
    let gpu = predict(
        &profile("4090x2"),
        None,
        &m,
        &workload(550, 150, 4096),
        &PredictOptions::default(),
    );
    let cpu = predict(
        &hw,
        None,
        &m,
        &workload(550, 150, 4096),
        &PredictOptions {
            cpu_only: true,
            ..PredictOptions::default()
        },
    );
    assert!(
        gpu.decode_tokens_per_s > p.decode_tokens_per_s
            && p.decode_tokens_per_s > cpu.decode_tokens_per_s
    );
}

#[test]
fn gpu_without_bandwidth_uses_a_stated_default_and_unknown_vendors_are_ignored() {
    let mut hw = profile("xeon");
    hw.bench = None;
    let gpu = |vendor, bw| GpuInfo {
        vendor,
        index: 0,
        name: "card".into(),
        vram_total_bytes: 16 << 30,
        vram_free_bytes: None,
        compute_capability: None,
        memory_bus_width_bits: None,
        max_memory_clock_mhz: None,
        memory_bandwidth_bytes_per_s: bw,
        driver_version: None,
        cuda_version: None,
        pci_id: None,
        unified_memory: false,
    };
    let m = input("8b", llama3_8b(), FileType::Q4_K_M);
    hw.gpus = vec![gpu(GpuVendor::Intel, Some(100e9))];
    let p = predict(
        &hw,
        None,
        &m,
        &workload(100, 30, 2048),
        &PredictOptions::default(),
    );
    assert_eq!(p.placement.kind, PlacementKind::Cpu);
    hw.gpus = vec![gpu(GpuVendor::Nvidia, None)];
    let p = predict(
        &hw,
        None,
        &m,
        &workload(100, 30, 2048),
        &PredictOptions::default(),
    );
    assert_eq!(p.placement.kind, PlacementKind::Gpu);
    let expect = rates::DEFAULT_GPU_BANDWIDTH_BYTES_PER_S * rates::GPU_BANDWIDTH_EFFICIENCY;
    assert!((p.effective_bandwidth_bytes_per_s - expect).abs() < 1.0);
    assert!(!p.measured);
    assert!(p.notes.iter().any(|n| n.contains("assumed")));
}

#[test]
fn a_memory_bound_type_keeps_its_own_measured_rate() {
    // F16 reached 22 GB/s, Q8_0 20.5 GB/s: both memory-bound (within 90 %). A Q8_0 model must
    // decode at Q8_0's own measured time per weight, not at the best bandwidth of any type.
    let b = bench(
        vec![
            quant("F16", 2.0, 22e9, 1e15, 0.0, 100e9),
            quant("Q8_0", 1.0625, 20.5e9, 1e15, 0.0, 100e9),
        ],
        0.0,
    );
    let mut hw = profile("cloud");
    cpu_only(&mut hw);
    let m = input(
        "1b-q8",
        llama(22, 2048, 5632, 32, 4, 32000, false),
        FileType::Q8_0,
    );
    let p = predict(
        &hw,
        Some(&b),
        &m,
        &workload(16, 16, 256),
        &PredictOptions::default(),
    );
    let weights: u64 = m
        .tensors
        .iter()
        .filter(|t| t.dims.len() >= 2 && !t.is_token_embedding())
        .map(|t| t.n_elements)
        .sum();
    let q8_weights_per_s = 20.5e9 / 1.0625;
    let expect_s = weights as f64 / q8_weights_per_s;
    let got_s = 1.0 / p.decode_tokens_per_s;
    assert!(
        (got_s / expect_s - 1.0).abs() < 0.01,
        "{got_s} vs {expect_s}"
    );
    // Its rate was memory's, so memory bandwidth is named as the limit.
    assert_eq!(p.limited_by, Limit::MemoryBandwidth);
}

#[test]
fn an_overhead_fit_the_bench_found_cache_bound_is_not_taken_out() {
    // Recorded: 1 ms per token of fixed cost on top of 2e10 weights/s.
    let q = quant("Q4_0", 0.5625, 1e15, 2e10, 0.001, 100e9);
    let naive = q.decode_weights_per_s;
    let mut b = bench(vec![q], 0.001);
    let mut hw = profile("cloud");
    cpu_only(&mut hw);

    b.converged = Some(true);
    let trusted = rates::cpu_rates(&hw, Some(&b));
    assert_eq!(trusted.per_token_overhead_s, 0.001);
    let (r, _) = trusted.for_type(GgmlType::Q4_0);
    assert!((r.decode_weights_per_s.unwrap() / 2e10 - 1.0).abs() < 1e-6);

    // The small model ran faster per weight (cache): the intercept is not an overhead, and the
    // recorded rate is used as measured.
    b.converged = Some(false);
    let untrusted = rates::cpu_rates(&hw, Some(&b));
    assert_eq!(untrusted.per_token_overhead_s, 0.0);
    let (r, _) = untrusted.for_type(GgmlType::Q4_0);
    assert!((r.decode_weights_per_s.unwrap() / naive - 1.0).abs() < 1e-6);

    // For a model 10× the benchmark's, the prediction is then slower, not faster.
    let m = input(
        "q4",
        llama(22, 2048, 5632, 32, 4, 32000, false),
        FileType::Q4_0,
    );
    let w = workload(16, 16, 256);
    b.converged = Some(true);
    let fast = predict(&hw, Some(&b), &m, &w, &PredictOptions::default());
    b.converged = Some(false);
    let slow = predict(&hw, Some(&b), &m, &w, &PredictOptions::default());
    assert!(slow.decode_tokens_per_s < fast.decode_tokens_per_s);
}

#[test]
fn prefill_multiplies_the_output_matrix_for_the_last_prompt_token_only() {
    // Two tied models that differ only in vocabulary: the larger output matrix adds one token's
    // worth of prefill work per prompt, not one per prompt token.
    let flops = 100e9;
    let b = bench(vec![quant("Q8_0", 1.0625, 20e9, 1e15, 0.0, flops)], 0.0);
    let mut hw = profile("cloud");
    cpu_only(&mut hw);
    let small = input(
        "v32k",
        llama(16, 2048, 8192, 32, 8, 32000, true),
        FileType::Q8_0,
    );
    let large = input(
        "v128k",
        llama(16, 2048, 8192, 32, 8, 128256, true),
        FileType::Q8_0,
    );
    let w = workload(256, 16, 1024);
    let ps = predict(&hw, Some(&b), &small, &w, &PredictOptions::default());
    let pl = predict(&hw, Some(&b), &large, &w, &PredictOptions::default());
    // A matrix-vector product: what decoding reads of those weights costs (20 GB/s of
    // 1.0625-byte weights), not their FLOP at prefill's rate.
    let extra_weights = (128256.0 - 32000.0) * 2048.0;
    let once_s = extra_weights / (20e9 / 1.0625);
    assert!(
        ((pl.prefill_s - ps.prefill_s) / once_s - 1.0).abs() < 1e-6,
        "{} vs {once_s}",
        pl.prefill_s - ps.prefill_s
    );
    // Decode still reads the whole output matrix for every token.
    assert!(pl.decode_tokens_per_s < ps.decode_tokens_per_s * 0.9);
}

#[test]
fn the_measured_per_prompt_cost_and_width_curve_enter_prefill() {
    let flops = 100e9;
    let mut b = bench(vec![quant("Q8_0", 1.0625, 20e9, 1e15, 0.0, flops)], 0.0);
    b.quants[0].prefill_n_embd = Some(2048);
    let mut hw = profile("cloud");
    cpu_only(&mut hw);
    let m = input(
        "1024 wide",
        llama(16, 1024, 4096, 16, 4, 32000, false),
        FileType::Q8_0,
    );
    let w = workload(256, 16, 1024);
    let base = predict(&hw, Some(&b), &m, &w, &PredictOptions::default());

    b.prefill_s_per_prompt = Some(0.004);
    let fixed = predict(&hw, Some(&b), &m, &w, &PredictOptions::default());
    assert!(
        (fixed.prefill_s - base.prefill_s - 0.004).abs() < 1e-9,
        "{} vs {}",
        fixed.prefill_s,
        base.prefill_s
    );

    // 1024-wide matrices at 0.8 of the 2048-wide rate: the per-token work on the weights takes
    // 1 / 0.8 as long; the attention and the once-per-prompt matrices do not change.
    b.prefill_s_per_prompt = None;
    let point = |n_embd: u32, f: f64| crate::types::bench::WidthPoint {
        ggml_type: "Q4_K".into(),
        n_embd,
        n_layers: 4,
        matmul_params: 1,
        prompt_tokens: 128,
        prefill_tokens_per_s: 1.0,
        prefill_flops_per_s: f,
        decode_tokens_per_s: 1.0,
    };
    b.width_curve = vec![point(1024, 80e9), point(2048, 100e9)];
    let narrow = predict(&hw, Some(&b), &m, &w, &PredictOptions::default());
    let (per_token, _) = crate::gguf::prefill_weights(&m.tensors, 16, false);
    let weights_s = 256.0 * 2.0 * per_token as f64 / flops;
    assert!(
        (narrow.prefill_s - base.prefill_s - weights_s * (1.0 / 0.8 - 1.0)).abs() < 1e-9,
        "{} vs {}",
        narrow.prefill_s,
        base.prefill_s
    );
}

#[test]
fn one_user_in_the_server_loop_is_the_one_user_prediction_and_more_users_cost_more() {
    let hw = profile("xeon");
    let m = input("8b", llama3_8b(), FileType::Q4_K_M);
    for correction_ratio in [1.0, 1.3] {
        let opts = PredictOptions {
            correction_ratio,
            ..PredictOptions::default()
        };
        let p = predict(&hw, hw.bench.as_ref(), &m, &workload(550, 150, 4096), &opts);
        let u = p.concurrency.as_ref().unwrap();
        assert_eq!(u.users, 1);
        for (sim, formula) in [
            (u.turn_p50_s, p.turn_s),
            (u.turn_p95_s, p.turn_s),
            (u.ttft_p50_s, p.time_to_first_token_s),
            (u.ttft_p95_s, p.time_to_first_token_s),
        ] {
            assert!((sim - formula).abs() < 1e-9 * formula, "{sim} vs {formula}");
        }
        assert_eq!(p.per_user_turn_p95_s(), p.turn_s);
    }

    // Three users, no batched-decode curve in the fixture's bench: each sequence is assumed to
    // cost a whole step, so every user waits longer and memory holds three KV caches.
    let one = predict(
        &hw,
        hw.bench.as_ref(),
        &m,
        &workload(550, 150, 4096),
        &PredictOptions::default(),
    );
    let w3 = Workload {
        concurrency: 3,
        ..workload(550, 150, 4096)
    };
    let p3 = predict(&hw, hw.bench.as_ref(), &m, &w3, &PredictOptions::default());
    let u3 = p3.concurrency.as_ref().unwrap();
    assert_eq!((u3.users, u3.turns), (3, 6));
    assert!(u3.turn_p50_s > 2.0 * one.turn_s, "{u3:?} vs {}", one.turn_s);
    assert_eq!(p3.per_user_turn_p95_s(), u3.turn_p95_s);
    assert_eq!(p3.memory.kv_cache_bytes, 3 * one.memory.kv_cache_bytes);
    assert!(p3
        .notes
        .iter()
        .any(|n| n.contains("batched decode not measured")));
    // With a curve measured on a benchmark model of this model's weights and one-sequence
    // step, where three sequences add half a step, users wait less than that.
    let weights: u64 = m
        .tensors
        .iter()
        .filter(|t| t.dims.len() >= 2 && (m.shape.tied_embeddings || !t.is_token_embedding()))
        .map(|t| t.n_elements)
        .sum();
    let step = 1.0 / one.decode_tokens_per_s;
    let mut b = hw.bench.clone().unwrap();
    b.batch_decode = vec![crate::types::bench::BatchDecode {
        ggml_type: "Q4_K".into(),
        backend: crate::types::bench::BenchBackend::Cpu,
        params: weights,
        context_tokens: 64,
        steps: [(1, 1.0), (2, 1.25), (4, 1.75)]
            .iter()
            .map(|&(s, t)| crate::types::bench::BatchStep {
                sequences: s,
                step_s: Stat::single(t * step),
            })
            .collect(),
    }];
    let pb = predict(&hw, Some(&b), &m, &w3, &PredictOptions::default());
    let ub = pb.concurrency.as_ref().unwrap();
    assert!(ub.turn_p50_s < u3.turn_p50_s, "{ub:?} vs {u3:?}");
    assert!(ub.aggregate_tokens_per_s > u3.aggregate_tokens_per_s);
    assert!(
        pb.notes.iter().any(|n| n.contains("1.50× one")),
        "{:?}",
        pb.notes
    );
}

#[test]
fn cold_load_uses_the_benchmarks_cold_load_else_the_probes_disk_read_else_an_assumed_one() {
    let mut hw = profile("xeon");
    let model = input("13b", llama2_13b(), FileType::Q4_K_M);
    let w = workload(550, 150, 4096);
    let overhead = hw.bench.as_ref().unwrap().load_overhead_s;
    let assumed = predict(
        &hw,
        hw.bench.as_ref(),
        &model,
        &w,
        &PredictOptions::default(),
    );
    let expected = model.file_bytes as f64 / ASSUMED_DISK_READ_BYTES_PER_S + overhead;
    assert!((assumed.cold_load_s - expected).abs() < 1e-9);
    assert!(assumed
        .notes
        .iter()
        .any(|n| n.contains("250 MB/s (an assumed disk read)")));

    hw.disk.as_mut().unwrap().read = Some(crate::profile::DiskRead {
        bytes_per_s: 100e6,
        bytes: 64 << 20,
        direct: true,
    });
    let measured = predict(
        &hw,
        hw.bench.as_ref(),
        &model,
        &w,
        &PredictOptions::default(),
    );
    let expected = model.file_bytes as f64 / 100e6 + overhead;
    assert!(
        (measured.cold_load_s - expected).abs() < 1e-9,
        "{}",
        measured.cold_load_s
    );
    assert!(measured
        .notes
        .iter()
        .any(|n| n.contains("100 MB/s (the probe's uncached disk read)")));
    // The turn does not depend on the disk.
    assert_eq!(measured.turn_s, assumed.turn_s);

    // A benchmark that timed a cold load of its model: 400 MB read in 0.8 s more than from the
    // page cache, 500 MB/s, ahead of the probe's figure.
    let mut bench = hw.bench.clone().unwrap();
    bench.cold_load = Some(crate::types::bench::ColdLoad {
        ggml_type: "Q8_0".into(),
        file_bytes: 400_000_000,
        cold_load_s: 0.9,
        warm_load_s: 0.1,
    });
    let cold = predict(&hw, Some(&bench), &model, &w, &PredictOptions::default());
    let expected = model.file_bytes as f64 / 500e6 + overhead;
    assert!(
        (cold.cold_load_s - expected).abs() < 1e-6,
        "{}",
        cold.cold_load_s
    );
    assert!(cold
        .notes
        .iter()
        .any(|n| n.contains("500 MB/s (the benchmark's load of an uncached model)")));
    // A cold load no slower than the cached one (the pages stayed cached) measured nothing.
    bench.cold_load.as_mut().unwrap().cold_load_s = 0.1;
    let kept = predict(&hw, Some(&bench), &model, &w, &PredictOptions::default());
    assert_eq!(kept.cold_load_s, measured.cold_load_s);
}

#[test]
fn measured_context_growth_enters_decode_at_the_turns_position_and_prefill_at_its_own_rate() {
    use crate::types::bench::{ContextGrowth, DecodeAttention};
    let flops = 100e9;
    let mut q = quant("Q8_0", 1.0625, 20e9, 1e15, 0.0, flops);
    q.n_layers = 12;
    q.n_heads = 16;
    q.n_kv_heads = 4;
    q.head_dim = 64;
    let plain = bench(vec![q.clone()], 0.0);
    let (per_head, per_kv_head, per_kv_element, attention) = (30e-9, 20e-9, 3e-9, 10e9);
    // Per layer and position, heads of `d`.
    let slope = |h: f64, kv: f64, d: f64| per_head * h + per_kv_head * kv + per_kv_element * kv * d;
    let mut grown = plain.clone();
    grown.context_growth = Some(ContextGrowth {
        ggml_type: "Q4_K".into(),
        n_layers: 12,
        n_kv_heads: 4,
        head_dim: 64,
        q_dim: 1024,
        short_prompt_tokens: 128,
        long_prompt_tokens: 512,
        generated_tokens: 32,
        short_prefill_tokens_per_s: 0.0,
        long_prefill_tokens_per_s: 0.0,
        prefill_attention_flops_per_s: Some(attention),
    });
    grown.decode_attention = Some(DecodeAttention {
        s_per_query_head: per_head,
        s_per_kv_head: per_kv_head,
        s_per_kv_element: per_kv_element,
    });
    let mut hw = profile("cloud");
    cpu_only(&mut hw);
    // 4096 wide, 16 layers, 8 KV heads of 128.
    let shape = llama(16, 4096, 14336, 32, 8, 32000, false);
    let m = input("wide", shape.clone(), FileType::Q8_0);
    let opts = PredictOptions::default();

    // Decode, bandwidth bound: the candidate's own attention at its position (per layer and
    // position: 32 query heads and 8 KV heads of 128 at their costs), plus its bytes at the rate the
    // benchmark's time gives once the benchmark model's own attention (12 layers, 16 query and 4
    // KV heads of 64, position 256 + 64 / 2) is taken out of it.
    let recorded_s = 1.0 / q.decode_tokens_per_s.median;
    let net_s = recorded_s - 12.0 * 288.0 * slope(16.0, 4.0, 64.0);
    let mut deep = shape.clone();
    deep.n_layers = 32;
    deep.n_ff /= 2;
    let d = input("deep", deep, FileType::Q8_0);
    for (model, layers, prompt) in [(&m, 16.0, 128), (&m, 16.0, 2048), (&d, 32.0, 128)] {
        let p = predict(&hw, Some(&grown), model, &workload(prompt, 32, 4096), &opts);
        let pos = prompt as f64 + 16.0;
        let expect = layers * pos * slope(32.0, 8.0, 128.0)
            + p.weight_bytes_per_token as f64 / (q.params as f64 * 1.0625) * net_s;
        let got = 1.0 / p.decode_tokens_per_s;
        assert!(
            (got / expect - 1.0).abs() < 1e-9,
            "{} at {prompt}: {got} vs {expect}",
            model.label
        );
        // Without the measurements the KV cache is bytes read, and there is no layer term.
        let p0 = predict(&hw, Some(&plain), model, &workload(prompt, 32, 4096), &opts);
        let kv_bytes = 2.0 * layers * pos * 1024.0 * 2.0;
        let expect0 =
            (p0.weight_bytes_per_token as f64 + kv_bytes) / (q.params as f64 * 1.0625) * recorded_s;
        assert!((1.0 / p0.decode_tokens_per_s / expect0 - 1.0).abs() < 1e-9);
    }

    // Prefill: the matrices at their type's rate, attention at its own measured rate, the output
    // matrix and the last layer's feed-forward once, at what decoding reads of them costs.
    let p = predict(&hw, Some(&grown), &m, &workload(512, 16, 4096), &opts);
    let (per_token, once) = crate::gguf::prefill_weights(&m.tensors, 16, false);
    let attention_flop = 4.0 * 16.0 * 4096.0 * 256.0;
    let once_s = once as f64 * net_s / q.params as f64;
    let expect = 512.0 * (2.0 * per_token as f64 / flops + attention_flop / attention) + once_s;
    assert!(
        (p.prefill_s / expect - 1.0).abs() < 1e-6,
        "{} vs {expect}",
        p.prefill_s
    );

    // A second growth on heads of 128 at twice the rate: this model's heads are 128, so its
    // attention takes half the time; heads of 90 (about the log middle of 64 and 128) get 1.5
    // times the 64-dimension rate.
    let mut wide = grown.clone();
    let mut g128 = wide.context_growth.clone().unwrap();
    g128.head_dim = 128;
    g128.prefill_attention_flops_per_s = Some(2.0 * attention);
    wide.context_growth_wide_heads = Some(g128);
    let p2 = predict(&hw, Some(&wide), &m, &workload(512, 16, 4096), &opts);
    let attention_s = 512.0 * attention_flop / attention;
    assert!(
        ((p.prefill_s - p2.prefill_s) / (attention_s / 2.0) - 1.0).abs() < 1e-6,
        "{} vs {}",
        p.prefill_s,
        p2.prefill_s
    );
    let rates = crate::predict::rates::cpu_rates(&hw, Some(&wide));
    let mid = rates.prefill_attention_rate(90).unwrap() / attention;
    assert!((mid - 1.49).abs() < 0.02, "{mid}");
    assert_eq!(rates.prefill_attention_rate(256), Some(2.0 * attention));
    assert_eq!(rates.prefill_attention_rate(32), Some(attention));
}
