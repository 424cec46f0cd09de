//! Terminal progress: indicatif bars on a terminal, plain throttled lines on stderr otherwise.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Progress, Unit};

/// The CLI's [`Progress`] implementation.
pub struct TermProgress {
    bars: bool,
    inner: Mutex<Inner>,
}

struct Inner {
    bar: Option<ProgressBar>,
    label: String,
    total: Option<u64>,
    unit: Unit,
    started: Instant,
    last_line: Instant,
}

/// Plain progress lines are printed at most this often.
const LINE_INTERVAL: Duration = Duration::from_secs(5);

impl TermProgress {
    pub fn new(bars: bool) -> TermProgress {
        TermProgress {
            bars,
            inner: Mutex::new(Inner {
                bar: None,
                label: String::new(),
                total: None,
                unit: Unit::Bytes,
                started: Instant::now(),
                last_line: Instant::now(),
            }),
        }
    }
}

impl Progress for TermProgress {
    fn phase(&self, label: &str, total: Option<u64>) {
        self.phase_counting(label, total, Unit::Bytes);
    }

    fn phase_counting(&self, label: &str, total: Option<u64>, unit: Unit) {
        let Ok(mut g) = self.inner.lock() else { return };
        if let Some(b) = g.bar.take() {
            b.finish_and_clear();
        }
        g.label = label.to_string();
        g.total = total;
        g.unit = unit;
        g.started = Instant::now();
        g.last_line = Instant::now();
        if self.bars {
            let bar = match total {
                Some(t) => {
                    let b = ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr());
                    let template = match unit {
                        Unit::Bytes => {
                            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
                        }
                        Unit::Tokens => "{msg} [{bar:30}] {pos}/{len} tokens",
                    };
                    if let Ok(style) = ProgressStyle::with_template(template) {
                        b.set_style(style.progress_chars("=> "));
                    }
                    b
                }
                None => {
                    let b = ProgressBar::new_spinner();
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                }
            };
            bar.set_message(label.to_string());
            g.bar = Some(bar);
        } else {
            eprintln!("{label}...");
        }
    }

    fn position(&self, pos: u64) {
        let Ok(mut g) = self.inner.lock() else { return };
        if let Some(b) = &g.bar {
            b.set_position(pos);
        } else if !self.bars && g.last_line.elapsed() >= LINE_INTERVAL {
            g.last_line = Instant::now();
            let secs = g.started.elapsed().as_secs_f64().max(1e-3);
            let amount = |n: u64| match g.unit {
                Unit::Bytes => indicatif::HumanBytes(n).to_string(),
                Unit::Tokens => format!("{n} tokens"),
            };
            let rate = amount((pos as f64 / secs) as u64);
            match g.total {
                Some(t) if t > 0 => eprintln!(
                    "{}: {} of {} ({:.0}%), {rate}/s",
                    g.label,
                    amount(pos),
                    amount(t),
                    pos as f64 * 100.0 / t as f64
                ),
                _ => eprintln!("{}: {}", g.label, amount(pos)),
            }
        }
    }

    fn finish(&self) {
        let Ok(mut g) = self.inner.lock() else { return };
        if let Some(b) = g.bar.take() {
            b.finish_and_clear();
        }
        if !self.bars {
            eprintln!(
                "{}: done in {:.1} s",
                g.label,
                g.started.elapsed().as_secs_f64()
            );
        }
    }

    fn note(&self, msg: &str) {
        let Ok(g) = self.inner.lock() else { return };
        match &g.bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }
}
