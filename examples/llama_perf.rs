//! An independent llama.cpp measurement for `bench/bench-vs-llama.sh`: load a GGUF, then repeat
//! "prefill a prompt, generate greedily" and report llama.cpp's own perf counters
//! (`llama_perf_context`: prompt-eval and eval milliseconds and token counts), not our clocks.
//!
//! It uses `llama-cpp-2` directly, with llama.cpp's greedy sampler, and none of minerva-setup's
//! benchmark code, so that the two figures are measured two ways.
//!
//! Usage: llama_perf MODEL [--threads N] [--prompt-tokens N] [--gen-tokens N] [--reps N]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::num::NonZeroU32;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut model_path = None;
    let (mut threads, mut prompt, mut gen, mut reps) = (2i32, 128usize, 32usize, 5usize);
    while let Some(a) = args.next() {
        let mut num = || -> Result<usize, Box<dyn std::error::Error>> {
            Ok(args.next().ok_or("missing value")?.parse()?)
        };
        match a.as_str() {
            "--threads" => threads = num()? as i32,
            "--prompt-tokens" => prompt = num()?,
            "--gen-tokens" => gen = num()?,
            "--reps" => reps = num()?,
            _ => model_path = Some(a),
        }
    }
    let model_path = model_path.ok_or(
        "usage: llama_perf MODEL [--threads N] [--prompt-tokens N] [--gen-tokens N] [--reps N]",
    )?;

    // llama.cpp's CPU kernels chosen and checked as minerva-setup chooses them.
    let chosen = minerva_setup::llama::init(&minerva_setup::llama::BackendConfig {
        simd: minerva_setup::probe::cpu::live_simd(),
        threads: threads.max(1) as u32,
        ..Default::default()
    })?;
    eprintln!("llama.cpp CPU variant {}", chosen.cpu_variant.name);
    let backend = &chosen.llama;
    let t0 = std::time::Instant::now();
    let model = LlamaModel::load_from_file(backend, &model_path, &LlamaModelParams::default())?;
    let load_s = t0.elapsed().as_secs_f64();
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new((prompt + gen + 64) as u32))
        .with_n_batch(prompt as u32)
        .with_n_ubatch(prompt as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_no_perf(false);
    let mut ctx = model.new_context(backend, params)?;
    let n_vocab = model.n_vocab() as u32;
    // A different pseudo-random prompt from the benchmark's (linear congruential, ids >= 16).
    let mut x = 12345u32;
    let tokens: Vec<LlamaToken> = (0..prompt)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            LlamaToken((16 + (x >> 8) % (n_vocab - 16)) as i32)
        })
        .collect();
    let mut sampler = LlamaSampler::greedy();
    let mut batch = LlamaBatch::new(prompt, 1);

    let mut prefill = Vec::new();
    let mut decode = Vec::new();
    let mut decode_wall = Vec::new();
    // Repetition 0 is the warm-up and is discarded.
    for rep in 0..=reps {
        ctx.clear_kv_cache();
        ctx.reset_timings();
        batch.clear();
        for (i, t) in tokens.iter().enumerate() {
            batch.add(*t, i as i32, &[0], i + 1 == tokens.len())?;
        }
        ctx.decode(&mut batch)?;
        let mut next = sampler.sample(&ctx, batch.n_tokens() - 1);
        let gen_start = std::time::Instant::now();
        for i in 0..gen {
            batch.clear();
            batch.add(next, (prompt + i) as i32, &[0], true)?;
            ctx.decode(&mut batch)?;
            next = sampler.sample(&ctx, 0);
        }
        let gen_wall_s = gen_start.elapsed().as_secs_f64();
        let t = ctx.timings();
        if rep > 0 {
            decode_wall.push(gen as f64 / gen_wall_s);
            prefill.push(t.n_p_eval() as f64 / (t.t_p_eval_ms() / 1e3));
            decode.push(t.n_eval() as f64 / (t.t_eval_ms() / 1e3));
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    println!(
        "{{\"model\": {:?}, \"threads\": {threads}, \"load_s\": {load_s:.4}, \"prompt_tokens\": {prompt}, \"gen_tokens\": {gen}, \"reps\": {reps}, \"prefill_tokens_per_s\": {:.2}, \"decode_tokens_per_s\": {:.2}, \"decode_wall_tokens_per_s\": {:.2}}}",
        model_path,
        median(&mut prefill),
        median(&mut decode),
        median(&mut decode_wall)
    );
    Ok(())
}
