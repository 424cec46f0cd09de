//! The wizard (`minerva-setup` with no subcommand) driven like a person at a terminal: the binary
//! runs in a real pseudo-terminal, the test waits for what is drawn and presses keys. dialoguer
//! reads keys from the terminal in raw mode, so piping answers into stdin would test nothing.
//!
//! The hardware comes from a profile of this machine carrying benchmark figures, so no benchmark
//! runs; the download comes from the world's loopback server and the verification is a real
//! llama.cpp run of the tiny model.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rexpect::process::WaitStatus;
use rexpect::reader::Options;
use rexpect::session::{spawn_with_options, PtySession};
use support::world::{llama_turn, Promises, World};
use support::TestCtx;

/// Long enough for a slow, busy CI machine to download and verify a tiny model.
const EXPECT_TIMEOUT_MS: u64 = 180_000;
/// A fixed terminal, so that dialoguer lays out its lists the same way everywhere.
const ROWS: u32 = 40;
const COLS: u32 = 160;

const ENTER: &str = "\r";
const ARROW_DOWN: &str = "\x1b[B";

/// Generous promises: whatever this machine is, the tiny models keep them.
fn relaxed() -> Promises {
    Promises {
        large_turn_s: 60.0,
        small_turn_s: 60.0,
    }
}

/// The bare `minerva-setup` (the wizard) for this world, running in a pseudo-terminal.
struct Wizard {
    session: PtySession,
}

impl Wizard {
    /// Start it; with `stdout`, standard output goes to that file instead of the terminal (as in
    /// `minerva-setup > summary.txt`) while the questions stay on the terminal.
    fn start(w: &World, hardware: &Path, stdout: Option<&Path>) -> Wizard {
        Wizard::start_with(w, hardware, stdout, &[])
    }

    /// The same with a subcommand and its flags (`install` without `--yes` asks too).
    fn start_with(w: &World, hardware: &Path, stdout: Option<&Path>, args: &[&str]) -> Wizard {
        let mut c = w.cmd();
        c.arg("--hardware").arg(hardware).args(args);
        let session = spawn_with_options(
            in_terminal(&w.ctx, c, stdout),
            Options::new()
                .timeout_ms(Some(EXPECT_TIMEOUT_MS))
                .strip_ansi_escape_codes(true),
        )
        .expect("start the wizard in a pseudo-terminal");
        Wizard { session }
    }

    /// Wait until `text` has been drawn; returns everything drawn before it.
    fn expect(&mut self, text: &str) -> String {
        match self.session.exp_string(text) {
            Ok(before) => before,
            Err(e) => panic!("waiting for {text:?}: {e}"),
        }
    }

    /// Press keys once the prompt being answered is waiting for them. dialoguer switches the
    /// terminal to raw mode only while it reads a key, so give it a moment after drawing.
    fn press(&mut self, keys: &str) {
        std::thread::sleep(Duration::from_millis(300));
        self.session.send(keys).expect("write to the terminal");
        self.session.flush().expect("flush the terminal");
    }

    /// Read to the end and return the exit code and the rest of the output.
    fn finish(mut self) -> (i32, String) {
        let rest = match self.session.exp_eof() {
            Ok(rest) => rest,
            Err(e) => panic!("waiting for the wizard to exit: {e}"),
        };
        let code = match self.session.process().wait() {
            Ok(WaitStatus::Exited(_, code)) => code,
            other => panic!("the wizard did not exit normally: {other:?}\n{rest}"),
        };
        (code, rest)
    }
}

/// Run `c` (a command of `ctx`) through `sh` so that the terminal has a fixed size before the
/// program starts (the pty starts as 0x0, which terminal libraries treat as "unknown"),
/// optionally with standard output sent to a file.
fn in_terminal(ctx: &TestCtx, c: Command, stdout: Option<&Path>) -> Command {
    let script = format!(
        "out=$1; shift; stty rows {ROWS} cols {COLS} || exit 99; \
         if [ -n \"$out\" ]; then exec \"$@\" >\"$out\"; else exec \"$@\"; fi"
    );
    let mut t = ctx.command_for("sh");
    t.arg("-c")
        .arg(script)
        .arg("sh")
        .arg(stdout.map(|p| p.as_os_str()).unwrap_or_default())
        .arg(c.get_program())
        .args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => t.env(k, v),
            None => t.env_remove(k),
        };
    }
    t.env("TERM", "xterm-256color")
        .env("NO_COLOR", "1")
        .env("COLUMNS", COLS.to_string())
        .env("LINES", ROWS.to_string())
        // A person at a terminal sees progress bars; let them draw.
        .env_remove("MINERVA_NO_PROGRESS")
        // rexpect wires the pty to stdin, stdout and stderr; keep them.
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    t
}

#[test]
fn accepting_the_recommendation_downloads_verifies_and_installs_it() {
    let _turn = llama_turn();
    let w = World::new(relaxed());
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let mut wiz = Wizard::start(&w, &hw, None);

    let shown = wiz.expect("What should be installed?");
    assert!(
        shown.contains("This server:"),
        "the hardware report comes first:\n{shown}"
    );
    assert!(
        shown.contains("test-large"),
        "the plan names the tiers:\n{shown}"
    );
    wiz.expect("Accept: tiny-large in tier test-large");
    wiz.expect("Pick another tier");
    wiz.expect("Quit");
    wiz.press(ENTER);

    wiz.expect(&format!("Download {}", w.large.filename));
    let asked = wiz.expect("and verify it?");
    assert!(
        asked.contains(" MiB) from test-org/tiny-GGUF into "),
        "size in readable units: {asked}"
    );
    wiz.press("y");

    let progress = wiz.expect("Installed tiny-large in tier test-large");
    // The verification turn counts tokens, not bytes.
    if let Some(at) = progress.find("running one turn [") {
        let bar = &progress[at..];
        let bar = &bar[..bar.find('\r').unwrap_or(bar.len())];
        assert!(bar.contains(" tokens") && !bar.contains(" B/"), "{bar}");
    }
    let (code, rest) = wiz.finish();
    assert_eq!(code, 0, "{rest}");

    let cfg = w.config();
    assert_eq!(cfg["tier"], "test-large");
    assert_eq!(cfg["model"]["id"], w.large.id);
    assert_eq!(cfg["model"]["sha256"], w.large.sha256);
    let served: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        served.iter().all(|p| p.ends_with(&w.large.filename)),
        "only the chosen file: {served:?}"
    );
}

#[test]
fn picking_another_tier_installs_that_tier_and_only_the_summary_goes_to_stdout() {
    let _turn = llama_turn();
    let w = World::new(relaxed());
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let stdout = w.path("summary.txt");
    let mut wiz = Wizard::start(&w, &hw, Some(&stdout));

    wiz.expect("What should be installed?");
    wiz.expect("Quit");
    wiz.press(ARROW_DOWN);
    wiz.press(ENTER);

    wiz.expect("Tier");
    wiz.expect("test-small");
    wiz.press(ARROW_DOWN);
    wiz.press(ENTER);

    wiz.expect("Now: tiny-small in tier test-small");
    wiz.expect("Accept: tiny-small in tier test-small");
    wiz.expect("Quit");
    wiz.press(ENTER);

    wiz.expect(&format!("Download {}", w.small.filename));
    wiz.expect("and verify it?");
    wiz.press("y");

    let (code, rest) = wiz.finish();
    assert_eq!(code, 0, "{rest}");
    // Questions, the hardware report, the plan and progress stay on the terminal; the summary is
    // the only thing on stdout.
    assert!(
        !rest.contains("Installed"),
        "the summary went to the terminal:\n{rest}"
    );
    let summary = std::fs::read_to_string(&stdout).unwrap();
    assert!(
        summary.contains("Installed tiny-small in tier test-small"),
        "{summary}"
    );
    // The summary carries what the capability checks found.
    for line in [
        "Stopping  ",
        "Answer    normal",
        "Template  the model's own",
        "Tool call get_disk_usage(",
        "Checks    ",
    ] {
        assert!(summary.contains(line), "{line:?} missing from:\n{summary}");
    }
    for shown in [
        "This server:",
        "TIER",
        "What should be installed?",
        "Pick another tier",
        "Download ",
    ] {
        assert!(
            !summary.contains(shown),
            "{shown:?} went to stdout:\n{summary}"
        );
    }

    let cfg = w.config();
    assert_eq!(cfg["tier"], "test-small");
    assert_eq!(cfg["model"]["id"], w.small.id);
    let served: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        served.iter().all(|p| p.ends_with(&w.small.filename)),
        "only the chosen file: {served:?}"
    );
}

#[test]
fn declining_the_download_goes_back_and_quitting_downloads_nothing() {
    let w = World::new(relaxed());
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let mut wiz = Wizard::start(&w, &hw, None);

    wiz.expect("What should be installed?");
    wiz.expect("Quit");
    wiz.press(ENTER);
    wiz.expect("and verify it?");
    wiz.press("n");

    // Back at the menu.
    wiz.expect("What should be installed?");
    wiz.expect("Quit");
    for _ in 0..3 {
        wiz.press(ARROW_DOWN);
    }
    wiz.press(ENTER);

    wiz.expect("Nothing was downloaded or changed.");
    let (code, rest) = wiz.finish();
    assert_eq!(code, 0, "{rest}");
    assert!(!w.config_file().exists());
    assert!(
        !w.models_dir().exists() || std::fs::read_dir(w.models_dir()).unwrap().next().is_none()
    );
    assert_eq!(w.server.request_count(), 0);
}

#[test]
fn ctrl_c_at_a_question_shows_the_cursor_again_and_changes_nothing() {
    let w = World::new(relaxed());
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let mut c = w.cmd();
    c.arg("--hardware").arg(&hw);
    // Escape codes kept: the test looks at the cursor.
    let mut s = spawn_with_options(
        in_terminal(&w.ctx, c, None),
        Options::new().timeout_ms(Some(EXPECT_TIMEOUT_MS)),
    )
    .expect("start the wizard in a pseudo-terminal");
    let drawn = s
        .exp_string("Quit")
        .unwrap_or_else(|e| panic!("waiting for the menu: {e}"));
    assert!(
        drawn.contains(HIDE_CURSOR),
        "dialoguer hides the cursor while it asks"
    );
    std::thread::sleep(Duration::from_millis(300));
    s.send_control('c').expect("write to the terminal");

    let rest = s
        .exp_eof()
        .unwrap_or_else(|e| panic!("waiting for the wizard to end: {e}"));
    let status = s.process().wait();
    assert!(
        matches!(
            status,
            Ok(WaitStatus::Signaled(_, rexpect::process::Signal::SIGINT, _))
        ),
        "Ctrl-C still interrupts: {status:?}\n{rest:?}"
    );
    assert!(
        rest.contains(SHOW_CURSOR),
        "the cursor is shown again: {rest:?}"
    );
    assert!(
        !rest[rest.rfind(SHOW_CURSOR).unwrap()..].contains(HIDE_CURSOR),
        "{rest:?}"
    );
    assert!(
        rest.contains("Cancelled: nothing was downloaded or changed."),
        "{rest:?}"
    );
    assert!(!w.config_file().exists());
    assert_eq!(w.server.request_count(), 0);
}

const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";

#[test]
fn picking_a_model_replans_for_it_and_quitting_then_changes_nothing() {
    let w = World::new(relaxed());
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let mut wiz = Wizard::start(&w, &hw, None);

    wiz.expect("What should be installed?");
    wiz.expect("Quit");
    wiz.press(ARROW_DOWN);
    wiz.press(ARROW_DOWN);
    wiz.press(ENTER);

    // The models are listed smallest first, with their sizes.
    wiz.expect("Model");
    let listed = wiz.expect("MiB");
    assert!(listed.contains(&w.small.id), "{listed}");
    wiz.press(ENTER);

    wiz.expect("Now: tiny-small in tier test-small");
    wiz.expect("Quit");
    for _ in 0..3 {
        wiz.press(ARROW_DOWN);
    }
    wiz.press(ENTER);
    wiz.expect("Nothing was downloaded or changed.");
    let (code, rest) = wiz.finish();
    assert_eq!(code, 0, "{rest}");
    assert!(!w.config_file().exists());
    assert_eq!(w.server.request_count(), 0);
}

#[test]
fn install_without_yes_asks_first_and_a_no_changes_nothing() {
    let w = World::new(relaxed());
    let hw = w.profile_with_bench("fast", 1000.0, 0);
    let mut wiz = Wizard::start_with(&w, &hw, None, &["install"]);

    let shown = wiz.expect(&format!("Download {}", w.large.filename));
    assert!(
        shown.contains("Chosen    tiny-large in tier test-large"),
        "the plan comes first:\n{shown}"
    );
    wiz.expect("and verify it?");
    wiz.press("n");

    wiz.expect("cancelled: nothing was downloaded or changed");
    let (code, rest) = wiz.finish();
    assert_eq!(code, 2, "{rest}");
    assert!(!w.config_file().exists());
    assert_eq!(w.server.request_count(), 0);
}
