//! Several conversations at once: a small, pure, deterministic simulation of the loop of a
//! continuous-batching server (llama-server with `--parallel N`).
//!
//! Each step, every sequence that is decoding contributes one token, and the prompts waiting (in
//! arrival order) fill what is left of the batch, up to `n_batch` tokens, in chunks. A prompt's
//! answer starts in the step after its last chunk, and its first token arrives at the end of that
//! step: for one user this is exactly the one-user formula, `ttft = prefill + one decode step` and
//! `turn = prefill + response × decode step`. (llama.cpp samples the first token from the
//! prompt's own step, so a real server takes one decode step less per turn: a pessimistic margin
//! of one step, kept so that one user is exactly the one-user prediction.) Users form the closed loop of
//! [`crate::types::workload`]: user `i` first sends at `i × stagger`, then sends again the moment
//! its answer is complete.
//!
//! What a step costs comes from a [`StepCost`]: in a prediction, [`MeasuredStepCost`] — the
//! one-sequence decode step plus what the benchmark measured B sequences to add, per type of the
//! model's weights and scaled by them, and prompt chunks at the prefill rate. Knows nothing
//! about llama.cpp, files or tiers.

use crate::types::bench::BatchDecode;
use crate::types::workload::UserLatencies;

/// The cost in seconds of one step of the server loop.
pub trait StepCost {
    /// A step in which `decoding` sequences each add one token and `prompt_tokens` prompt tokens
    /// are evaluated, of which `prompts_done` prompts end in this step.
    fn step_s(&self, decoding: u32, prompt_tokens: u32, prompts_done: u32) -> f64;
}

/// The step cost a prediction uses, from the predicted one-user rates (correction applied).
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredStepCost {
    /// A decode step with one sequence.
    pub decode_token_s: f64,
    /// Prefill per prompt token (weights and attention).
    pub prefill_token_s: f64,
    /// Prefill once per prompt (the output matrix for its last token).
    pub prefill_once_s: f64,
    /// What sequences beyond the first add to a decode step, per type of the model's weights
    /// (see [`MeasuredStepCost::decode_step_s`]); empty: every sequence costs a whole step (no
    /// batching gain, an upper bound).
    pub batch: Vec<BatchPart>,
}

/// One type's part of a batched decode step: the benchmark's curve measured on a model of that
/// type, and the model's weights of the type per weight of that benchmark model (times any
/// calibration the one-sequence step gets).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchPart {
    pub weights_scale: f64,
    pub curve: BatchDecode,
}

impl MeasuredStepCost {
    /// A decode step with `b` sequences: the one-sequence step plus, for each type, the seconds
    /// the benchmark measured `b` sequences to add over one on its model, times the model's
    /// weights of that type over the benchmark model's. A sequence more is not a second read of
    /// the weights (that is the one-sequence step) but one more vector through every matrix,
    /// the output matrix included, as each sequence needs its own logits: its cost grows with
    /// the weights of each type, not with the step, so a model with a 150 k-token output
    /// matrix or with fallback rows of a slow type batches worse than the benchmark's own
    /// model. Never cheaper than a step with fewer sequences.
    pub fn decode_step_s(&self, b: u32) -> f64 {
        let b = b.max(1);
        if self.batch.is_empty() {
            return self.decode_token_s * b as f64;
        }
        // Each part's extra never falls as b grows (BatchDecode::extra_step_s), so neither does
        // the sum.
        let extra: f64 = self
            .batch
            .iter()
            .map(|p| p.weights_scale * p.curve.extra_step_s(b).unwrap_or(0.0))
            .sum();
        self.decode_token_s + extra
    }

    /// A decode step with `b` sequences over one with a single sequence.
    pub fn batch_ratio(&self, b: u32) -> f64 {
        self.decode_step_s(b) / self.decode_token_s.max(f64::MIN_POSITIVE)
    }
}

impl StepCost for MeasuredStepCost {
    /// Decoding alone is bound by reading the weights once for the whole batch (the measured
    /// curve). With a prompt chunk the batch is compute-bound: every token in it, the decoding
    /// ones included, costs a prompt token, and each prompt that ends pays its output matrix.
    fn step_s(&self, decoding: u32, prompt_tokens: u32, prompts_done: u32) -> f64 {
        let decode_s = if decoding > 0 {
            self.decode_step_s(decoding)
        } else {
            0.0
        };
        if prompt_tokens == 0 {
            return decode_s;
        }
        let batch_s = (prompt_tokens + decoding) as f64 * self.prefill_token_s;
        decode_s.max(batch_s) + prompts_done as f64 * self.prefill_once_s
    }
}

/// Who is served, how much, how often.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scenario {
    pub users: u32,
    pub prompt_tokens: u32,
    pub response_tokens: u32,
    pub turns_per_user: u32,
    /// User `i` sends its first prompt at `i × stagger_s`.
    pub stagger_s: f64,
    /// Tokens per step at most (llama.cpp's `n_batch`).
    pub n_batch: u32,
}

/// One completed turn of one user.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnTiming {
    pub user: u32,
    /// Seconds from the prompt's arrival to the first answer token.
    pub ttft_s: f64,
    /// Seconds from the prompt's arrival to the last answer token.
    pub turn_s: f64,
}

/// Every turn of a simulated run, in order of completion, and the run's end.
#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    pub turns: Vec<TurnTiming>,
    pub generated_tokens: u64,
    /// When the last answer was complete (the first user's first prompt arrives at 0).
    pub wall_s: f64,
    pub steps: u64,
}

impl Simulation {
    /// p50/p95 per user and the aggregate tokens/s.
    pub fn latencies(&self, sc: &Scenario) -> UserLatencies {
        let turns: Vec<(f64, f64)> = self.turns.iter().map(|t| (t.ttft_s, t.turn_s)).collect();
        UserLatencies::from_turns(
            sc.users.max(1),
            sc.stagger_s,
            &turns,
            self.generated_tokens,
            self.wall_s,
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum UserState {
    /// The next prompt arrives at this time.
    Waiting {
        arrives_s: f64,
    },
    Prompt {
        arrived_s: f64,
        done: u32,
    },
    Decoding {
        arrived_s: f64,
        generated: u32,
        first_token_s: f64,
    },
    Finished,
}

/// Run the server loop for `sc` with step costs from `cost`.
pub fn simulate(sc: &Scenario, cost: &dyn StepCost) -> Simulation {
    let users = sc.users.max(1);
    let prompt = sc.prompt_tokens.max(1);
    let response = sc.response_tokens.max(1);
    let turns_per_user = sc.turns_per_user.max(1);
    let n_batch = sc.n_batch.max(1);
    let mut state: Vec<UserState> = (0..users)
        .map(|i| UserState::Waiting {
            arrives_s: i as f64 * sc.stagger_s.max(0.0),
        })
        .collect();
    let mut turns_done = vec![0u32; users as usize];
    let mut out = Simulation {
        turns: Vec::new(),
        generated_tokens: 0,
        wall_s: 0.0,
        steps: 0,
    };
    let mut t = 0.0f64;
    loop {
        // Arrivals up to now join the prompt queue.
        for s in state.iter_mut() {
            if let UserState::Waiting { arrives_s } = *s {
                if arrives_s <= t {
                    *s = UserState::Prompt {
                        arrived_s: arrives_s,
                        done: 0,
                    };
                }
            }
        }
        let decoding: Vec<usize> = (0..state.len())
            .filter(|&i| matches!(state[i], UserState::Decoding { .. }))
            .collect();
        let mut queue: Vec<(usize, f64)> = state
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                UserState::Prompt { arrived_s, .. } => Some((i, *arrived_s)),
                _ => None,
            })
            .collect();
        queue.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        if decoding.is_empty() && queue.is_empty() {
            // Idle: jump to the next arrival, or stop when every user is done.
            let next = state
                .iter()
                .filter_map(|s| match s {
                    UserState::Waiting { arrives_s } => Some(*arrives_s),
                    _ => None,
                })
                .reduce(f64::min);
            match next {
                Some(n) => {
                    t = t.max(n);
                    continue;
                }
                None => break,
            }
        }
        // The batch: one token per decoding sequence, then prompt chunks in arrival order.
        let mut room = n_batch.saturating_sub(decoding.len() as u32);
        let mut chunks: Vec<(usize, u32)> = Vec::new();
        for &(i, _) in &queue {
            if room == 0 {
                break;
            }
            if let UserState::Prompt { done, .. } = state[i] {
                let take = (prompt - done).min(room);
                room -= take;
                chunks.push((i, take));
            }
        }
        let prompt_tokens: u32 = chunks.iter().map(|c| c.1).sum();
        let prompts_done = chunks
            .iter()
            .filter(|&&(i, take)| matches!(state[i], UserState::Prompt { done, .. } if done + take == prompt))
            .count() as u32;
        t += cost
            .step_s(decoding.len() as u32, prompt_tokens, prompts_done)
            .max(0.0);
        out.steps += 1;
        for &i in &decoding {
            if let UserState::Decoding {
                arrived_s,
                generated,
                first_token_s,
            } = state[i]
            {
                let generated = generated + 1;
                let first_token_s = if generated == 1 { t } else { first_token_s };
                out.generated_tokens += 1;
                state[i] = if generated < response {
                    UserState::Decoding {
                        arrived_s,
                        generated,
                        first_token_s,
                    }
                } else {
                    out.turns.push(TurnTiming {
                        user: i as u32,
                        ttft_s: first_token_s - arrived_s,
                        turn_s: t - arrived_s,
                    });
                    out.wall_s = t;
                    turns_done[i] += 1;
                    if turns_done[i] < turns_per_user {
                        // Closed loop: the next turn is sent as soon as the answer is complete.
                        UserState::Prompt {
                            arrived_s: t,
                            done: 0,
                        }
                    } else {
                        UserState::Finished
                    }
                };
            }
        }
        for (i, take) in chunks {
            if let UserState::Prompt { arrived_s, done } = state[i] {
                state[i] = if done + take == prompt {
                    UserState::Decoding {
                        arrived_s,
                        generated: 0,
                        first_token_s: 0.0,
                    }
                } else {
                    UserState::Prompt {
                        arrived_s,
                        done: done + take,
                    }
                };
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A step cost given by a closure, for hand-computed cases.
    struct Cost<F: Fn(u32, u32, u32) -> f64>(F);
    impl<F: Fn(u32, u32, u32) -> f64> StepCost for Cost<F> {
        fn step_s(&self, d: u32, p: u32, done: u32) -> f64 {
            (self.0)(d, p, done)
        }
    }

    fn scenario(users: u32, stagger_s: f64) -> Scenario {
        Scenario {
            users,
            prompt_tokens: 500,
            response_tokens: 150,
            turns_per_user: 2,
            stagger_s,
            n_batch: 512,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    fn curve(ggml_type: &str, points: &[(u32, f64)]) -> BatchDecode {
        BatchDecode {
            ggml_type: ggml_type.into(),
            backend: crate::types::bench::BenchBackend::Cpu,
            params: 1,
            context_tokens: 128,
            steps: points
                .iter()
                .map(|&(sequences, s)| crate::types::bench::BatchStep {
                    sequences,
                    step_s: crate::types::bench::Stat::single(s),
                })
                .collect(),
        }
    }

    #[test]
    fn a_batched_step_adds_each_types_measured_extra_scaled_by_its_weights() {
        // Twice the benchmark model's weights in Q5_0, whose two-sequence point lies below its
        // one-sequence one (a different kernel), and half of them in Q6_K.
        let cost = MeasuredStepCost {
            decode_token_s: 0.03,
            prefill_token_s: 0.001,
            prefill_once_s: 0.0,
            batch: vec![
                BatchPart {
                    weights_scale: 2.0,
                    curve: curve("Q5_0", &[(1, 0.010), (2, 0.009), (4, 0.012)]),
                },
                BatchPart {
                    weights_scale: 0.5,
                    curve: curve("Q6_K", &[(1, 0.010), (2, 0.014), (4, 0.020)]),
                },
            ],
        };
        assert!(close(cost.decode_step_s(1), 0.03));
        // Q5_0 adds nothing at 2 (never less than one sequence), Q6_K 4 ms × 0.5.
        assert!(close(cost.decode_step_s(2), 0.03 + 0.002));
        // At 3, halfway: Q5_0 between its raised 2-point (10 ms) and 12 ms, 1 ms × 2; Q6_K
        // 7 ms × 0.5.
        assert!(close(cost.decode_step_s(3), 0.03 + 0.002 + 0.0035));
        assert!(close(cost.decode_step_s(4), 0.03 + 0.004 + 0.005));
        assert!(close(cost.batch_ratio(4), 0.039 / 0.03));
        // Beyond 4 along the last slopes: Q5_0 1 ms, Q6_K 3 ms per sequence.
        assert!(close(
            cost.decode_step_s(6),
            0.03 + 2.0 * 0.004 + 0.5 * 0.016
        ));
        // Without a curve, every sequence costs a whole step.
        let unmeasured = MeasuredStepCost {
            batch: Vec::new(),
            ..cost
        };
        assert!(close(unmeasured.decode_step_s(4), 0.12));
    }

    #[test]
    fn one_user_is_the_one_user_formula() {
        // 500 prompt tokens at 10 ms + 0.2 s once = 5.2 s of prefill; 150 steps of 50 ms.
        let cost = MeasuredStepCost {
            decode_token_s: 0.05,
            prefill_token_s: 0.01,
            prefill_once_s: 0.2,
            batch: Vec::new(),
        };
        let sc = scenario(1, 1.0);
        let sim = simulate(&sc, &cost);
        assert_eq!(sim.turns.len(), 2);
        for t in &sim.turns {
            assert!(close(t.ttft_s, 5.2 + 0.05), "{t:?}");
            assert!(close(t.turn_s, 5.2 + 150.0 * 0.05), "{t:?}");
        }
        let l = sim.latencies(&sc);
        assert!(close(l.turn_p50_s, 12.7) && close(l.turn_p95_s, 12.7));
        // Two turns back to back: 300 tokens in 25.4 s.
        assert!(close(l.aggregate_tokens_per_s, 300.0 / 25.4));
    }

    #[test]
    fn a_prompt_longer_than_the_batch_takes_several_steps() {
        // 1200 tokens in chunks of 512, 512, 176 at 1 ms each, then 10 steps of 10 ms.
        let cost = Cost(|d, p, _| {
            if p > 0 {
                p as f64 * 0.001
            } else {
                d as f64 * 0.01
            }
        });
        let sc = Scenario {
            prompt_tokens: 1200,
            response_tokens: 10,
            turns_per_user: 1,
            ..scenario(1, 0.0)
        };
        let sim = simulate(&sc, &cost);
        assert_eq!(sim.steps, 3 + 10);
        assert!(close(sim.turns[0].turn_s, 1.2 + 0.1));
    }

    /// Users who all ask at once with prompts short enough (50 tokens) that eight fit in one
    /// 512-token batch.
    fn together(users: u32) -> Scenario {
        Scenario {
            prompt_tokens: 50,
            ..scenario(users, 0.0)
        }
    }

    #[test]
    fn free_batching_gives_each_of_n_users_the_one_user_turn() {
        // Every step costs 40 ms whatever it holds: prompts in one step, answers in 150.
        let cost = Cost(|_, _, _| 0.04);
        let one = simulate(&together(1), &cost);
        for users in [2, 4, 8] {
            let sc = together(users);
            let sim = simulate(&sc, &cost);
            assert_eq!(sim.turns.len() as u32, 2 * users);
            for t in &sim.turns {
                assert!(close(t.turn_s, one.turns[0].turn_s), "{users} users: {t:?}");
                assert!(close(t.turn_s, 0.04 * 151.0));
            }
            let l = sim.latencies(&sc);
            // N users' answers in the time of one user's: N× the aggregate rate.
            assert!(close(
                l.aggregate_tokens_per_s,
                users as f64 * one.latencies(&together(1)).aggregate_tokens_per_s
            ));
        }
    }

    #[test]
    fn linear_cost_gives_n_times_the_decode_time() {
        // Prompts are free; a decode step costs 20 ms per sequence in it.
        let cost = Cost(|d, _, _| d as f64 * 0.02);
        let one = simulate(&together(1), &cost).turns[0].turn_s;
        assert!(close(one, 150.0 * 0.02));
        for users in [2, 3, 4] {
            let sim = simulate(&together(users), &cost);
            for t in &sim.turns {
                assert!(close(t.turn_s, users as f64 * one), "{users} users: {t:?}");
            }
        }
    }

    #[test]
    fn a_staggered_user_waits_for_the_step_in_flight_and_shares_the_rest() {
        // Stagger 0.5 s, 500-token prompts at 2 ms a token, decode steps 0.1 s with one sequence
        // and 0.15 s with two. User 1 arrives at 0.5 s while user 0's prompt step (0–1 s) is in
        // flight, and waits for it; its prompt then rides with user 0's first token in a
        // compute-bound step of 501 tokens (1.002 s).
        let cost = MeasuredStepCost {
            decode_token_s: 0.1,
            prefill_token_s: 0.002,
            prefill_once_s: 0.0,
            batch: vec![BatchPart {
                weights_scale: 1.0,
                curve: curve("Q4_K", &[(1, 0.1), (2, 0.15)]),
            }],
        };
        let sc = Scenario {
            turns_per_user: 1,
            response_tokens: 3,
            ..scenario(2, 0.5)
        };
        let sim = simulate(&sc, &cost);
        let u1 = sim.turns.iter().find(|t| t.user == 1).unwrap();
        // Steps: [0, 1.0] prompt 0; [1.0, 2.002] u0 token 1 + prompt 1; [2.002, 2.152] u0 token 2
        // + u1 token 1; [2.152, 2.302] u0 token 3 (done) + u1 token 2; [2.302, 2.402] u1 token 3.
        assert!(close(u1.ttft_s, 2.152 - 0.5), "{u1:?}");
        assert!(close(u1.turn_s, 2.402 - 0.5), "{u1:?}");
        let u0 = sim.turns.iter().find(|t| t.user == 0).unwrap();
        assert!(close(u0.ttft_s, 2.002), "{u0:?}");
        assert!(close(u0.turn_s, 2.302), "{u0:?}");
        assert_eq!(sim.steps, 5);
    }
}
