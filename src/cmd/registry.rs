//! `minerva-setup registry list`: the model files the registry knows, and which can be installed.
//! Also the one place where the CLI loads the registry and the tier table (`--registry`, `--tiers`).

use std::fmt::Write as _;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::app::{Ctx, Human};
use crate::exit::Failure;
use crate::registry::{Registry, Tiers};

#[derive(Debug, Args)]
pub struct RegistryArgs {
    #[command(subcommand)]
    pub command: RegistryCommand,
}

#[derive(Debug, Subcommand)]
pub enum RegistryCommand {
    /// List every model file: size, quantisation, whether it can be installed, licence.
    List,
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
    match args.command {
        RegistryCommand::List => {
            let (reg, tiers) = crate::app::settings::load_registry(ctx)?;
            ctx.emit(&listing(&reg, &tiers))
        }
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
