//! The questions a person is asked: the wizard's menu (accept the recommendation, or pick another
//! tier or model, refusing what cannot fit) and the confirmation before a download, for the
//! wizard and for `install` without `--yes`. Questions and reports go to stderr.

use std::fmt::Write as _;

use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Select};

use indicatif::HumanBytes;

use crate::exit::{Exit, Failure};
use crate::pipeline::Run;
use crate::select::Choice;

use super::Human;

/// `install` without `--yes` on a terminal: show the plan and ask before downloading.
pub fn confirm_plan(run: &mut Run<'_>) -> Result<(), Failure> {
    eprintln!("{}", run.plan.human());
    let asking = interrupt::Asking::start();
    let accepted = confirm_download(run)?;
    drop(asking);
    if !accepted {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!("cancelled: nothing was downloaded or changed"),
        )
        .hint("pass --yes to install the recommendation without questions"));
    }
    Ok(())
}

fn theme() -> ColorfulTheme {
    ColorfulTheme::default()
}

fn ask_err(e: dialoguer::Error) -> Failure {
    Failure::new(
        Exit::Usage,
        anyhow::anyhow!("cannot ask on this terminal: {e}"),
    )
    .hint("run `minerva-setup install --yes` for an unattended install")
}

/// Let the person accept the plan or pick another tier or model. Returns false to quit.
pub fn choose(run: &mut Run<'_>) -> Result<bool, Failure> {
    eprintln!("{}", run.plan.human());
    loop {
        let recommendation = match &run.plan.chosen {
            Some(c) => format!("Accept: {}", summary(c)),
            None => "Accept: (nothing fits with the current choice)".to_string(),
        };
        let items = [
            recommendation.as_str(),
            "Pick another tier",
            "Pick a model",
            "Quit",
        ];
        let pick = Select::with_theme(&theme())
            .with_prompt("What should be installed?")
            .items(items)
            .default(0)
            .interact()
            .map_err(ask_err)?;
        match pick {
            0 => {
                if run.plan.chosen.is_none() {
                    eprintln!("Nothing fits with this choice: pick another tier or model.");
                    continue;
                }
                if confirm_download(run)? {
                    return Ok(true);
                }
            }
            1 => pick_tier(run)?,
            2 => pick_model(run)?,
            _ => return Ok(false),
        }
    }
}

fn pick_tier(run: &mut Run<'_>) -> Result<(), Failure> {
    let ids: Vec<String> = run.plan.tiers.iter().map(|t| t.id.clone()).collect();
    let labels: Vec<String> = run
        .plan
        .tiers
        .iter()
        .map(|t| {
            let best = t
                .candidates
                .iter()
                .find(|c| c.fits)
                .map(|c| c.prediction.turn_with_band());
            let pred = best
                .map(|s| format!("{s} per turn"))
                .unwrap_or_else(|| "no model fits".into());
            format!(
                "{:<12} promise {:>5.1} s, predicted {pred}",
                t.id, t.promise.turn_s
            )
        })
        .collect();
    let i = Select::with_theme(&theme())
        .with_prompt("Tier")
        .items(&labels)
        .default(0)
        .interact()
        .map_err(ask_err)?;
    run.replan(Some(ids[i].clone()), None, false)
        .map_err(|e| Failure::new(Exit::Usage, e))?;
    report_choice(run);
    Ok(())
}

fn pick_model(run: &mut Run<'_>) -> Result<(), Failure> {
    let files = run.installable_models();
    let labels: Vec<String> = files
        .iter()
        .map(|(id, bytes)| format!("{id:<40} {:>10}", HumanBytes(*bytes).to_string()))
        .collect();
    let i = Select::with_theme(&theme())
        .with_prompt("Model")
        .items(&labels)
        .default(0)
        .max_length(15)
        .interact()
        .map_err(ask_err)?;
    run.replan(None, Some(files[i].0.clone()), false)
        .map_err(|e| Failure::new(Exit::Usage, e))?;
    if let Some(c) = &run.plan.chosen {
        if !c.fits {
            eprintln!(
                "Refused: `{}` cannot fit on this machine ({}).",
                c.model,
                c.warnings.join("; ")
            );
            run.replan(None, None, false)
                .map_err(|e| Failure::new(Exit::Usage, e))?;
            return Ok(());
        }
    }
    report_choice(run);
    Ok(())
}

fn report_choice(run: &Run<'_>) {
    match &run.plan.chosen {
        Some(c) => eprintln!("Now: {}", summary(c)),
        None => eprintln!(
            "Nothing fits with this choice: {}",
            run.plan
                .no_fit
                .as_deref()
                .unwrap_or("no candidate fits and keeps its promise")
        ),
    }
}

fn confirm_download(run: &Run<'_>) -> Result<bool, Failure> {
    let Some(file) = run.chosen_file() else {
        return Ok(false);
    };
    let size = file
        .size_bytes
        .map(|b| HumanBytes(b).to_string())
        .unwrap_or_else(|| "size unknown".into());
    let prompt = format!(
        "Download {} ({size}) from {} into {} and verify it?",
        file.filename,
        file.repo,
        run.models_dir().display()
    );
    Confirm::with_theme(&theme())
        .with_prompt(prompt)
        .default(true)
        .interact()
        .map_err(ask_err)
}

fn summary(c: &Choice) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "{} in tier {}: predicted {} per turn, decode {:.1} tok/s",
        c.model,
        c.tier.as_deref().unwrap_or("custom"),
        c.prediction.turn_with_band(),
        c.prediction.decode_tokens_per_s
    );
    if !c.meets_promise {
        s.push_str(" (misses its promise)");
    }
    s
}

pub fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// Ctrl-C while a question is on screen. dialoguer hides the cursor while it asks, and on Ctrl-C
/// console raises SIGINT before dialoguer can show it again, so the person's shell would be left
/// without a cursor. While [`Asking`] lives, SIGINT first shows the cursor and says that nothing
/// was changed (true: nothing is downloaded or written before the last answer), then ends the
/// process by SIGINT as before, so the shell still sees an interrupted command.
pub mod interrupt {
    pub struct Asking {
        #[cfg(unix)]
        previous: libc::sighandler_t,
    }

    impl Asking {
        pub fn start() -> Asking {
            #[cfg(unix)]
            {
                let handler = on_sigint as extern "C" fn(libc::c_int);
                // SAFETY: `on_sigint` only calls async-signal-safe functions (write, signal, raise).
                let previous = unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) };
                Asking { previous }
            }
            #[cfg(not(unix))]
            Asking {}
        }
    }

    impl Drop for Asking {
        fn drop(&mut self) {
            #[cfg(unix)]
            // SAFETY: puts back the disposition `start` replaced (SIG_DFL, SIG_IGN or a handler).
            unsafe {
                libc::signal(libc::SIGINT, self.previous);
            }
        }
    }

    #[cfg(unix)]
    extern "C" fn on_sigint(sig: libc::c_int) {
        // Show the cursor (the same sequence console writes), then the message.
        const MSG: &[u8] = b"\x1b[?25h\r\nCancelled: nothing was downloaded or changed.\r\n";
        // SAFETY: write, signal and raise are async-signal-safe; MSG is a static buffer.
        unsafe {
            libc::write(libc::STDERR_FILENO, MSG.as_ptr().cast(), MSG.len());
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    }
}
