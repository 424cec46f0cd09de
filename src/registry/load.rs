//! Reading and validating registry family files and the tier table.
//!
//! Each entry is decoded field by field so that an error can name the field, not just the line:
//! `registry/qwen2.5.json: model `qwen2.5-1.5b-instruct-q4_k_m`: field `sha256`: ...`.

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{ModelFile, ModelPart, Registry, Tier, Tiers, REGISTRY_SCHEMA_VERSION};
use crate::gguf::split::{parse_split_name, split_file_name};
use crate::types::capabilities::Capability;
use crate::validate;

/// The tier table compiled into the binary.
pub const EMBEDDED_TIERS: &str = include_str!("../../tiers.json");

/// The family files compiled into the binary, by file name. A test checks that every file in
/// `registry/` is listed here.
pub const EMBEDDED_REGISTRY_FILES: &[(&str, &str)] = &[
    ("gemma-2.json", include_str!("../../registry/gemma-2.json")),
    ("llama-2.json", include_str!("../../registry/llama-2.json")),
    (
        "llama-3.1.json",
        include_str!("../../registry/llama-3.1.json"),
    ),
    (
        "llama-3.2.json",
        include_str!("../../registry/llama-3.2.json"),
    ),
    ("mistral.json", include_str!("../../registry/mistral.json")),
    ("phi-3.json", include_str!("../../registry/phi-3.json")),
    ("qwen2.5.json", include_str!("../../registry/qwen2.5.json")),
    ("smollm2.json", include_str!("../../registry/smollm2.json")),
    (
        "tinyllama.json",
        include_str!("../../registry/tinyllama.json"),
    ),
];

/// Why a registry or tier file was rejected. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read `{path}`")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` holds no registry files (*.json)")]
    Empty { path: String },
    #[error("`{file}` is not valid JSON: {detail}")]
    Json { file: String, detail: String },
    #[error("`{file}`: {entry}: field `{field}`: {detail}")]
    Field {
        file: String,
        entry: String,
        field: String,
        detail: String,
    },
}

fn field_err(file: &str, entry: &str, field: &str, detail: impl Into<String>) -> RegistryError {
    RegistryError::Field {
        file: file.to_string(),
        entry: entry.to_string(),
        field: field.to_string(),
        detail: detail.into(),
    }
}

pub(super) fn embedded_registry() -> Result<Registry, RegistryError> {
    let mut files = Vec::new();
    let mut seen = HashMap::new();
    for (name, text) in EMBEDDED_REGISTRY_FILES {
        let shown = format!("registry/{name} (embedded)");
        for f in parse_family(text, &shown)? {
            check_unique(&mut seen, &f.id, &shown)?;
            files.push(f);
        }
    }
    Ok(Registry {
        origin: "embedded".to_string(),
        files,
    })
}

/// Load every `*.json` in `dir` (sorted by name) as a family file.
pub fn load_registry_dir(dir: &Path) -> Result<Registry, RegistryError> {
    let shown = dir.display().to_string();
    let read_dir = std::fs::read_dir(dir).map_err(|source| RegistryError::Read {
        path: shown.clone(),
        source,
    })?;
    let mut paths = Vec::new();
    for e in read_dir {
        let e = e.map_err(|source| RegistryError::Read {
            path: shown.clone(),
            source,
        })?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") && p.is_file() {
            paths.push(p);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(RegistryError::Empty { path: shown });
    }
    let mut files = Vec::new();
    let mut seen = HashMap::new();
    for p in paths {
        let name = p.display().to_string();
        let text = std::fs::read_to_string(&p).map_err(|source| RegistryError::Read {
            path: name.clone(),
            source,
        })?;
        for mut f in parse_family(&text, &name)? {
            check_unique(&mut seen, &f.id, &name)?;
            f.source_file = Some(p.clone());
            files.push(f);
        }
    }
    Ok(Registry {
        origin: shown,
        files,
    })
}

fn check_unique(
    seen: &mut HashMap<String, String>,
    id: &str,
    file: &str,
) -> Result<(), RegistryError> {
    if let Some(first) = seen.get(id) {
        return Err(field_err(
            file,
            &format!("model `{id}`"),
            "id",
            format!("duplicate id, already defined in `{first}`"),
        ));
    }
    seen.insert(id.to_string(), file.to_string());
    Ok(())
}

/// Parse and validate one family file. `file` names it in errors.
pub fn parse_family(text: &str, file: &str) -> Result<Vec<ModelFile>, RegistryError> {
    let root: Value = serde_json::from_str(text).map_err(|e| RegistryError::Json {
        file: file.to_string(),
        detail: e.to_string(),
    })?;
    let obj = root
        .as_object()
        .ok_or_else(|| field_err(file, "top level", "(root)", "expected a JSON object"))?;
    check_schema_version(obj, file)?;
    let family: String = take(obj, "family", file, "top level")?;
    let entries = obj.get("files").and_then(Value::as_array).ok_or_else(|| {
        field_err(
            file,
            "top level",
            "files",
            "expected an array of model files",
        )
    })?;
    let mut out = Vec::with_capacity(entries.len());
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, v) in entries.iter().enumerate() {
        let label = match v.get("id").and_then(Value::as_str) {
            Some(id) => format!("model `{id}`"),
            None => format!("files[{i}]"),
        };
        let mut f = parse_model_file(v, file, &label)?;
        if let Some(j) = ids.insert(f.id.clone(), i) {
            return Err(field_err(
                file,
                &label,
                "id",
                format!("duplicate id, also files[{j}]"),
            ));
        }
        f.family = family.clone();
        out.push(f);
    }
    Ok(out)
}

fn check_schema_version(obj: &Map<String, Value>, file: &str) -> Result<(), RegistryError> {
    let v: u32 = take(obj, "schema_version", file, "top level")?;
    if v == 0 || v > REGISTRY_SCHEMA_VERSION {
        return Err(field_err(
            file,
            "top level",
            "schema_version",
            format!(
                "{v} is not supported; this minerva-setup reads version {REGISTRY_SCHEMA_VERSION}"
            ),
        ));
    }
    Ok(())
}

const MODEL_FIELDS: &[&str] = &[
    "id",
    "repo",
    "revision",
    "filename",
    "sha256",
    "size_bytes",
    "quantisation",
    "parameters",
    "base_model",
    "shape",
    "licence",
    "gated",
    "checksum_source",
    "notes",
    "parts",
];

/// The fields a model in `parts` gives per part instead.
const SINGLE_FILE_FIELDS: &[&str] = &["filename", "sha256", "size_bytes"];

fn parse_model_file(v: &Value, file: &str, entry: &str) -> Result<ModelFile, RegistryError> {
    let obj = v
        .as_object()
        .ok_or_else(|| field_err(file, entry, "(entry)", "expected a JSON object"))?;
    for k in obj.keys() {
        if !MODEL_FIELDS.contains(&k.as_str()) {
            return Err(field_err(
                file,
                entry,
                k,
                format!("unknown field; expected one of {}", MODEL_FIELDS.join(", ")),
            ));
        }
    }
    // Decode each field on its own first, so that a type error names the field.
    let id: String = take(obj, "id", file, entry)?;
    let repo: String = take(obj, "repo", file, entry)?;
    let split = obj.contains_key("parts");
    if split {
        if let Some(k) = SINGLE_FILE_FIELDS.iter().find(|k| obj.contains_key(**k)) {
            return Err(field_err(
                file,
                entry,
                k,
                format!(
                    "an entry with `parts` gives each part's filename, sha256 and size_bytes there; \
                     remove `{k}` (or `parts`, for a model in one file)"
                ),
            ));
        }
    }
    let parts = if split {
        parse_parts(obj, file, entry)?
    } else {
        Vec::new()
    };
    let filename: String = match parts.first() {
        Some(p) => p.filename.clone(),
        None => take(obj, "filename", file, entry)?,
    };
    let sha256: Option<String> = take(obj, "sha256", file, entry)?;
    let _: Option<u64> = take(obj, "size_bytes", file, entry)?;
    let _: crate::gguf::FileType = take(obj, "quantisation", file, entry)?;
    let parameters: u64 = take(obj, "parameters", file, entry)?;
    let shape: crate::gguf::ModelShape = take(obj, "shape", file, entry)?;
    let _: String = take(obj, "licence", file, entry)?;
    if obj.contains_key("revision") {
        let rev: String = take(obj, "revision", file, entry)?;
        if rev.is_empty() || rev.contains("..") || rev.chars().any(char::is_whitespace) {
            return Err(field_err(
                file,
                entry,
                "revision",
                format!("`{rev}` is not a usable git revision"),
            ));
        }
    }
    let mut f: ModelFile = serde_json::from_value(v.clone())
        .map_err(|e| field_err(file, entry, "(entry)", e.to_string()))?;
    if split {
        f.filename = filename.clone();
        f.size_bytes = parts
            .iter()
            .try_fold(0u64, |sum, p| p.size_bytes.and_then(|b| sum.checked_add(b)));
        f.parts = parts;
    }

    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
    {
        return Err(field_err(
            file,
            entry,
            "id",
            format!("`{id}` must be non-empty lowercase letters, digits, `.`, `_`, `-`"),
        ));
    }
    validate::hf_repo_id(&repo).map_err(|e| field_err(file, entry, "repo", e.to_string()))?;
    // A plain name, no directories: it is also the file's name in the models directory.
    validate::model_file_name(&filename)
        .map_err(|e| field_err(file, entry, "filename", e.to_string()))?;
    if let Some(s) = &sha256 {
        validate::sha256(s).map_err(|e| {
            field_err(
                file,
                entry,
                "sha256",
                format!("{e} (or null when no source gives one)"),
            )
        })?;
    }
    if f.size_bytes == Some(0) {
        return Err(field_err(
            file,
            entry,
            "size_bytes",
            "must be positive (or null when unknown)",
        ));
    }
    if parameters == 0 {
        return Err(field_err(file, entry, "parameters", "must be positive"));
    }
    let positive = [
        ("n_layers", shape.n_layers),
        ("n_embd", shape.n_embd),
        ("n_ff", shape.n_ff),
        ("n_heads", shape.n_heads),
        ("n_kv_heads", shape.n_kv_heads),
        ("head_dim", shape.head_dim),
        ("vocab_size", shape.vocab_size),
        ("context_length", shape.context_length),
    ];
    for (name, v) in positive {
        if v == 0 {
            return Err(field_err(
                file,
                entry,
                &format!("shape.{name}"),
                "must be positive",
            ));
        }
    }
    if !shape.n_heads.is_multiple_of(shape.n_kv_heads) {
        return Err(field_err(
            file,
            entry,
            "shape.n_kv_heads",
            format!(
                "{} does not divide n_heads {}",
                shape.n_kv_heads, shape.n_heads
            ),
        ));
    }
    Ok(f)
}

/// The `parts` of a split model, each checked: a plain `.gguf` name of llama.cpp's pattern
/// `NAME-0000k-of-0000N.gguf` with one NAME and N = the number of parts, k = 1..N in order; a
/// sha256 (or null) and a positive size (or null) like a single file's.
fn parse_parts(
    obj: &Map<String, Value>,
    file: &str,
    entry: &str,
) -> Result<Vec<ModelPart>, RegistryError> {
    let items = obj.get("parts").and_then(Value::as_array).ok_or_else(|| {
        field_err(
            file,
            entry,
            "parts",
            "expected an array of parts ({\"filename\": ..., \"sha256\": ..., \"size_bytes\": ...})",
        )
    })?;
    if items.len() < 2 {
        return Err(field_err(
            file,
            entry,
            "parts",
            format!(
                "lists {} part(s); a split model has at least two (give a model in one file with \
                 `filename`, `sha256` and `size_bytes` instead)",
                items.len()
            ),
        ));
    }
    if items.len() > usize::from(u16::MAX) {
        return Err(field_err(file, entry, "parts", "lists too many parts"));
    }
    let n = items.len();
    let mut parts: Vec<ModelPart> = Vec::with_capacity(n);
    for (i, v) in items.iter().enumerate() {
        let field = |name: &str| format!("parts[{i}].{name}");
        let part: ModelPart = serde_json::from_value(v.clone())
            .map_err(|e| field_err(file, entry, &format!("parts[{i}]"), e.to_string()))?;
        validate::model_file_name(&part.filename)
            .map_err(|e| field_err(file, entry, &field("filename"), e.to_string()))?;
        let expected = |prefix: &str| split_file_name(prefix, i as u16 + 1, n as u16);
        let first_prefix = parts
            .first()
            .and_then(|p| parse_split_name(&p.filename))
            .map(|s| s.prefix.to_string());
        match parse_split_name(&part.filename) {
            None => {
                return Err(field_err(
                    file,
                    entry,
                    &field("filename"),
                    format!(
                        "`{}` is not of llama.cpp's split pattern NAME-0000k-of-0000N.gguf; part {} of {n} \
                         is named like `{}`",
                        part.filename,
                        i + 1,
                        expected("NAME")
                    ),
                ))
            }
            Some(s) => {
                let prefix = first_prefix.as_deref().unwrap_or(s.prefix);
                if part.filename != expected(prefix) {
                    return Err(field_err(
                        file,
                        entry,
                        &field("filename"),
                        format!(
                            "`{}` is not part {} of the {n} listed: expected `{}` (the parts are \
                             listed in order, with one name and N = {n})",
                            part.filename,
                            i + 1,
                            expected(prefix)
                        ),
                    ));
                }
            }
        }
        if let Some(sha) = &part.sha256 {
            validate::sha256(sha).map_err(|e| {
                field_err(
                    file,
                    entry,
                    &field("sha256"),
                    format!("{e} (or null when no source gives one)"),
                )
            })?;
        }
        if part.size_bytes == Some(0) {
            return Err(field_err(
                file,
                entry,
                &field("size_bytes"),
                "must be positive (or null when unknown)",
            ));
        }
        parts.push(part);
    }
    Ok(parts)
}

fn take<T: DeserializeOwned>(
    obj: &Map<String, Value>,
    key: &str,
    file: &str,
    entry: &str,
) -> Result<T, RegistryError> {
    let v = obj.get(key).cloned().unwrap_or(Value::Null);
    serde_json::from_value(v).map_err(|e| {
        let detail = if obj.contains_key(key) {
            e.to_string()
        } else {
            format!("missing ({e})")
        };
        field_err(file, entry, key, detail)
    })
}

/// Load a tier table from a file (not yet checked against a registry; see [`validate_tiers`]).
pub fn load_tiers_file(path: &Path) -> Result<Tiers, RegistryError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_tiers(&text, &shown)
}

const TIER_FIELDS: &[&str] = &[
    "id",
    "description",
    "requirements",
    "workload",
    "promise",
    "candidates",
    "requires",
];

/// Parse a tier table. `file` names it in errors.
pub fn parse_tiers(text: &str, file: &str) -> Result<Tiers, RegistryError> {
    let root: Value = serde_json::from_str(text).map_err(|e| RegistryError::Json {
        file: file.to_string(),
        detail: e.to_string(),
    })?;
    let obj = root
        .as_object()
        .ok_or_else(|| field_err(file, "top level", "(root)", "expected a JSON object"))?;
    check_schema_version(obj, file)?;
    let source: String = if obj.contains_key("source") {
        take(obj, "source", file, "top level")?
    } else {
        String::new()
    };
    let entries = obj
        .get("tiers")
        .and_then(Value::as_array)
        .ok_or_else(|| field_err(file, "top level", "tiers", "expected an array of tiers"))?;
    if entries.is_empty() {
        return Err(field_err(file, "top level", "tiers", "holds no tier"));
    }
    let mut tiers: Vec<Tier> = Vec::new();
    for (i, v) in entries.iter().enumerate() {
        let entry = match v.get("id").and_then(Value::as_str) {
            Some(id) => format!("tier `{id}`"),
            None => format!("tiers[{i}]"),
        };
        let o = v
            .as_object()
            .ok_or_else(|| field_err(file, &entry, "(entry)", "expected a JSON object"))?;
        for k in o.keys() {
            if !TIER_FIELDS.contains(&k.as_str()) {
                return Err(field_err(
                    file,
                    &entry,
                    k,
                    format!("unknown field; expected one of {}", TIER_FIELDS.join(", ")),
                ));
            }
        }
        let id: String = take(o, "id", file, &entry)?;
        let _: super::Requirements = take(o, "requirements", file, &entry)?;
        let w: super::Workload = take(o, "workload", file, &entry)?;
        let p: super::TierPromise = take(o, "promise", file, &entry)?;
        let c: Vec<String> = take(o, "candidates", file, &entry)?;
        if o.contains_key("requires") {
            let r: Vec<Capability> = take(o, "requires", file, &entry)?;
            if let Some(dup) = r.iter().enumerate().find(|(i, x)| r[..*i].contains(x)) {
                return Err(field_err(
                    file,
                    &entry,
                    "requires",
                    format!("lists `{}` twice", dup.1.as_str()),
                ));
            }
        }
        let t: Tier = serde_json::from_value(v.clone())
            .map_err(|e| field_err(file, &entry, "(entry)", e.to_string()))?;
        if id.is_empty() {
            return Err(field_err(file, &entry, "id", "is empty"));
        }
        if tiers.iter().any(|x| x.id == id) {
            return Err(field_err(file, &entry, "id", "duplicate tier id"));
        }
        if w.prompt_tokens == 0 || w.response_tokens == 0 {
            return Err(field_err(
                file,
                &entry,
                "workload",
                "prompt_tokens and response_tokens must be positive",
            ));
        }
        if w.concurrency == 0 || w.concurrency > crate::types::workload::MAX_CONCURRENCY {
            return Err(field_err(
                file,
                &entry,
                "workload.concurrency",
                format!(
                    "{} is not a number of conversations in flight: give 1 to {} (or leave it out for 1)",
                    w.concurrency,
                    crate::types::workload::MAX_CONCURRENCY
                ),
            ));
        }
        if w.prompt_tokens as u64 + w.response_tokens as u64 > w.context_tokens as u64 {
            return Err(field_err(
                file,
                &entry,
                "workload.context_tokens",
                format!(
                    "{} is less than prompt_tokens + response_tokens ({})",
                    w.context_tokens,
                    w.prompt_tokens + w.response_tokens
                ),
            ));
        }
        let positive = |x: f64| x > 0.0 && x.is_finite();
        if !positive(p.turn_s) || !positive(p.cold_load_s) {
            return Err(field_err(
                file,
                &entry,
                "promise",
                "turn_s and cold_load_s must be positive numbers",
            ));
        }
        if c.is_empty() {
            return Err(field_err(file, &entry, "candidates", "lists no model"));
        }
        tiers.push(t);
    }
    Ok(Tiers {
        origin: file.to_string(),
        source,
        tiers,
    })
}

/// Check that every candidate of every tier is a registry id.
pub fn validate_tiers(tiers: &Tiers, registry: &Registry) -> Result<(), RegistryError> {
    for t in &tiers.tiers {
        for (i, c) in t.candidates.iter().enumerate() {
            if registry.get(c).is_none() {
                return Err(field_err(
                    &tiers.origin,
                    &format!("tier `{}`", t.id),
                    &format!("candidates[{i}]"),
                    format!(
                        "unknown model id `{c}` (not in the registry loaded from {})",
                        registry.origin
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
      "schema_version": 1, "family": "test", "files": [{
        "id": "tiny-q4_k_m", "repo": "someone/tiny-GGUF", "filename": "tiny.Q4_K_M.gguf",
        "sha256": "9fecc3b3cd76bba89d504f29b616eedf7da85b96540e490ca5824d3f7d2776a0",
        "size_bytes": 668788096, "quantisation": "Q4_K_M", "parameters": 1100048384,
        "shape": {"architecture": "llama", "n_layers": 22, "n_embd": 2048, "n_ff": 5632, "n_heads": 32,
                  "n_kv_heads": 4, "head_dim": 64, "vocab_size": 32000, "context_length": 2048},
        "licence": "apache-2.0"
      }]}"#;

    fn with(field: &str, value: &str) -> String {
        let mut v: Value = serde_json::from_str(GOOD).unwrap();
        v["files"][0][field] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    fn err(text: &str) -> String {
        parse_family(text, "registry/test.json")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn good_entry_parses_with_defaults() {
        let f = &parse_family(GOOD, "t.json").unwrap()[0];
        assert_eq!(f.revision, "main");
        assert!(!f.gated);
        assert!(f.installable());
        assert_eq!(f.family, "test");
    }

    #[test]
    fn bad_checksum_names_file_entry_and_field() {
        for bad in [
            r#""ABCDEF""#,
            r#""9FECC3B3CD76BBA89D504F29B616EEDF7DA85B96540E490CA5824D3F7D2776A0""#,
        ] {
            let e = err(&with("sha256", bad));
            assert!(
                e.contains("registry/test.json")
                    && e.contains("`tiny-q4_k_m`")
                    && e.contains("field `sha256`"),
                "{e}"
            );
        }
    }

    #[test]
    fn null_checksum_is_listed_but_not_installable() {
        let f = &parse_family(&with("sha256", "null"), "t.json").unwrap()[0];
        assert!(!f.installable());
        assert!(f.not_installable_reason().unwrap().contains("sha256"));
    }

    #[test]
    fn filenames_with_separators_or_dotdot_are_rejected() {
        for bad in [
            r#""../evil.gguf""#,
            r#""dir/x.gguf""#,
            r#""a\\b.gguf""#,
            r#""x..gguf""#,
            r#""model.bin""#,
            r#"".hidden.gguf""#,
            r#""""#,
        ] {
            let e = err(&with("filename", bad));
            assert!(
                e.contains("field `filename`") && e.contains("`tiny-q4_k_m`"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn repos_must_be_hugging_face_ids() {
        for bad in [
            r#""tiny-GGUF""#,
            r#""someone/tiny/GGUF""#,
            r#""./tiny-GGUF""#,
            r#""someone/tiny--GGUF""#,
            r#""someone/tiny GGUF""#,
        ] {
            let e = err(&with("repo", bad));
            assert!(
                e.contains("field `repo`") && e.contains("ORG/NAME"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn type_errors_and_missing_fields_name_the_field() {
        let e = err(&with("parameters", r#""lots""#));
        assert!(e.contains("field `parameters`"), "{e}");
        let mut v: Value = serde_json::from_str(GOOD).unwrap();
        v["files"][0].as_object_mut().unwrap().remove("repo");
        let e = err(&v.to_string());
        assert!(e.contains("field `repo`") && e.contains("missing"), "{e}");
        let e = err(&with("quantisation", r#""Q9_Z""#));
        assert!(e.contains("field `quantisation`"), "{e}");
        let e = err(&with("colour", r#""blue""#));
        assert!(e.contains("field `colour`") && e.contains("unknown"), "{e}");
        let e = err(&with("shape", r#"{"architecture": "llama"}"#));
        assert!(e.contains("field `shape`") && e.contains("n_layers"), "{e}");
    }

    #[test]
    fn malformed_json_names_the_file() {
        let e = err("{ not json");
        assert!(
            e.contains("registry/test.json") && e.contains("not valid JSON"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_ids_within_a_file_are_rejected() {
        let mut v: Value = serde_json::from_str(GOOD).unwrap();
        let entry = v["files"][0].clone();
        v["files"].as_array_mut().unwrap().push(entry);
        let e = err(&v.to_string());
        assert!(e.contains("duplicate") && e.contains("field `id`"), "{e}");
    }

    #[test]
    fn shape_sanity_is_checked() {
        let mut v: Value = serde_json::from_str(GOOD).unwrap();
        v["files"][0]["shape"]["n_kv_heads"] = 5.into();
        let e = err(&v.to_string());
        assert!(e.contains("shape.n_kv_heads"), "{e}");
    }

    #[test]
    fn tier_requirements_parse_and_bad_ones_name_the_field() {
        let tier = |requires: &str| {
            format!(
                r#"{{"schema_version": 1, "tiers": [{{"id": "t", "requirements": {{}},
                  "workload": {{"prompt_tokens": 8, "response_tokens": 8, "context_tokens": 64}},
                  "promise": {{"turn_s": 1, "cold_load_s": 1}}, "candidates": ["m"]{requires}}}]}}"#
            )
        };
        let t = parse_tiers(&tier(""), "tiers.json").unwrap();
        assert!(t.tiers[0].requires.is_empty());
        let t = parse_tiers(
            &tier(r#", "requires": ["tool-call", "chat-template"]"#),
            "tiers.json",
        )
        .unwrap();
        assert_eq!(
            t.tiers[0].requires,
            [Capability::ToolCall, Capability::ChatTemplate]
        );
        let e = parse_tiers(&tier(r#", "requires": ["json-mode"]"#), "tiers.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tiers.json") && e.contains("field `requires`") && e.contains("tool-call"),
            "{e}"
        );
        let e = parse_tiers(
            &tier(r#", "requires": ["tool-call", "tool-call"]"#),
            "tiers.json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("field `requires`") && e.contains("twice"), "{e}");
    }

    const SHA_A: &str = "9fecc3b3cd76bba89d504f29b616eedf7da85b96540e490ca5824d3f7d2776a0";
    const SHA_B: &str = "1fecc3b3cd76bba89d504f29b616eedf7da85b96540e490ca5824d3f7d2776a0";

    /// GOOD as a split model whose parts are given as `(filename, sha256, size)` JSON texts.
    fn split_with(parts: &[(&str, &str, &str)]) -> String {
        let mut v: Value = serde_json::from_str(GOOD).unwrap();
        let e = v["files"][0].as_object_mut().unwrap();
        for k in ["filename", "sha256", "size_bytes"] {
            e.remove(k);
        }
        let parts: Vec<Value> = parts
            .iter()
            .map(|(f, s, b)| {
                serde_json::json!({
                    "filename": f,
                    "sha256": serde_json::from_str::<Value>(s).unwrap(),
                    "size_bytes": serde_json::from_str::<Value>(b).unwrap(),
                })
            })
            .collect();
        e.insert("parts".into(), Value::Array(parts));
        v.to_string()
    }

    fn three_parts() -> Vec<(String, String, String)> {
        (1..=3)
            .map(|k| {
                (
                    format!("tiny-q4-{k:05}-of-00003.gguf"),
                    format!("\"{}\"", if k == 2 { SHA_B } else { SHA_A }),
                    format!("{}", k * 100),
                )
            })
            .collect()
    }

    fn as_refs(v: &[(String, String, String)]) -> Vec<(&str, &str, &str)> {
        v.iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect()
    }

    #[test]
    fn a_split_entry_lists_its_parts_and_sums_their_sizes() {
        let text = split_with(&as_refs(&three_parts()));
        let f = &parse_family(&text, "t.json").unwrap()[0];
        assert!(f.is_split() && f.installable());
        assert_eq!(f.filename, "tiny-q4-00001-of-00003.gguf");
        assert_eq!(f.size_bytes, Some(600));
        assert_eq!(f.sha256, None);
        let files = f.files();
        assert_eq!(files.len(), 3);
        assert_eq!(files[1].sha256.as_deref(), Some(SHA_B));
        assert_eq!(files[2].filename, "tiny-q4-00003-of-00003.gguf");
        // A single file is its own one file.
        let single = &parse_family(GOOD, "t.json").unwrap()[0];
        assert!(!single.is_split());
        assert_eq!(single.files()[0].filename, single.filename);
    }

    #[test]
    fn a_split_entry_with_an_unpinned_part_is_listed_but_not_installable() {
        let mut p = three_parts();
        p[2].1 = "null".into();
        p[1].2 = "null".into();
        let f = &parse_family(&split_with(&as_refs(&p)), "t.json").unwrap()[0];
        assert!(!f.installable());
        let why = f.not_installable_reason().unwrap();
        assert!(
            why.contains("tiny-q4-00003-of-00003.gguf") && why.contains("sha256"),
            "{why}"
        );
        assert_eq!(f.size_bytes, None, "one size unknown: the sum is unknown");
    }

    #[test]
    fn split_parts_must_follow_the_pattern_in_order_and_name_the_field() {
        type Patch = fn(&mut Vec<(String, String, String)>);
        let cases: [(&str, Patch, &str, &str); 9] = [
            (
                "not the pattern",
                |p| p[1].0 = "tiny-q4-part2.gguf".into(),
                "parts[1].filename",
                "split pattern",
            ),
            (
                "out of order",
                |p| p.swap(1, 2),
                "parts[1].filename",
                "tiny-q4-00002-of-00003.gguf",
            ),
            (
                "another N",
                |p| p[2].0 = "tiny-q4-00003-of-00004.gguf".into(),
                "parts[2].filename",
                "N = 3",
            ),
            (
                "another name",
                |p| p[1].0 = "other-00002-of-00003.gguf".into(),
                "parts[1].filename",
                "tiny-q4-00002-of-00003.gguf",
            ),
            (
                "a part missing",
                |p| {
                    p.remove(2);
                },
                "parts[0].filename",
                "tiny-q4-00001-of-00002.gguf",
            ),
            (
                "a directory",
                |p| p[0].0 = "../tiny-q4-00001-of-00003.gguf".into(),
                "parts[0].filename",
                "plain name",
            ),
            (
                "bad sha256",
                |p| p[1].1 = "\"ABC\"".into(),
                "parts[1].sha256",
                "sha256",
            ),
            (
                "zero size",
                |p| p[2].2 = "0".into(),
                "parts[2].size_bytes",
                "positive",
            ),
            (
                "one part",
                |p| p.truncate(1),
                "field `parts`",
                "at least two",
            ),
        ];
        for (what, patch, field, needle) in cases {
            let mut p = three_parts();
            patch(&mut p);
            let e = err(&split_with(&as_refs(&p)));
            assert!(
                e.contains("registry/test.json")
                    && e.contains("`tiny-q4_k_m`")
                    && e.contains(field)
                    && e.contains(needle),
                "{what}: {e}"
            );
        }
    }

    #[test]
    fn parts_exclude_the_single_file_fields_and_unknown_part_fields() {
        let text = split_with(&as_refs(&three_parts()));
        for (k, val) in [
            ("filename", r#""tiny.gguf""#),
            ("sha256", &format!("\"{SHA_A}\"")[..]),
            ("size_bytes", "1"),
        ] {
            let mut v: Value = serde_json::from_str(&text).unwrap();
            v["files"][0][k] = serde_json::from_str(val).unwrap();
            let e = err(&v.to_string());
            assert!(
                e.contains(&format!("field `{k}`")) && e.contains("`parts`"),
                "{k}: {e}"
            );
        }
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["files"][0]["parts"][1]["colour"] = "blue".into();
        let e = err(&v.to_string());
        assert!(e.contains("parts[1]") && e.contains("colour"), "{e}");
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["files"][0]["parts"] = "all of them".into();
        let e = err(&v.to_string());
        assert!(e.contains("field `parts`") && e.contains("array"), "{e}");
    }

    #[test]
    fn embedded_registry_and_tiers_load_and_validate() {
        let r = embedded_registry().unwrap();
        assert!(r.files.len() >= 25);
        let t = super::super::Tiers::embedded(&r).unwrap();
        assert!(t.tiers.len() >= 8);
    }
}
