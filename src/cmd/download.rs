//! `minerva-setup download`: fetch one GGUF file by URL or by Hugging Face repository and file,
//! verify its sha256, and print the `FetchReport`. A registry model split in parts is fetched
//! whole (every part verified, all put in place or none) and reported as a `SetReport`.

use std::fmt::Write as _;

use clap::Args;

use crate::app::args::TransferArgs;
use crate::app::failure::fetch_failure;
use crate::app::settings::{endpoint, fetch_options, remote_model};
use crate::app::{Ctx, Human};
use crate::env_vars::MINERVA_MIRROR;
use crate::exit::{Exit, Failure};
use crate::fetch::{self, FetchOptions, FetchReport, FetchRequest, HfFile, Obtained, SetReport};
use crate::validate::{self, ValidationError};

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// A registry model id (see `minerva-setup registry list`): its repo, file, size and sha256
    /// come from the registry. Or a file on Hugging Face, `hf:ORG/REPO/PATH.gguf` or
    /// `hf:ORG/REPO:QUANT`: its size and sha256 come from Hugging Face's metadata (--sha256
    /// wins), and its header is checked before the download starts.
    #[arg(value_name = "MODEL", required_unless_present_any = ["url", "repo"], conflicts_with_all = ["url", "repo", "file", "size", "gated"])]
    pub model: Option<String>,
    /// Download from this URL (any HTTP(S) server).
    #[arg(long, value_name = "URL", conflicts_with_all = ["repo", "revision"], requires = "sha256")]
    pub url: Option<String>,
    /// Hugging Face repository, e.g. `Qwen/Qwen2.5-3B-Instruct-GGUF`.
    #[arg(long, value_name = "ORG/NAME", requires_all = ["file", "sha256"])]
    pub repo: Option<String>,
    /// Path of the GGUF file in the repository, e.g. `Q4_K_M/model-00001-of-00002.gguf`.
    #[arg(long, value_name = "PATH", requires = "repo")]
    pub file: Option<String>,
    /// Branch, tag or commit of the repository [default: main].
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// Hugging Face endpoint or mirror for MODEL_ID and --repo (default: HF_ENDPOINT, else
    /// huggingface.co); not used with --url.
    #[arg(long, value_name = "URL", env = MINERVA_MIRROR)]
    pub mirror: Option<String>,
    /// Expected sha256 of the file (64 lowercase hex digits, as `sha256sum` prints it).
    #[arg(long, value_name = "HEX")]
    pub sha256: Option<String>,
    /// Expected size in bytes (checked against the server before downloading).
    #[arg(long, value_name = "BYTES")]
    pub size: Option<u64>,
    /// Local file name in the models directory (default: the last part of the URL or path).
    #[arg(long, value_name = "NAME")]
    pub filename: Option<String>,
    /// The repository is gated: send the Hugging Face token (HF_TOKEN or the token file).
    #[arg(long)]
    pub gated: bool,
    #[command(flatten)]
    pub transfer: TransferArgs,
}

pub fn run(ctx: &Ctx, args: &DownloadArgs) -> Result<(), Failure> {
    let (reqs, opts) = resolve(ctx, args)?;
    let progress = ctx.progress();
    if reqs[0].gated && opts.token.is_none() {
        progress.note(
            "no Hugging Face token found (HF_TOKEN, HF_TOKEN_PATH or $HF_HOME/token): \
             a gated model will refuse the download",
        );
    }
    if let [req] = &reqs[..] {
        let report = fetch::fetch(req, &opts, progress.as_ref()).map_err(fetch_failure)?;
        return ctx.emit(&report);
    }
    let report = fetch::fetch_set(&reqs, &opts, progress.as_ref()).map_err(|e| {
        let f = fetch_failure(e.source);
        let which = format!(
            "part {} of {}, `{}`, failed; no part was put in place (the verified parts stay in {} \
             for the next run)",
            e.part,
            e.count,
            e.filename,
            fetch::staging_dir(&opts.dest_dir, &reqs[0].filename).display()
        );
        Failure {
            error: f.error.context(which),
            ..f
        }
    })?;
    ctx.emit(&report)
}

/// Flags and environment to requests (several for a split model: its parts, first first) and
/// options; refuses bad input before any request.
fn resolve(ctx: &Ctx, a: &DownloadArgs) -> Result<(Vec<FetchRequest>, FetchOptions), Failure> {
    let bad = |msg: String, hint: &str| {
        Failure::new(Exit::Usage, anyhow::anyhow!(msg)).hint(hint.to_string())
    };
    // The same rules as the registry's (`validate`), checked here to name the flag.
    let refuse = |exit: Exit, flag: &str, e: ValidationError, hint: &str| {
        Failure::new(exit, anyhow::anyhow!("refusing {flag}: {e}")).hint(hint.to_string())
    };
    let sha256 = a.sha256.clone().unwrap_or_default();
    if a.sha256.is_some() {
        validate::sha256(&sha256).map_err(|e| {
            refuse(
                Exit::BadInput,
                "--sha256",
                e,
                "pass the file's sha256 as `sha256sum FILE` prints it, or as the model page lists it",
            )
        })?;
    }
    if a.model.is_some() {
        let reqs = registry_requests(ctx, a)?;
        if reqs.len() > 1 && a.filename.is_some() {
            return Err(bad(
                "--filename cannot rename a model split in parts: llama.cpp finds the parts by \
                 their names"
                    .into(),
                "leave out --filename",
            ));
        }
        let mut reqs = reqs;
        if let (Some(name), [req]) = (&a.filename, &mut reqs[..]) {
            req.filename = name.clone();
        }
        check_local_name(&reqs[0].filename, a)?;
        let opts = fetch_options(&a.transfer, ctx.paths.models_dir.clone(), reqs[0].gated)?;
        return Ok((reqs, opts));
    }
    let mut req = match (&a.url, &a.repo, &a.file) {
        (Some(url), _, _) => FetchRequest {
            url: url.clone(),
            filename: url_basename(url),
            expected_size: a.size,
            sha256,
            gated: a.gated,
            hf: None,
        },
        (None, Some(repo), Some(file)) => {
            validate::model_file_path(file).map_err(|e| {
                refuse(
                    Exit::BadInput,
                    "--file",
                    e,
                    "give the file's path inside the repository, e.g. `model-q4_k_m.gguf`",
                )
            })?;
            validate::hf_repo_id(repo).map_err(|e| {
                refuse(
                    Exit::Usage,
                    "--repo",
                    e,
                    "e.g. --repo Qwen/Qwen2.5-3B-Instruct-GGUF",
                )
            })?;
            let hf = HfFile {
                endpoint: endpoint(a.mirror.as_deref())?,
                repo: repo.clone(),
                revision: a.revision.clone().unwrap_or_else(|| "main".into()),
                path: file.clone(),
            };
            FetchRequest::hugging_face(hf, &sha256, a.size, a.gated)
        }
        _ => {
            return Err(bad(
                "give --url URL, or --repo ORG/NAME with --file PATH".into(),
                "see `minerva-setup download --help`",
            ))
        }
    };
    if let Some(name) = &a.filename {
        req.filename = name.clone();
    }
    check_local_name(&req.filename, a)?;
    let opts = fetch_options(&a.transfer, ctx.paths.models_dir.clone(), req.gated)?;
    Ok((vec![req], opts))
}

/// The local file name must be a plain `.gguf` name; the error says where it came from.
fn check_local_name(name: &str, a: &DownloadArgs) -> Result<(), Failure> {
    let name_from = match &a.filename {
        Some(_) => "given with --filename",
        None if a.url.is_some() => "taken from --url (choose one with --filename)",
        None => "taken from the file's path (choose another with --filename)",
    };
    validate::model_file_name(name).map_err(|e| {
        Failure::new(
            Exit::BadInput,
            anyhow::anyhow!("refusing file name {name_from}: {e}"),
        )
        .hint("the models directory holds plain `.gguf` names, e.g. --filename model-q4_k_m.gguf")
    })
}

/// `download MODEL_ID`: the registry says where the file (or each part of a split model) is and
/// what it must hash to.
fn registry_requests(ctx: &Ctx, a: &DownloadArgs) -> Result<Vec<FetchRequest>, Failure> {
    let id = a.model.as_deref().unwrap_or_default();
    if let Some(r) = remote_model(ctx, id, a.mirror.as_deref(), a.revision.as_deref())? {
        let sha = match (&a.sha256, &r.info.sha256) {
            (Some(given), _) => given.clone(),
            (None, Some(published)) => published.clone(),
            (None, None) => {
                return Err(Failure::new(
                    Exit::BadInput,
                    anyhow::anyhow!(
                        "{} has no sha256 in Hugging Face's metadata: a download could not be told apart from a corrupted one",
                        r.file.id
                    ),
                )
                .hint("pass the file's sha256 with --sha256 (the model page lists it)"))
            }
        };
        let hf = HfFile {
            revision: r.file.revision.clone(),
            ..r.hf
        };
        return Ok(vec![FetchRequest::hugging_face(
            hf,
            &sha,
            Some(r.info.size_bytes),
            r.file.gated,
        )]);
    }
    if a.sha256.is_some() {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!("--sha256 does not apply to the registry model `{id}`: the registry pins its sha256"),
        )
        .hint("drop --sha256, or download with --repo ORG/NAME --file PATH --sha256 HEX"));
    }
    let (reg, _) = crate::app::settings::load_registry(ctx)?;
    let Some(f) = reg.get(id) else {
        return Err(Failure::new(
            Exit::Usage,
            anyhow::anyhow!("unknown model `{id}`: not in the registry"),
        )
        .hint("see `minerva-setup registry list` for the ids"));
    };
    let not_installable = |reason: String| {
        Failure::new(
            Exit::BadInput,
            anyhow::anyhow!("`{id}` is not installable: {reason}"),
        )
        .hint("pick a model with a known sha256, or pass --repo/--file/--sha256 yourself")
    };
    if let Some(reason) = f.not_installable_reason() {
        return Err(not_installable(reason));
    }
    let revision = a.revision.clone().unwrap_or_else(|| f.revision.clone());
    crate::pipeline::install::fetch_requests(f, &endpoint(a.mirror.as_deref())?, &revision)
        .ok_or_else(|| not_installable("no sha256".into()))
}

/// The last path segment of a URL, without query or fragment (validated later as a file name).
fn url_basename(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = path.split_once("://").map(|(_, r)| r).unwrap_or(path);
    match after_scheme.split_once('/') {
        Some((_, p)) => p.rsplit('/').next().unwrap_or("").to_string(),
        None => String::new(),
    }
}

impl Human for FetchReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let how = match self.obtained {
            Obtained::Downloaded if self.resumed_from > 0 => format!(
                "downloaded {} bytes, resumed from byte {}, {} request(s){}",
                self.bytes_downloaded,
                self.resumed_from,
                self.attempts,
                on_connections(self.connections)
            ),
            Obtained::Downloaded => format!(
                "downloaded {} bytes, {} request(s){}",
                self.bytes_downloaded,
                self.attempts,
                on_connections(self.connections)
            ),
            Obtained::AlreadyPresent => "already present".to_string(),
            Obtained::HfCache => "taken from the Hugging Face cache".to_string(),
        };
        let rate = if self.bytes_downloaded > 0 && self.elapsed_s > 0.0 {
            format!(
                ", {:.1} MiB/s",
                self.bytes_downloaded as f64 / self.elapsed_s / (1 << 20) as f64
            )
        } else {
            String::new()
        };
        let _ = writeln!(s, "File      {}", self.path.display());
        let _ = writeln!(s, "Size      {} bytes", self.bytes);
        let _ = writeln!(s, "sha256    {} (verified)", self.sha256);
        let _ = writeln!(s, "Source    {}", self.source_url);
        let _ = writeln!(s, "Obtained  {how} in {:.1} s{rate}", self.elapsed_s);
        s
    }
}

impl Human for SetReport {
    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Model     {} ({} parts, {} bytes, every part verified)",
            self.path.display(),
            self.parts.len(),
            self.bytes
        );
        for (i, p) in self.parts.iter().enumerate() {
            let how = match p.obtained {
                Obtained::Downloaded if p.resumed_from > 0 => {
                    format!("downloaded, resumed from byte {}", p.resumed_from)
                }
                Obtained::Downloaded => "downloaded".to_string(),
                Obtained::AlreadyPresent => "already present".to_string(),
                Obtained::HfCache => "from the Hugging Face cache".to_string(),
            };
            let _ = writeln!(
                s,
                "Part {}   {} ({} bytes, sha256 {}, {how})",
                i + 1,
                p.path.display(),
                p.bytes,
                p.sha256
            );
        }
        let _ = writeln!(
            s,
            "Obtained  {} bytes downloaded in {:.1} s",
            self.bytes_downloaded, self.elapsed_s
        );
        s
    }
}

/// `" on N connections"` when the file came on more than one.
fn on_connections(n: u32) -> String {
    if n > 1 {
        format!(" on {n} connections")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basenames() {
        assert_eq!(
            url_basename("http://h:1/a/b/m.gguf?download=true"),
            "m.gguf"
        );
        assert_eq!(url_basename("http://h/"), "");
        assert_eq!(url_basename("http://h"), "");
    }
}
