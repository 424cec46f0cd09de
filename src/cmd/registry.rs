//! `minerva-setup registry list`: the model files the registry knows, and which can be installed.
//! Also the one place where the CLI loads the registry and the tier table (`--registry`, `--tiers`).

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use serde::Serialize;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::app::settings::endpoint;
use crate::app::{Ctx, Human};
use crate::env_vars::MINERVA_MIRROR;
use crate::exit::{Exit, Failure, ResultExt};
use crate::fetch::{self, remote, FetchOptions, HfFile};
use crate::registry::{self, Pin, Registry, Tiers};

#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List every model file: size, quantisation, whether it can be installed, licence.
    List,
    /// Fill the missing sha256 and size_bytes of a registry directory's files from Hugging
    /// Face's metadata of each file (its LFS object id and size), so that they become
    /// installable. Values already in the files are checked against the metadata, never
    /// overwritten.
    Pin(PinArgs),
}

#[derive(Debug, Args)]
pub struct PinArgs {
    /// The registry directory (its `*.json` family files are edited in place).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Hugging Face endpoint or mirror (default: HF_ENDPOINT, else huggingface.co).
    #[arg(long, value_name = "URL", env = MINERVA_MIRROR)]
    pub mirror: Option<String>,
    /// Show what would be filled in without writing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// What `registry pin` did with one entry.
#[derive(Debug, Serialize)]
pub struct PinOutcome {
    pub id: String,
    pub file: String,
    /// `pinned`, `would-pin`, `checked` (already pinned and matching), `mismatch`
    /// (already pinned and the metadata disagrees) or `failed`.
    pub outcome: &'static str,
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    pub detail: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PinReport {
    pub dir: String,
    pub endpoint: String,
    pub entries: Vec<PinOutcome>,
    /// Family files rewritten.
    pub written: Vec<String>,
}

/// One row of `registry list`.
#[derive(Debug, Serialize)]
pub struct ListedFile {
    pub id: String,
    pub family: String,
    pub repo: String,
    pub filename: String,
    pub quantisation: String,
    pub parameters: u64,
    /// Published size, or null.
    pub size_bytes: Option<u64>,
    /// The tensor-table estimate, given when no size is published.
    pub estimated_size_bytes: Option<u64>,
    pub sha256: Option<String>,
    /// A split model's parts (file name, sha256, size), first first; empty for one file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<crate::registry::ModelPart>,
    pub installable: bool,
    pub not_installable_reason: Option<String>,
    pub gated: bool,
    pub licence: String,
    /// Tiers that list this file as a candidate.
    pub tiers: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RegistryListing {
    pub origin: String,
    pub files: Vec<ListedFile>,
}

pub fn run(ctx: &Ctx, args: &RegistryArgs) -> Result<(), Failure> {
    match &args.command {
        RegistryCommand::List => {
            let (reg, tiers) = crate::app::settings::load_registry(ctx)?;
            ctx.emit(&listing(&reg, &tiers))
        }
        RegistryCommand::Pin(a) => pin(ctx, a),
    }
}

fn pin(ctx: &Ctx, a: &PinArgs) -> Result<(), Failure> {
    let hint = "give the directory holding the registry's family files (registry/*.json)";
    // Validated first: a registry that does not load is not edited.
    let reg = registry::load_registry_dir(&a.dir)
        .exit(Exit::BadInput)
        .map_err(|f| f.hint(hint))?;
    let endpoint = endpoint(a.mirror.as_deref())?;
    let opts = FetchOptions {
        token: fetch::hf_token_from_env(),
        ..FetchOptions::default()
    };
    let progress = ctx.progress();
    let mut entries = Vec::new();
    let mut pins: BTreeMap<String, Vec<Pin>> = BTreeMap::new();
    for f in &reg.files {
        // Every entry of a registry directory knows its family file.
        let file = f
            .source_file
            .clone()
            .unwrap_or_else(|| a.dir.join(format!("{}.json", f.family)));
        let hf = HfFile {
            endpoint: endpoint.clone(),
            repo: f.repo.clone(),
            revision: f.revision.clone(),
            path: f.filename.clone(),
        };
        let outcome = |outcome, detail: Option<String>| PinOutcome {
            id: f.id.clone(),
            file: file.display().to_string(),
            outcome,
            sha256: f.sha256.clone(),
            size_bytes: f.size_bytes,
            detail,
        };
        progress.note(&format!("{}: asking {} for its metadata", f.id, hf.repo));
        let info = match remote::file_info(&hf, &opts, opts.token.is_some()) {
            Ok(i) => i,
            Err(e) => {
                entries.push(outcome("failed", Some(e.to_string())));
                continue;
            }
        };
        let mismatch = [
            f.sha256
                .as_ref()
                .zip(info.sha256.as_ref())
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("sha256 {a} in the registry, {b} on the server")),
            f.size_bytes
                .zip(Some(info.size_bytes))
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("size {a} in the registry, {b} on the server")),
        ];
        let mismatch: Vec<String> = mismatch.into_iter().flatten().collect();
        if !mismatch.is_empty() {
            entries.push(outcome("mismatch", Some(mismatch.join("; "))));
            continue;
        }
        if f.sha256.is_some() && f.size_bytes.is_some() {
            entries.push(outcome("checked", None));
            continue;
        }
        if f.sha256.is_none() && info.sha256.is_none() {
            entries.push(outcome(
                "failed",
                Some("the server sends no sha256 (X-Linked-Etag) for it".into()),
            ));
            continue;
        }
        let source = format!(
            "Hugging Face file metadata (X-Linked-Etag, X-Linked-Size) of {}{} on {}",
            hf.repo,
            info.commit
                .as_ref()
                .map(|c| format!(" at commit {c}"))
                .unwrap_or_default(),
            crate::types::time::now()
                .to_string()
                .get(..10)
                .unwrap_or("")
        );
        pins.entry(file.display().to_string())
            .or_default()
            .push(Pin {
                id: f.id.clone(),
                sha256: info.sha256.clone(),
                size_bytes: Some(info.size_bytes),
                checksum_source: Some(source),
            });
        entries.push(PinOutcome {
            sha256: f.sha256.clone().or(info.sha256.clone()),
            size_bytes: Some(info.size_bytes),
            ..outcome(if a.dry_run { "would-pin" } else { "pinned" }, None)
        });
    }
    let mut written = Vec::new();
    if !a.dry_run {
        for (file, pins) in &pins {
            let path = PathBuf::from(file);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read `{file}`"))
                .exit(Exit::Failure)?;
            let new = registry::pin_family_text(&text, file, pins).exit(Exit::BadInput)?;
            crate::fsutil::write_atomic(&path, new.as_bytes())
                .with_context(|| format!("cannot write `{file}`; it is unchanged"))
                .exit(Exit::Failure)?;
            written.push(file.clone());
        }
    }
    let report = PinReport {
        dir: a.dir.display().to_string(),
        endpoint,
        entries,
        written,
    };
    let bad = report
        .entries
        .iter()
        .filter(|e| matches!(e.outcome, "failed" | "mismatch"))
        .count();
    ctx.emit(&report)?;
    if bad > 0 {
        return Err(Failure::new(
            Exit::Download,
            anyhow::anyhow!(
                "{bad} entr{} could not be pinned or disagree with the server",
                if bad == 1 { "y" } else { "ies" }
            ),
        )
        .hint("see the entries marked failed or mismatch; the other files were pinned")
        .after_report());
    }
    Ok(())
}

impl Human for PinReport {
    fn human(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            let _ = write!(s, "{:<10} {}", e.outcome, e.id);
            if matches!(e.outcome, "pinned" | "would-pin") {
                let _ = write!(
                    s,
                    "  sha256 {}  {} bytes",
                    e.sha256.as_deref().unwrap_or("?"),
                    e.size_bytes.unwrap_or(0)
                );
            }
            if let Some(d) = &e.detail {
                let _ = write!(s, "  ({d})");
            }
            s.push('\n');
        }
        if self.written.is_empty() {
            let _ = writeln!(s, "no file written");
        }
        for f in &self.written {
            let _ = writeln!(s, "wrote {f}");
        }
        s
    }
}

pub fn listing(reg: &Registry, tiers: &Tiers) -> RegistryListing {
    let files = reg
        .files
        .iter()
        .map(|f| {
            let estimated = if f.size_bytes.is_none() {
                Some(crate::select::model_input(f).file_bytes)
            } else {
                None
            };
            ListedFile {
                id: f.id.clone(),
                family: f.family.clone(),
                repo: f.repo.clone(),
                filename: f.filename.clone(),
                quantisation: f.quantisation.label().to_string(),
                parameters: f.parameters,
                size_bytes: f.size_bytes,
                estimated_size_bytes: estimated,
                sha256: f.sha256.clone(),
                parts: f.parts.clone(),
                installable: f.installable(),
                not_installable_reason: f.not_installable_reason(),
                gated: f.gated,
                licence: f.licence.clone(),
                tiers: tiers
                    .tiers
                    .iter()
                    .filter(|t| t.candidates.contains(&f.id))
                    .map(|t| t.id.clone())
                    .collect(),
            }
        })
        .collect();
    RegistryListing {
        origin: reg.origin.clone(),
        files,
    }
}

impl Human for RegistryListing {
    fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<34} {:>7} {:<7} {:>9}  {:<15} {:<11} TIERS",
            "ID", "PARAMS", "QUANT", "SIZE", "INSTALL", "LICENCE"
        );
        for f in &self.files {
            let size = match (f.size_bytes, f.estimated_size_bytes) {
                (Some(b), _) => format!("{:.2} GB", b as f64 / 1e9),
                (None, Some(e)) => format!("~{:.2} GB", e as f64 / 1e9),
                _ => "?".into(),
            };
            let install = if f.installable {
                if f.gated {
                    "yes (HF_TOKEN)"
                } else {
                    "yes"
                }
            } else {
                "no: no sha256"
            };
            let _ = writeln!(
                s,
                "{:<34} {:>6.1}B {:<7} {:>9}  {:<15} {:<11} {}",
                f.id,
                f.parameters as f64 / 1e9,
                f.quantisation,
                size,
                install,
                f.licence,
                f.tiers.join(",")
            );
        }
        let _ = writeln!(
            s,
            "\n~ size estimated from the tensor table (no published size)"
        );
        let _ = writeln!(s, "registry: {}", self.origin);
        s
    }
}
