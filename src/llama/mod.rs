//! The thin layer over llama.cpp (through `llama-cpp-2`) that the benchmark and the verification
//! run share: one process-wide backend with its log silenced, timed model loading, timed
//! prefill and greedy decode on one context, greedy completion until an end-of-generation
//! token, optionally constrained by a GBNF grammar (llama.cpp's grammar sampler), and a context
//! that serves several sequences at once ([`MultiSession`], llama.cpp's batch API with one
//! sequence id per conversation).
//!
//! Before anything here touches llama.cpp, [`init`] chooses which of llama.cpp's CPU kernel
//! variants this process runs and loads it (see [`cpu`]): nothing of llama.cpp runs before that.

pub mod cpu;
mod quantize;

pub use quantize::quantize;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use crate::profile::SimdFeatures;
use crate::types::cpu_variant::CpuVariant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

/// What went wrong inside llama.cpp.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LlamaError {
    #[error("cannot initialise llama.cpp: {0}")]
    Backend(String),
    #[error("llama.cpp could not load `{path}`: {detail}")]
    Load { path: PathBuf, detail: String },
    #[error("llama.cpp could not create a context for `{path}`: {detail}")]
    Context { path: PathBuf, detail: String },
    #[error("llama.cpp failed to evaluate `{path}`: {detail}")]
    Decode { path: PathBuf, detail: String },
    #[error("`{path}` produced non-finite logits (NaN or infinity)")]
    NonFiniteLogits { path: PathBuf },
    #[error("llama.cpp refused the grammar for `{path}`: {detail}")]
    Grammar { path: PathBuf, detail: String },
    #[error("llama.cpp could not quantise `{path}`: {detail}")]
    Quantize { path: PathBuf, detail: String },
    #[error(transparent)]
    CpuVariant(#[from] cpu::VariantError),
}

/// llama.cpp, initialised with the CPU kernels chosen for this machine.
pub struct Backend {
    pub llama: LlamaBackend,
    /// Which CPU variant runs, and the better ones passed over.
    pub cpu_variant: CpuVariant,
}

/// How to initialise llama.cpp.
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// This CPU's features as the live probe reads them (XCR0 applied). Not a `--hardware`
    /// profile: the kernels run here, whatever machine a plan is for.
    pub simd: SimdFeatures,
    /// `--cpu-variant` / `MINERVA_CPU_VARIANT`.
    pub cpu_variant: Option<String>,
    /// The thread count the variant is checked with (the one the benchmark will use).
    pub threads: u32,
    /// Keep llama.cpp's own log lines on stderr.
    pub show_logs: bool,
    /// Trust `cpu_variant` without a child check: only for the check's own child process.
    pub unchecked: bool,
}

static BACKEND: OnceLock<Result<Backend, LlamaError>> = OnceLock::new();

/// The process-wide llama.cpp backend: on the first call, choose the CPU variant (ranking, a
/// check in a child process, fallback; see [`cpu`]), load its library and any GPU backend
/// libraries next to it, and initialise llama.cpp. Later calls return the same backend whatever
/// their `cfg` (a process runs one set of kernels). llama.cpp's own log lines are dropped unless
/// `show_logs` was true on the first call (stderr belongs to our progress lines).
pub fn init(cfg: &BackendConfig) -> Result<&'static Backend, LlamaError> {
    BACKEND
        .get_or_init(|| init_once(cfg))
        .as_ref()
        .map_err(Clone::clone)
}

fn init_once(cfg: &BackendConfig) -> Result<Backend, LlamaError> {
    let dir = cpu::find_library_dir()?;
    let forced = cfg
        .cpu_variant
        .clone()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            std::env::var(crate::env_vars::MINERVA_CPU_VARIANT)
                .ok()
                .filter(|v| !v.is_empty())
        });
    let checker = if cfg.unchecked {
        None
    } else {
        cpu::checker_exe()
    };
    let chosen = cpu::select(
        &dir,
        &cpu::Selection {
            simd: &cfg.simd,
            forced: forced.as_deref(),
            threads: cfg.threads,
            checker: checker.as_deref(),
        },
    )?;
    if !cfg.show_logs {
        // Loading a backend logs through ggml's logger before llama.cpp's is set up.
        // SAFETY: a callback with ggml's signature that ignores its arguments; no user data.
        unsafe { llama_cpp_sys_2::ggml_log_set(Some(discard_log), std::ptr::null_mut()) };
    }
    load_backend_library(&chosen.library)?;
    // The check's own child runs the CPU kernels alone: with a GPU backend loaded, llama.cpp
    // could hand the prompt batch's matrices to the GPU and leave the kernels under test unrun.
    if !cfg.unchecked {
        for other in &dir.others {
            // A GPU backend whose driver is missing fails to load; the CPU one still serves.
            let _ = load_backend_library(other);
        }
    }
    let mut llama = LlamaBackend::init().map_err(|e| LlamaError::Backend(e.to_string()))?;
    if !cfg.show_logs {
        llama.void_logs();
    }
    Ok(Backend {
        llama,
        cpu_variant: chosen.variant,
    })
}

/// The body of the child process that tries a CPU variant (the hidden `__check-cpu-variant`
/// subcommand): load only `variant`, then load a small generated model with Q4_K and Q6_K weights
/// (the types llama.cpp's AMX and VNNI kernels take), evaluate one 64-token prompt batch and four
/// decode steps on `threads` threads. A variant this CPU cannot run kills the process here with a
/// signal, which the parent reads.
pub fn run_variant_check(
    simd: &SimdFeatures,
    variant: &str,
    threads: u32,
) -> Result<(), CheckFailure> {
    use crate::gguf::{writer, FileType, ModelShape};
    let backend = init(&BackendConfig {
        simd: simd.clone(),
        cpu_variant: Some(variant.to_string()),
        threads,
        show_logs: false,
        unchecked: true,
    })
    .map_err(CheckFailure::Kernels)?;
    let dir = tempfile::tempdir().map_err(|e| {
        CheckFailure::Setup(format!("no temporary directory for the check model: {e}"))
    })?;
    let path = dir.path().join("check.gguf");
    // The tiny preset twice as wide: two K-quant blocks per row, matrices big enough for the
    // AMX and VNNI paths.
    let shape = ModelShape {
        n_embd: 512,
        n_ff: 1024,
        n_heads: 8,
        n_kv_heads: 4,
        ..writer::tiny_shape()
    };
    let spec = writer::ModelSpec::new(shape, writer::WeightLayout::FileType(FileType::Q4_K_M));
    writer::write_model(&path, &spec)
        .map_err(|e| CheckFailure::Setup(format!("cannot write the check model: {e}")))?;
    let run = || -> Result<(), LlamaError> {
        let model = load(&backend.llama, &path, 0)?;
        let mut session = model.session(&backend.llama, threads, 128, 64)?;
        let prompt = prompt_tokens(64, model.n_vocab(), 4);
        session.prefill(&prompt)?;
        session.generate(4)?;
        Ok(())
    };
    run().map_err(CheckFailure::Kernels)
}

/// Why [`run_variant_check`] failed: the check could not be set up (says nothing about the
/// variant), or llama.cpp failed with these kernels.
#[derive(Debug, thiserror::Error)]
pub enum CheckFailure {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Kernels(LlamaError),
}

/// The shared libraries this process runs llama.cpp with: `libllama`, `libggml` and
/// `libggml-base` as the dynamic loader found them (the file names their dependants ask for),
/// then every backend library in the library directory. What an installation must put next to
/// the binary.
pub fn runtime_libraries() -> Result<Vec<PathBuf>, cpu::VariantError> {
    let mut v: Vec<PathBuf> = Vec::new();
    #[cfg(unix)]
    {
        let symbols: [*const std::ffi::c_void; 3] = [
            llama_cpp_sys_2::llama_backend_init as *const _,
            llama_cpp_sys_2::ggml_backend_load as *const _,
            llama_cpp_sys_2::ggml_init as *const _,
        ];
        for sym in symbols {
            if let Some(p) = library_of(sym) {
                if !v.contains(&p) {
                    v.push(p);
                }
            }
        }
    }
    let dir = cpu::find_library_dir()?;
    for name in &dir.variants {
        v.push(dir.path.join(cpu::variant_file_name(name)));
    }
    v.extend(dir.others.iter().cloned());
    Ok(v)
}

/// The file of the loaded shared object that holds `sym` (`dladdr`); `None` for the executable
/// itself (a static build).
#[cfg(unix)]
fn library_of(sym: *const std::ffi::c_void) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `sym` is the address of a function of a loaded library; dladdr only reads the
    // loader's tables and fills `info`.
    if unsafe { libc::dladdr(sym, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dladdr set `dli_fname` to a NUL-terminated string owned by the loader.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()));
    let exe = std::env::current_exe().ok();
    let is_exe = exe
        .as_ref()
        .is_some_and(|e| e.canonicalize().ok() == path.canonicalize().ok());
    (!is_exe && path.is_absolute()).then_some(path)
}

unsafe extern "C" fn discard_log(
    _level: llama_cpp_sys_2::ggml_log_level,
    _text: *const std::ffi::c_char,
    _user_data: *mut std::ffi::c_void,
) {
}

/// `ggml_backend_load`: dlopen one backend library and register it with ggml.
fn load_backend_library(path: &Path) -> Result<(), cpu::VariantError> {
    let err = || cpu::VariantError::Load {
        path: path.display().to_string(),
    };
    let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).map_err(|_| err())?;
    // SAFETY: a NUL-terminated path; ggml returns null (and registers nothing) when the library
    // cannot be opened or its score says this CPU cannot run it.
    let reg = unsafe { llama_cpp_sys_2::ggml_backend_load(c.as_ptr()) };
    if reg.is_null() {
        return Err(err());
    }
    Ok(())
}

/// Whether this build can offload to a GPU and one is present.
pub fn gpu_offload_available(backend: &LlamaBackend) -> bool {
    backend.supports_gpu_offload()
}

/// A model loaded into llama.cpp, with how long loading took.
pub struct LoadedModel {
    pub model: LlamaModel,
    pub path: PathBuf,
    pub load_s: f64,
}

/// Load `path`, offloading `gpu_layers` layers (0 for CPU only).
pub fn load(
    backend: &LlamaBackend,
    path: &Path,
    gpu_layers: u32,
) -> Result<LoadedModel, LlamaError> {
    let params = LlamaModelParams::default().with_n_gpu_layers(gpu_layers);
    let start = Instant::now();
    let model =
        LlamaModel::load_from_file(backend, path, &params).map_err(|e| LlamaError::Load {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
    Ok(LoadedModel {
        model,
        path: path.to_path_buf(),
        load_s: start.elapsed().as_secs_f64(),
    })
}

/// One llama.cpp context: a KV cache sized for a prompt plus the generated tokens.
pub struct Session<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    model: &'m LlamaModel,
    path: &'m Path,
    n_vocab: i32,
    /// Position of the next token in the KV cache.
    pos: i32,
    /// Last greedy token.
    last: LlamaToken,
    /// Length of the last prefill and the token chosen after it, for [`Session::rewind`].
    prompt_len: i32,
    after_prompt: LlamaToken,
}

impl LoadedModel {
    /// A context of `n_ctx` tokens evaluating batches of up to `n_batch` tokens on `threads` threads.
    pub fn session(
        &self,
        backend: &LlamaBackend,
        threads: u32,
        n_ctx: u32,
        n_batch: u32,
    ) -> Result<Session<'_>, LlamaError> {
        let threads = threads.max(1) as i32;
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx.max(16)))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_no_perf(false);
        let ctx = self
            .model
            .new_context(backend, params)
            .map_err(|e| LlamaError::Context {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
        Ok(Session {
            ctx,
            batch: LlamaBatch::new(n_batch as usize, 1),
            model: &self.model,
            path: &self.path,
            n_vocab: self.model.n_vocab(),
            pos: 0,
            last: LlamaToken(0),
            prompt_len: 0,
            after_prompt: LlamaToken(0),
        })
    }

    pub fn n_vocab(&self) -> i32 {
        self.model.n_vocab()
    }

    /// Whether `t` ends a generation (end of sequence, end of turn, ...), as the model's
    /// vocabulary says.
    pub fn is_end_of_generation(&self, t: LlamaToken) -> bool {
        self.model.vocab().is_eog(t)
    }

    /// The text of `t`, as bytes (a piece may be part of a multi-byte character); control
    /// tokens render as nothing.
    pub fn piece(&self, t: LlamaToken) -> Vec<u8> {
        self.model.vocab().token_to_piece(t, false, None)
    }

    /// A sampler that admits only text matching the GBNF grammar `gbnf` (root rule `root`).
    pub fn grammar(&self, gbnf: &str) -> Result<Grammar, LlamaError> {
        LlamaSampler::grammar(&self.model, gbnf, "root")
            .map(Grammar)
            .map_err(|e| LlamaError::Grammar {
                path: self.path.clone(),
                detail: e.to_string(),
            })
    }
}

/// llama.cpp's grammar sampler for one generation (it tracks how much of the grammar the text so
/// far has matched; make a new one for each generation).
pub struct Grammar(LlamaSampler);

/// What [`Session::complete`] generated.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The tokens before the end-of-generation token (which is not included).
    pub tokens: Vec<LlamaToken>,
    /// An end-of-generation token ended it (else the token budget did).
    pub ended: bool,
    pub seconds: f64,
}

impl Session<'_> {
    /// Empty the KV cache and evaluate `tokens` as one batch; returns the seconds it took.
    pub fn prefill(&mut self, tokens: &[LlamaToken]) -> Result<f64, LlamaError> {
        self.ctx.clear_kv_cache();
        self.pos = 0;
        self.batch.clear();
        let last = tokens.len().saturating_sub(1);
        for (i, t) in tokens.iter().enumerate() {
            self.batch
                .add(*t, i as i32, &[0], i == last)
                .map_err(|e| self.decode_err(e.to_string()))?;
        }
        let start = Instant::now();
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| self.decode_err(e.to_string()))?;
        let secs = start.elapsed().as_secs_f64();
        self.pos = tokens.len() as i32;
        self.last = self.argmax(self.batch.n_tokens() - 1)?;
        self.prompt_len = self.pos;
        self.after_prompt = self.last;
        Ok(secs)
    }

    /// Drop the generated tokens from the KV cache and continue from the end of the last prompt,
    /// as if it had just been evaluated. Decode then runs at the same context length without
    /// evaluating the prompt again (decode slows with context: here about 20 % slower after 128
    /// prompt tokens than after 16, so the context must match the prompt being modelled).
    pub fn rewind(&mut self) -> Result<(), LlamaError> {
        let removed = self
            .ctx
            .clear_kv_cache_seq(Some(0), Some(self.prompt_len as u32), None)
            .map_err(|e| self.decode_err(e.to_string()))?;
        if !removed {
            return Err(self.decode_err("the KV cache refused to drop the generated tokens".into()));
        }
        self.pos = self.prompt_len;
        self.last = self.after_prompt;
        Ok(())
    }

    /// Fill the KV cache with `tokens` as [`Session::prefill`] would, from `state_file` (llama.cpp's
    /// saved state of one sequence, with the prompt and the token chosen after it, see
    /// [`Session::save_state`]) when it holds exactly these tokens for this model. Returns
    /// whether it did; on `false` the cache is empty. What a decoded token costs depends on how
    /// many positions the cache holds, not on how they got there, so a long context is reached in
    /// milliseconds instead of a long prefill (and a session that only decodes needs no prompt-
    /// sized batch).
    pub fn restore_state(&mut self, tokens: &[LlamaToken], state_file: &Path) -> bool {
        self.ctx.clear_kv_cache();
        self.pos = 0;
        self.prompt_len = 0;
        if tokens.is_empty() || !state_file.is_file() {
            return false;
        }
        match self
            .ctx
            .state_seq_load_file(state_file, 0, tokens.len() + 1)
        {
            Ok((saved, _))
                if saved.len() == tokens.len() + 1 && saved[..tokens.len()] == *tokens =>
            {
                self.pos = tokens.len() as i32;
                self.last = saved[tokens.len()];
                self.prompt_len = self.pos;
                self.after_prompt = self.last;
                true
            }
            _ => {
                self.ctx.clear_kv_cache();
                false
            }
        }
    }

    /// Save the KV cache of the last prefill of `tokens` and the token chosen after it to
    /// `state_file`, for [`Session::restore_state`]: under a temporary name, then renamed, so a
    /// reader never sees half a file. Returns whether it was written (a failure only costs the
    /// next run the prefill again).
    pub fn save_state(&self, tokens: &[LlamaToken], state_file: &Path) -> bool {
        let mut saved = tokens.to_vec();
        saved.push(self.after_prompt);
        let tmp = state_file.with_extension(format!("tmp-{}", std::process::id()));
        let written = self.ctx.state_seq_save_file(&tmp, 0, &saved).is_ok()
            && std::fs::rename(&tmp, state_file).is_ok();
        if !written {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Generate `n` tokens greedily after a prefill (end-of-sequence ignored); returns the seconds
    /// the `n` steps took, sampling included.
    pub fn generate(&mut self, n: u32) -> Result<f64, LlamaError> {
        self.generate_until(n, None).map(|(_, secs)| secs)
    }

    /// Like [`Session::generate`], but stop early once `deadline` has passed (at least one token
    /// is generated); returns the tokens generated and the seconds they took.
    pub fn generate_until(
        &mut self,
        n: u32,
        deadline: Option<Instant>,
    ) -> Result<(u32, f64), LlamaError> {
        let start = Instant::now();
        let mut done = 0;
        while done < n {
            self.batch.clear();
            self.batch
                .add(self.last, self.pos, &[0], true)
                .map_err(|e| self.decode_err(e.to_string()))?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| self.decode_err(e.to_string()))?;
            self.pos += 1;
            self.last = self.argmax(0)?;
            done += 1;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        Ok((done, start.elapsed().as_secs_f64()))
    }

    /// After a prefill, generate greedily until the model emits an end-of-generation token or
    /// `max` tokens were generated. With `grammar`, each token is the most likely one the grammar
    /// admits (llama.cpp's grammar sampler masks the rest), so the text always matches it.
    pub fn complete(
        &mut self,
        max: u32,
        mut grammar: Option<&mut Grammar>,
    ) -> Result<Completion, LlamaError> {
        let start = Instant::now();
        let mut tokens = Vec::new();
        let mut ended = false;
        while (tokens.len() as u32) < max {
            let i = self.batch.n_tokens() - 1;
            let t = match grammar.as_deref_mut() {
                Some(g) => self.grammar_choice(i, g)?,
                None => self.argmax(i)?,
            };
            if self.model.vocab().is_eog(t) {
                ended = true;
                break;
            }
            tokens.push(t);
            self.batch.clear();
            self.batch
                .add(t, self.pos, &[0], true)
                .map_err(|e| self.decode_err(e.to_string()))?;
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| self.decode_err(e.to_string()))?;
            self.pos += 1;
            self.last = t;
        }
        Ok(Completion {
            tokens,
            ended,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// The most likely token of output `i` that `g` admits; `g` then accepts it. Only admitted
    /// tokens are passed to `accept` (llama.cpp aborts the process on any other).
    fn grammar_choice(&self, i: i32, g: &mut Grammar) -> Result<LlamaToken, LlamaError> {
        let mut candidates = self.ctx.token_data_array_ith(i);
        candidates.data.truncate(self.n_vocab.max(0) as usize);
        if candidates.data.iter().any(|d| !d.logit().is_finite()) {
            return Err(LlamaError::NonFiniteLogits {
                path: self.path.to_path_buf(),
            });
        }
        g.0.apply(&mut candidates);
        let best = candidates
            .data
            .iter()
            .filter(|d| d.logit().is_finite())
            .max_by(|a, b| a.logit().total_cmp(&b.logit()))
            .map(|d| d.id())
            .ok_or_else(|| {
                self.decode_err("the grammar admits no token of this vocabulary here".into())
            })?;
        g.0.accept(best);
        Ok(best)
    }

    /// Position of the next token: prompt plus generated tokens.
    pub fn position(&self) -> i32 {
        self.pos
    }

    /// The latest greedy choice.
    pub fn last_token(&self) -> LlamaToken {
        self.last
    }

    /// The logits of the latest evaluated token.
    pub fn last_logits(&self) -> &[f32] {
        self.ctx.get_logits_ith(self.batch.n_tokens() - 1)
    }

    /// llama.cpp's own counters since the last [`Session::reset_counters`]:
    /// `(prompt ms, prompt tokens, decode ms, decode tokens)`.
    pub fn counters(&mut self) -> (f64, i32, f64, i32) {
        let t = self.ctx.timings();
        (t.t_p_eval_ms(), t.n_p_eval(), t.t_eval_ms(), t.n_eval())
    }

    pub fn reset_counters(&mut self) {
        self.ctx.reset_timings();
    }

    fn argmax(&self, i: i32) -> Result<LlamaToken, LlamaError> {
        let logits = self.ctx.get_logits_ith(i);
        let mut best = (0usize, f32::NEG_INFINITY);
        for (j, &v) in logits.iter().enumerate().take(self.n_vocab.max(0) as usize) {
            if !v.is_finite() {
                return Err(LlamaError::NonFiniteLogits {
                    path: self.path.to_path_buf(),
                });
            }
            if v > best.1 {
                best = (j, v);
            }
        }
        Ok(LlamaToken(best.0 as i32))
    }

    fn decode_err(&self, detail: String) -> LlamaError {
        LlamaError::Decode {
            path: self.path.to_path_buf(),
            detail,
        }
    }
}

/// One token of a batch for several sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchToken {
    pub token: LlamaToken,
    /// Position in its sequence.
    pub pos: i32,
    /// Sequence (conversation) id, below the session's `n_seq`.
    pub seq: i32,
    /// Whether logits are wanted for it (a decoding sequence's token, a prompt's last token).
    pub logits: bool,
}

/// A context whose KV cache holds `n_seq` sequences at once (unified: the sequences share its
/// cells), evaluating batches that mix one token of each decoding sequence with prompt chunks,
/// as a continuous-batching server does.
pub struct MultiSession<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    path: &'m Path,
    n_vocab: i32,
    n_batch: u32,
}

impl LoadedModel {
    /// A context of `n_ctx` tokens in all for `n_seq` sequences, evaluating batches of up to
    /// `n_batch` tokens on `threads` threads.
    pub fn multi_session(
        &self,
        backend: &LlamaBackend,
        threads: u32,
        n_ctx: u32,
        n_batch: u32,
        n_seq: u32,
    ) -> Result<MultiSession<'_>, LlamaError> {
        let threads = threads.max(1) as i32;
        let n_seq = n_seq.max(1);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx.max(16)))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_seq_max(n_seq)
            .with_kv_unified(true)
            .with_n_threads(threads)
            .with_n_threads_batch(threads)
            .with_no_perf(false);
        let ctx = self
            .model
            .new_context(backend, params)
            .map_err(|e| LlamaError::Context {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
        Ok(MultiSession {
            ctx,
            batch: LlamaBatch::new(n_batch as usize, n_seq as i32),
            path: &self.path,
            n_vocab: self.model.n_vocab(),
            n_batch,
        })
    }
}

impl MultiSession<'_> {
    /// Tokens one batch may hold.
    pub fn n_batch(&self) -> u32 {
        self.n_batch
    }

    /// Empty the whole KV cache.
    pub fn clear(&mut self) {
        self.ctx.clear_kv_cache();
    }

    /// Drop everything sequence `seq` holds in the KV cache (its conversation ended).
    pub fn clear_seq(&mut self, seq: i32) -> Result<(), LlamaError> {
        let seq =
            u32::try_from(seq).map_err(|_| self.decode_err(format!("bad sequence id {seq}")))?;
        self.ctx
            .clear_kv_cache_seq(Some(seq), None, None)
            .map_err(|e| self.decode_err(e.to_string()))?;
        Ok(())
    }

    /// Let sequence `dest` share what sequence `src` holds (its first `len` positions).
    pub fn copy_seq(&mut self, src: i32, dest: i32, len: u32) -> Result<(), LlamaError> {
        self.ctx
            .copy_kv_cache_seq(src, dest, Some(0), Some(len))
            .map_err(|e| self.decode_err(e.to_string()))
    }

    /// Evaluate one batch; returns the seconds llama.cpp took. Logits of the tokens that asked
    /// for them are then read with [`MultiSession::argmax`] by their index in `tokens`.
    pub fn decode(&mut self, tokens: &[BatchToken]) -> Result<f64, LlamaError> {
        self.batch.clear();
        for t in tokens {
            self.batch
                .add(t.token, t.pos, &[t.seq], t.logits)
                .map_err(|e| self.decode_err(e.to_string()))?;
        }
        let start = Instant::now();
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| self.decode_err(e.to_string()))?;
        Ok(start.elapsed().as_secs_f64())
    }

    /// The greedy choice after the token at `index` of the last batch (which asked for logits).
    pub fn argmax(&self, index: usize) -> Result<LlamaToken, LlamaError> {
        let logits = self.ctx.get_logits_ith(index as i32);
        let mut best = (0usize, f32::NEG_INFINITY);
        for (j, &v) in logits.iter().enumerate().take(self.n_vocab.max(0) as usize) {
            if !v.is_finite() {
                return Err(LlamaError::NonFiniteLogits {
                    path: self.path.to_path_buf(),
                });
            }
            if v > best.1 {
                best = (j, v);
            }
        }
        Ok(LlamaToken(best.0 as i32))
    }

    /// Timed decode steps with `n_seq` sequences in one batch, one token each, after a shared
    /// `prompt` (evaluated once into sequence 0 and shared by the others: the step's cost is
    /// reading the weights once for all of them, not their prompts). Returns the seconds of each
    /// of `steps` steps after one warm-up step, greedy choice of every sequence included.
    pub fn batched_decode_steps(
        &mut self,
        prompt: &[LlamaToken],
        n_seq: u32,
        steps: u32,
    ) -> Result<Vec<f64>, LlamaError> {
        self.clear();
        let n_seq = n_seq.max(1) as i32;
        let prompt_tokens: Vec<BatchToken> = prompt
            .iter()
            .enumerate()
            .map(|(i, &token)| BatchToken {
                token,
                pos: i as i32,
                seq: 0,
                logits: i + 1 == prompt.len(),
            })
            .collect();
        self.decode(&prompt_tokens)?;
        let first = self.argmax(prompt_tokens.len().saturating_sub(1))?;
        for s in 1..n_seq {
            self.copy_seq(0, s, prompt.len() as u32)?;
        }
        let mut last = vec![first; n_seq as usize];
        let mut out = Vec::with_capacity(steps as usize);
        for step in 0..=steps {
            let pos = prompt.len() as i32 + step as i32;
            let batch: Vec<BatchToken> = (0..n_seq)
                .map(|s| BatchToken {
                    token: last[s as usize],
                    pos,
                    seq: s,
                    logits: true,
                })
                .collect();
            let start = Instant::now();
            self.decode(&batch)?;
            for (i, l) in last.iter_mut().enumerate() {
                *l = self.argmax(i)?;
            }
            if step > 0 {
                out.push(start.elapsed().as_secs_f64());
            }
        }
        Ok(out)
    }

    fn decode_err(&self, detail: String) -> LlamaError {
        LlamaError::Decode {
            path: self.path.to_path_buf(),
            detail,
        }
    }
}

/// `n` pseudo-random token ids below `n_vocab`, avoiding the first `skip` (special tokens): the
/// benchmark's prompt. Deterministic, so every run evaluates the same prompt.
pub fn prompt_tokens(n: u32, n_vocab: i32, skip: i32) -> Vec<LlamaToken> {
    let span = (n_vocab - skip).max(1) as u64;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            LlamaToken((skip as u64 + x % span) as i32)
        })
        .collect()
}
