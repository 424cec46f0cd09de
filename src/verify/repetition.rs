//! Is an answer degenerate? Empty, only whitespace, or a loop: one short unit (a word, a phrase,
//! a sentence) repeated back to back over most of the text. Pure text in, verdict out; knows
//! nothing about models or tokens.
//!
//! A loop is found by periodicity: for each period `p` up to [`MAX_UNIT_CHARS`], a run where
//! every character equals the one `p` later is a stretch of copies of one unit. Runs of at least
//! [`MIN_COPIES`] copies count as repeated. A list whose bullets share a prefix ("- Check the")
//! is not a loop: the bullets differ after the prefix, so no run reaches a second full copy.

use crate::types::capabilities::{AnswerCheck, AnswerKind};

/// Longest unit looked for, in characters: a long sentence.
pub const MAX_UNIT_CHARS: usize = 200;
/// A unit must appear this many times in a row to count as repeated.
pub const MIN_COPIES: usize = 3;
/// Repeated runs shorter than this are ordinary text ("...", "ha ha").
const MIN_RUN_CHARS: usize = 8;
/// Above this fraction of repeated characters an answer is a loop.
pub const LOOP_RATIO: f64 = 0.5;
/// Characters of the answer kept as a sample.
const SAMPLE_CHARS: usize = 160;

/// Classify `answer` (the text the model produced before it stopped).
pub fn assess(answer: &str) -> AnswerCheck {
    let sample: String = answer.chars().take(SAMPLE_CHARS).collect();
    if answer.is_empty() {
        return check(AnswerKind::Empty, 0.0, None, sample);
    }
    if answer.chars().all(|c| c.is_whitespace() || c.is_control()) {
        return check(AnswerKind::Blank, 0.0, None, sample);
    }
    // Whitespace runs are folded into one space: a loop whose copies differ only in line breaks
    // or indentation is still a loop.
    let text: Vec<char> = fold_whitespace(answer);
    let (ratio, unit) = repeated(&text);
    let kind = if ratio >= LOOP_RATIO {
        AnswerKind::Loop
    } else {
        AnswerKind::Normal
    };
    check(kind, ratio, unit, sample)
}

fn check(kind: AnswerKind, ratio: f64, unit: Option<String>, sample: String) -> AnswerCheck {
    AnswerCheck {
        kind,
        repeated_ratio: ratio,
        repeated_unit: unit,
        sample,
    }
}

fn fold_whitespace(s: &str) -> Vec<char> {
    let mut out = Vec::with_capacity(s.len());
    for c in s.trim().chars() {
        let c = if c.is_whitespace() { ' ' } else { c };
        if !(c == ' ' && out.last() == Some(&' ')) {
            out.push(c);
        }
    }
    out
}

/// The fraction of `text` inside repeated runs, and the unit of the longest run.
fn repeated(text: &[char]) -> (f64, Option<String>) {
    let n = text.len();
    if n == 0 {
        return (0.0, None);
    }
    let mut covered = vec![false; n];
    let mut best: Option<(usize, usize, usize)> = None; // (run chars, start, period)
    for p in 1..=MAX_UNIT_CHARS.min(n / MIN_COPIES) {
        let mut i = 0;
        while i + p < n {
            if text[i] != text[i + p] {
                i += 1;
                continue;
            }
            let start = i;
            while i + p < n && text[i] == text[i + p] {
                i += 1;
            }
            // text[start .. i + p] has period p.
            let run = i + p - start;
            if run >= MIN_COPIES * p && run >= MIN_RUN_CHARS {
                covered[start..i + p].iter_mut().for_each(|c| *c = true);
                if best.is_none_or(|(r, _, _)| run > r) {
                    best = Some((run, start, p));
                }
            }
        }
    }
    let ratio = covered.iter().filter(|c| **c).count() as f64 / n as f64;
    // A run may begin mid-word (the text before the loop can end like the unit does): show the
    // unit from a word start, which the run always contains since it holds three copies.
    let unit = best.map(|(_, start, p)| {
        let k = (0..p)
            .find(|&k| start + k > 0 && text[start + k - 1] == ' ')
            .unwrap_or(0);
        let unit: String = text[start + k..start + k + p].iter().collect();
        unit.trim().to_string()
    });
    (ratio, unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_sentence_is_a_loop() {
        let text = "Let me think. I'm not sure what to check. I'm not sure what to check. \
                    I'm not sure what to check. I'm not sure what to check. I'm not sure what to check. \
                    I'm not sure what to";
        let a = assess(text);
        assert_eq!(a.kind, AnswerKind::Loop, "{a:?}");
        assert!(a.repeated_ratio > 0.8, "{a:?}");
        let unit = a.repeated_unit.unwrap();
        assert!(unit.contains("not sure what to check"), "{unit:?}");
    }

    #[test]
    fn one_token_repeated_is_a_loop() {
        let a = assess("the the the the the the the the the the the the the the the");
        assert_eq!(a.kind, AnswerKind::Loop, "{a:?}");
        assert_eq!(a.repeated_unit.as_deref().map(str::trim), Some("the"));
        assert_eq!(
            assess("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!").kind,
            AnswerKind::Loop
        );
    }

    #[test]
    fn a_loop_broken_only_by_line_breaks_is_a_loop() {
        let a = assess("Check the disk.\nCheck the disk.\n  Check the disk.\n\nCheck the disk.\n");
        assert_eq!(a.kind, AnswerKind::Loop, "{a:?}");
    }

    #[test]
    fn a_normal_paragraph_is_not_a_loop() {
        let text = "First, compare the backup's size with last week's: a table that grew tenfold \
                    explains a slower dump. Second, look at the disk the dump writes to with \
                    `iostat -x 5` while the job runs; a saturated device shows %util near 100. \
                    Third, check whether another job, such as a VACUUM or a reindex, now overlaps \
                    the backup window and competes for I/O.";
        let a = assess(text);
        assert_eq!(a.kind, AnswerKind::Normal, "{a:?}");
        assert!(a.repeated_ratio < 0.1, "{a:?}");
    }

    #[test]
    fn a_list_with_repeated_bullets_is_not_a_loop() {
        let text = "Check these three things:\n\
                    - Check the disk usage: `df -h /var/backups`.\n\
                    - Check the job's log: `journalctl -u backup --since yesterday`.\n\
                    - Check the load while it runs: `iostat -x 5`.\n\
                    - Check the network to the backup target: `iperf3 -c backup01`.\n";
        let a = assess(text);
        assert_eq!(a.kind, AnswerKind::Normal, "{a:?}");
        assert!(a.repeated_ratio < 0.2, "{a:?}");
    }

    #[test]
    fn empty_and_blank_answers_are_degenerate() {
        assert_eq!(assess("").kind, AnswerKind::Empty);
        assert_eq!(assess("  \n\t \n").kind, AnswerKind::Blank);
        assert_eq!(assess("\u{0}\u{1b}\n").kind, AnswerKind::Blank);
        assert!(AnswerKind::Empty.is_degenerate() && AnswerKind::Blank.is_degenerate());
        assert!(!AnswerKind::Normal.is_degenerate());
    }

    #[test]
    fn a_short_answer_is_normal() {
        assert_eq!(assess("Yes.").kind, AnswerKind::Normal);
        assert_eq!(assess("ok ok").kind, AnswerKind::Normal);
    }
}
