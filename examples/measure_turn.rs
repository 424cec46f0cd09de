//! Measure one conversational turn of a GGUF with llama.cpp, for `bench/bench-accuracy.sh`: load
//! the model, then repeat "prefill a prompt of P tokens into an empty KV cache, generate R tokens
//! greedily" in a context of C tokens, after one discarded warm-up (page faults, weight
//! repacking, thread-pool start). Reports wall-clock medians, llama.cpp's own counters and the
//! rates by on-CPU time (which leave out time the threads were descheduled) as one JSON line.
//!
//! Usage: measure_turn MODEL [--threads N] [--prompt-tokens P] [--response-tokens R] [--ctx C] [--reps N]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;

use minerva_setup::llama;

/// Special tokens of generated models are skipped when making up prompts.
const PROMPT_SKIP: i32 = 8;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut model_path: Option<PathBuf> = None;
    let (mut threads, mut prompt, mut response, mut ctx, mut reps) =
        (2u32, 256u32, 64u32, 1024u32, 3u32);
    while let Some(a) = args.next() {
        let mut num = || -> Result<u32, Box<dyn std::error::Error>> {
            Ok(args.next().ok_or("missing value")?.parse()?)
        };
        match a.as_str() {
            "--threads" => threads = num()?,
            "--prompt-tokens" => prompt = num()?,
            "--response-tokens" => response = num()?,
            "--ctx" => ctx = num()?,
            "--reps" => reps = num()?.max(1),
            _ if a.starts_with("--") => return Err(format!("unknown flag `{a}`").into()),
            _ => model_path = Some(PathBuf::from(a)),
        }
    }
    let path = model_path.ok_or(
        "usage: measure_turn MODEL [--threads N] [--prompt-tokens P] [--response-tokens R] [--ctx C] [--reps N]",
    )?;
    if prompt + response > ctx {
        return Err(format!(
            "{prompt} prompt + {response} response tokens exceed the context {ctx}"
        )
        .into());
    }

    let backend = llama::backend(false)?;
    let model = llama::load(backend, &path, 0)?;
    let n_batch = prompt.max(512);
    let mut s = model.session(backend, threads, ctx, n_batch)?;
    let tokens = llama::prompt_tokens(prompt, model.n_vocab(), PROMPT_SKIP);

    // Warm-up, discarded: a short prompt and a few tokens read every weight once.
    s.prefill(&tokens[..prompt.min(32) as usize])?;
    s.generate(4)?;

    let (mut prefill_tps, mut decode_tps, mut turn_s) = (Vec::new(), Vec::new(), Vec::new());
    let (mut llama_prefill_tps, mut llama_decode_tps) = (Vec::new(), Vec::new());
    let (mut prefill_cpu_tps, mut decode_cpu_tps) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        s.reset_counters();
        let c0 = on_cpu_s();
        let p_s = s.prefill(&tokens)?;
        let c1 = on_cpu_s();
        let d_s = s.generate(response)?;
        let c2 = on_cpu_s();
        if let (Some(c0), Some(c1), Some(c2)) = (c0, c1, c2) {
            // Seconds the threads were on a CPU, per thread: with one thread, the time the turn
            // would take if no other process had been scheduled in between.
            prefill_cpu_tps.push(prompt as f64 / ((c1 - c0) / threads as f64));
            decode_cpu_tps.push(response as f64 / ((c2 - c1) / threads as f64));
        }
        let (p_ms, p_n, d_ms, d_n) = s.counters();
        prefill_tps.push(prompt as f64 / p_s);
        decode_tps.push(response as f64 / d_s);
        turn_s.push(p_s + d_s);
        if p_ms > 0.0 && d_ms > 0.0 {
            llama_prefill_tps.push(p_n as f64 / (p_ms / 1e3));
            llama_decode_tps.push(d_n as f64 / (d_ms / 1e3));
        }
    }
    let spread = |v: &[f64]| {
        let (lo, hi) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
        (hi - lo) / median(v)
    };
    println!(
        "{{\"model\": {:?}, \"threads\": {threads}, \"prompt_tokens\": {prompt}, \"response_tokens\": {response}, \"context_tokens\": {ctx}, \"reps\": {reps}, \"load_s\": {:.3}, \"prefill_tokens_per_s\": {:.3}, \"decode_tokens_per_s\": {:.3}, \"decode_spread\": {:.3}, \"turn_s\": {:.3}, \"llama_prefill_tokens_per_s\": {:.3}, \"llama_decode_tokens_per_s\": {:.3}, \"on_cpu_prefill_tokens_per_s\": {:.3}, \"on_cpu_decode_tokens_per_s\": {:.3}}}",
        path.display().to_string(),
        model.load_s,
        median(&prefill_tps),
        median(&decode_tps),
        spread(&decode_tps),
        median(&turn_s),
        median(&llama_prefill_tps),
        median(&llama_decode_tps),
        median(&prefill_cpu_tps),
        median(&decode_cpu_tps),
    );
    Ok(())
}

/// Seconds this process's threads have been on a CPU (`/proc/self/task/*/schedstat`, Linux).
fn on_cpu_s() -> Option<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}
