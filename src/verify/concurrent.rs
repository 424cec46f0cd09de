//! Verification with several conversations at once: `concurrency` users in one llama.cpp context
//! (one sequence id each, one KV cache shared by all), served by the loop a continuous-batching
//! server runs and the prediction simulates (`predict::concurrency`): each step, every decoding
//! conversation adds one token and the waiting prompts fill the rest of the batch in chunks.
//! Users form the same closed loop: user `i` first sends at `i × stagger`, then again as soon as
//! its answer is complete, [`TURNS_PER_USER`] turns each. Each turn's time to first token and
//! turn are measured on the wall clock from its prompt's arrival, after the warm-up evaluation
//! llama-server also runs at start-up (counted in the load time).

use std::path::Path;
use std::time::{Duration, Instant};

use llama_cpp_2::token::LlamaToken;

use super::{
    after_turn_checks, prepare, Answer, Prepared, VerifyError, VerifyReport, VerifySettings,
};
use crate::llama::{self, BatchToken, LlamaError};
use crate::progress::{Progress, Unit};
use crate::types::time;
use crate::types::workload::{UserLatencies, DEFAULT_STAGGER_S, TURNS_PER_USER};

/// Tokens one step may hold, as llama-server's default micro-batch (`predict::UBATCH_TOKENS`).
const N_BATCH: u32 = 512;

/// Where one user is in its turn.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Waiting {
        arrives: Instant,
    },
    Prompt {
        arrived: Instant,
        done: u32,
    },
    Decoding {
        arrived: Instant,
        first_token: Instant,
        generated: u32,
        pos: i32,
        last: LlamaToken,
    },
    Finished,
}

/// Run `settings.concurrency` conversations at once on `path` and measure every turn. The
/// report's `ttft_s` and `turn_s` are the p95 per-user figures (what a promise is held to),
/// `decode_tokens_per_s` one user's rate at the p50, and `concurrency` has the p50/p95 and the
/// aggregate tokens/s.
pub fn run_concurrent(
    path: &Path,
    settings: &VerifySettings,
    progress: &dyn Progress,
) -> Result<VerifyReport, VerifyError> {
    let users = settings.concurrency.max(1);
    let Prepared {
        architecture,
        backend,
        cpu_variant,
        loaded,
        model_load_s,
        chat,
        prompt,
        mut notes,
    } = prepare(path, settings, progress)?;
    let chat_template_used = chat.check.applied;
    let start = Instant::now();
    // One KV cache for all conversations: `users × context_tokens` cells, as llama-server's
    // `--ctx-size` with `--parallel users`.
    let mut ms = loaded.multi_session(
        backend,
        settings.threads,
        settings.context_tokens.saturating_mul(users),
        N_BATCH,
        users,
    )?;
    warm_up(&mut ms, &prompt)?;
    let load_s = model_load_s + start.elapsed().as_secs_f64();
    progress.finish();

    let response = settings.response_tokens.max(1);
    let total_tokens = u64::from(users) * u64::from(TURNS_PER_USER) * u64::from(response);
    progress.phase_counting(
        &format!("running {users} conversations at once"),
        Some(total_tokens),
        Unit::Tokens,
    );
    let prompt_len = prompt.len() as u32;
    let run_start = Instant::now();
    let stagger = Duration::from_secs_f64(DEFAULT_STAGGER_S);
    let mut slots: Vec<Slot> = (0..users)
        .map(|i| Slot::Waiting {
            arrives: run_start + stagger * i,
        })
        .collect();
    let mut turns_done = vec![0u32; users as usize];
    let mut turns: Vec<(f64, f64)> = Vec::new();
    let mut generated_total: u64 = 0;
    let mut run_end = run_start;
    let mut logits_finite = true;
    // The first user's first answer, token by token: the capability checks judge it.
    let mut first_answer: Vec<LlamaToken> = Vec::new();

    'serve: loop {
        let now = Instant::now();
        for s in slots.iter_mut() {
            if let Slot::Waiting { arrives } = *s {
                if arrives <= now {
                    *s = Slot::Prompt {
                        arrived: arrives,
                        done: 0,
                    };
                }
            }
        }
        // The batch: one token per decoding conversation, then prompt chunks in arrival order.
        let mut batch: Vec<BatchToken> = Vec::new();
        let mut decoding: Vec<(usize, usize)> = Vec::new(); // (user, index in batch)
        for (i, s) in slots.iter().enumerate() {
            if let Slot::Decoding { pos, last, .. } = *s {
                decoding.push((i, batch.len()));
                batch.push(BatchToken {
                    token: last,
                    pos,
                    seq: i as i32,
                    logits: true,
                });
            }
        }
        let mut queue: Vec<(usize, Instant, u32)> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match *s {
                Slot::Prompt { arrived, done } => Some((i, arrived, done)),
                _ => None,
            })
            .collect();
        queue.sort_by_key(|&(i, arrived, _)| (arrived, i));
        let mut chunks: Vec<(usize, u32, Option<usize>)> = Vec::new(); // (user, take, last index)
        let mut room = N_BATCH.saturating_sub(batch.len() as u32);
        for &(i, _, done) in &queue {
            if room == 0 {
                break;
            }
            let take = (prompt_len - done).min(room);
            room -= take;
            let ends = done + take == prompt_len;
            for k in done..done + take {
                batch.push(BatchToken {
                    token: prompt[k as usize],
                    pos: k as i32,
                    seq: i as i32,
                    logits: ends && k + 1 == prompt_len,
                });
            }
            chunks.push((i, take, ends.then(|| batch.len() - 1)));
        }
        if batch.is_empty() {
            let next = slots
                .iter()
                .filter_map(|s| match *s {
                    Slot::Waiting { arrives } => Some(arrives),
                    _ => None,
                })
                .min();
            match next {
                Some(t) => {
                    std::thread::sleep(t.saturating_duration_since(Instant::now()));
                    continue;
                }
                None => break,
            }
        }
        ms.decode(&batch)?;
        let now = Instant::now();
        // Decoding conversations: one token each; a finished answer sends the next turn.
        for &(i, j) in &decoding {
            let Slot::Decoding {
                arrived,
                first_token,
                generated,
                pos,
                ..
            } = slots[i]
            else {
                continue;
            };
            let Some(token) = next_token(&ms, j)? else {
                logits_finite = false;
                break 'serve;
            };
            if i == 0 && turns_done[0] == 0 {
                first_answer.push(token);
            }
            generated_total += 1;
            let generated = generated + 1;
            slots[i] = if generated < response {
                Slot::Decoding {
                    arrived,
                    first_token,
                    generated,
                    pos: pos + 1,
                    last: token,
                }
            } else {
                end_turn(&mut ms, i, arrived, first_token, now, &mut turns)?;
                run_end = now;
                turns_done[i] += 1;
                next_turn(turns_done[i], now)
            };
        }
        // Prompts that ended in this step: their first token comes from this step's logits.
        for (i, take, last_index) in chunks {
            let Slot::Prompt { arrived, done } = slots[i] else {
                continue;
            };
            let Some(j) = last_index else {
                slots[i] = Slot::Prompt {
                    arrived,
                    done: done + take,
                };
                continue;
            };
            let Some(token) = next_token(&ms, j)? else {
                logits_finite = false;
                break 'serve;
            };
            if i == 0 && turns_done[0] == 0 {
                first_answer.push(token);
            }
            generated_total += 1;
            slots[i] = if response > 1 {
                Slot::Decoding {
                    arrived,
                    first_token: now,
                    generated: 1,
                    pos: prompt_len as i32,
                    last: token,
                }
            } else {
                end_turn(&mut ms, i, arrived, now, now, &mut turns)?;
                run_end = now;
                turns_done[i] += 1;
                next_turn(turns_done[i], now)
            };
        }
        progress.position(generated_total);
    }
    progress.finish();
    if generated_total == 0 && logits_finite {
        return Err(VerifyError::NoTokens {
            path: path.to_path_buf(),
        });
    }
    let wall_s = run_end.saturating_duration_since(run_start).as_secs_f64();
    let lat = UserLatencies::from_turns(users, DEFAULT_STAGGER_S, &turns, generated_total, wall_s);
    notes.push(format!(
        "{users} conversations at once in one context ({} KV cells), {} turns each, first prompts {:.1} s apart: turn p50 {:.2} s, p95 {:.2} s; first token p50 {:.2} s, p95 {:.2} s; {:.1} tok/s in all",
        settings.context_tokens.saturating_mul(users),
        TURNS_PER_USER,
        DEFAULT_STAGGER_S,
        lat.turn_p50_s,
        lat.turn_p95_s,
        lat.ttft_p50_s,
        lat.ttft_p95_s,
        lat.aggregate_tokens_per_s
    ));
    let mut sample = Vec::new();
    let mut answer_bytes = Vec::new();
    let mut answer_tokens: Option<u32> = None;
    for (k, &t) in first_answer.iter().enumerate() {
        let piece = loaded.piece(t);
        if answer_tokens.is_none() {
            if loaded.is_end_of_generation(t) {
                answer_tokens = Some(k as u32);
            } else {
                answer_bytes.extend_from_slice(&piece);
            }
        }
        sample.extend_from_slice(&piece);
    }
    let utf8_valid = std::str::from_utf8(&sample).is_ok();
    let text = String::from_utf8_lossy(&sample);
    let capabilities = after_turn_checks(
        backend,
        &loaded,
        &chat,
        settings,
        Answer {
            bytes: &answer_bytes,
            tokens: answer_tokens,
            generated: first_answer.len() as u32,
        },
        logits_finite,
        progress,
    );
    let per_user_decode_s = (lat.turn_p50_s - lat.ttft_p50_s).max(1e-9);
    Ok(VerifyReport {
        schema_version: super::VERIFY_SCHEMA_VERSION,
        model_path: path.to_path_buf(),
        architecture,
        settings: settings.clone(),
        chat_template_used,
        prompt_tokens: prompt_len,
        generated_tokens: generated_total.min(u64::from(u32::MAX)) as u32,
        load_s,
        ttft_s: lat.ttft_p95_s,
        prefill_tokens_per_s: prompt_len as f64 / lat.ttft_p50_s.max(1e-9),
        decode_tokens_per_s: if response > 1 {
            (response - 1) as f64 / per_user_decode_s
        } else {
            0.0
        },
        turn_s: lat.turn_p95_s,
        cold_turn_s: load_s + lat.turn_p95_s,
        logits_finite,
        utf8_valid,
        output_sample: text.chars().take(200).collect(),
        at: time::now(),
        notes,
        // On the first user's first answer, after the timed run, as for one user.
        capabilities: Some(capabilities),
        concurrency: Some(lat),
        cpu_variant: Some(cpu_variant),
    })
}

/// The greedy next token from sequence `j`'s logits of the last step; `None` when they are not
/// finite (the run stops there and reports it).
fn next_token(ms: &llama::MultiSession<'_>, j: usize) -> Result<Option<LlamaToken>, LlamaError> {
    match ms.argmax(j) {
        Ok(t) => Ok(Some(t)),
        Err(LlamaError::NonFiniteLogits { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One short evaluation before serving, discarded, as llama-server runs at start-up (its
/// default warm-up): page faults, repacked weights and the thread pool are paid for here, at
/// load, not by the first user.
fn warm_up(ms: &mut llama::MultiSession<'_>, prompt: &[LlamaToken]) -> Result<(), LlamaError> {
    let n = prompt.len().min(WARMUP_TOKENS);
    let batch: Vec<BatchToken> = prompt[..n]
        .iter()
        .enumerate()
        .map(|(i, &token)| BatchToken {
            token,
            pos: i as i32,
            seq: 0,
            logits: i + 1 == n,
        })
        .collect();
    if !batch.is_empty() {
        ms.decode(&batch)?;
    }
    ms.clear();
    Ok(())
}

/// Tokens of the warm-up evaluation.
const WARMUP_TOKENS: usize = 16;

/// Record a finished turn and free its conversation's KV cells.
fn end_turn(
    ms: &mut llama::MultiSession<'_>,
    user: usize,
    arrived: Instant,
    first_token: Instant,
    now: Instant,
    turns: &mut Vec<(f64, f64)>,
) -> Result<(), LlamaError> {
    turns.push((
        first_token.saturating_duration_since(arrived).as_secs_f64(),
        now.saturating_duration_since(arrived).as_secs_f64(),
    ));
    ms.clear_seq(user as i32)
}

/// Closed loop: the next prompt arrives the moment an answer is complete, until the user's
/// turns are done.
fn next_turn(done: u32, now: Instant) -> Slot {
    if done < TURNS_PER_USER {
        Slot::Prompt {
            arrived: now,
            done: 0,
        }
    } else {
        Slot::Finished
    }
}
