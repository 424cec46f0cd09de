//! The workload a promise is made for: one conversational turn, and how many conversations are
//! in flight at once.
//!
//! Several users are modelled as a closed loop, the pattern a chat server sees: each of the
//! `concurrency` users sends its next turn as soon as its answer is complete (no think time), and
//! the users' first prompts start [`DEFAULT_STAGGER_S`] apart (user `i` at `i × stagger`). The
//! prediction (`predict::concurrency`) and the measurement (`verify`) use the same loop, the same
//! stagger and [`TURNS_PER_USER`] turns per user.

use serde::{Deserialize, Serialize};

/// Seconds between the first prompts of consecutive users (user `i` starts at `i × stagger`).
/// One second: users who arrive close together but not in the same instant, so their prompts
/// are evaluated in separate steps while the others decode.
pub const DEFAULT_STAGGER_S: f64 = 1.0;

/// The most conversations in flight a workload may ask for (llama-server slots, each with its
/// own KV cache; beyond this a CPU server answers nobody in time).
pub const MAX_CONCURRENCY: u32 = 64;

/// Turns each user sends in a simulated or measured run of several users: enough for the users'
/// turns to overlap in the closed loop after the staggered start, few enough to verify quickly.
pub const TURNS_PER_USER: u32 = 2;

/// What one conversational turn is: tokens in, tokens out, the context the model runs with, and
/// the conversations in flight at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Tokens processed before the answer starts (system prompt + history + question).
    pub prompt_tokens: u32,
    /// Tokens generated in the answer.
    pub response_tokens: u32,
    /// Context length the model is loaded with, per conversation (sizes each KV cache).
    pub context_tokens: u32,
    /// Conversations in flight at once, each with its own `context_tokens` of KV cache.
    #[serde(default = "one")]
    pub concurrency: u32,
}

fn one() -> u32 {
    1
}

impl Workload {
    /// The conversations in flight, at least one.
    pub fn users(&self) -> u32 {
        self.concurrency.max(1)
    }

    /// KV cache tokens of all conversations together: what llama-server's `--ctx-size` must be
    /// with `--parallel users` (it divides `--ctx-size` among its slots).
    pub fn total_context_tokens(&self) -> u32 {
        self.context_tokens.saturating_mul(self.users())
    }
}

/// What each of several users waits for, over every turn of a run with `users` conversations in
/// flight (predicted by simulation or measured by verification).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserLatencies {
    pub users: u32,
    /// Turns the figures are taken over (all users' together).
    pub turns: u32,
    pub stagger_s: f64,
    /// From a user's prompt arriving to its first answer token.
    pub ttft_p50_s: f64,
    pub ttft_p95_s: f64,
    /// From a user's prompt arriving to its last answer token.
    pub turn_p50_s: f64,
    pub turn_p95_s: f64,
    /// Answer tokens of all users over the run's wall time.
    pub aggregate_tokens_per_s: f64,
}

impl UserLatencies {
    /// The figures of a set of turns: `(ttft_s, turn_s)` each, `generated_tokens` in `wall_s`.
    pub fn from_turns(
        users: u32,
        stagger_s: f64,
        turns: &[(f64, f64)],
        generated_tokens: u64,
        wall_s: f64,
    ) -> UserLatencies {
        let ttft: Vec<f64> = turns.iter().map(|t| t.0).collect();
        let turn: Vec<f64> = turns.iter().map(|t| t.1).collect();
        UserLatencies {
            users,
            turns: turns.len() as u32,
            stagger_s,
            ttft_p50_s: percentile(&ttft, 0.50),
            ttft_p95_s: percentile(&ttft, 0.95),
            turn_p50_s: percentile(&turn, 0.50),
            turn_p95_s: percentile(&turn, 0.95),
            aggregate_tokens_per_s: if wall_s > 0.0 {
                generated_tokens as f64 / wall_s
            } else {
                0.0
            },
        }
    }
}

/// The `q` quantile (0 ≤ q ≤ 1) of `values`, linear between the two nearest ranks (0 when empty).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let v = [4.0, 1.0, 3.0, 2.0, 5.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 1.0), 5.0);
        // Rank 0.95 × 4 = 3.8: 4 + 0.8 × (5 - 4).
        assert!((percentile(&v, 0.95) - 4.8).abs() < 1e-12);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn an_old_workload_without_concurrency_is_one_user() {
        let w: Workload = serde_json::from_str(
            r#"{"prompt_tokens": 500, "response_tokens": 150, "context_tokens": 4096}"#,
        )
        .unwrap();
        assert_eq!(w.concurrency, 1);
        assert_eq!(w.total_context_tokens(), 4096);
        let w3 = Workload {
            concurrency: 3,
            ..w
        };
        assert_eq!(w3.total_context_tokens(), 3 * 4096);
    }
}
