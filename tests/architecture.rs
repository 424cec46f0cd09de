//! The layering of `src/` (see docs/architecture.md): no module imports a module above it, no
//! two modules import each other, the subcommands in `cmd/` never import one another, and the
//! command-line parser (clap) stays in the command-line layers.
//!
//! The checker reads the source as text: every `crate::a::…` path, `crate::{a, b}` group and
//! `super::…` path outside comments counts as a dependency of the file's module on `a`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every top-level module of the crate with its layer: a module may use modules of lower layers
/// only. Keep in step with docs/architecture.md.
const LAYERS: &[(&str, u32)] = &[
    // 0: values and utilities that know nothing of the rest.
    ("types", 0),
    ("validate", 0),
    ("fsutil", 0),
    ("progress", 0),
    ("env_vars", 0),
    ("paths", 0),
    ("exit", 0),
    // 1: descriptions of a machine, a model file and an installation.
    ("profile", 1),
    ("gguf", 1),
    ("config", 1),
    // 2: reading the world: the llama.cpp layer, the probe, the registry, the network.
    ("llama", 2),
    ("probe", 2),
    ("registry", 2),
    ("fetch", 2),
    // 3: the stages that measure and predict.
    ("bench", 3),
    ("predict", 3),
    ("verify", 3),
    // 4: choosing.
    ("select", 4),
    // 5: what is remembered between runs.
    ("state", 5),
    // 6: the pipeline and its policies.
    ("pipeline", 6),
    // 7-10: the command line.
    ("term", 7),
    ("app", 8),
    ("cmd", 9),
    ("cli", 10),
];

/// Modules below this layer may not use clap: the command line is resolved above them.
const FIRST_CLI_LAYER: u32 = 7;

/// A source file as the checker sees it: its module path (`["pipeline", "install"]`) and text.
struct Source {
    module: Vec<String>,
    display: String,
    text: String,
}

/// A dependency of one module on another, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: Vec<String>,
    to: Vec<String>,
    at: String,
}

fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn read_tree(root: &Path) -> Vec<Source> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<Source>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p.strip_prefix(root).unwrap();
                if rel == Path::new("main.rs") {
                    continue;
                }
                out.push(Source {
                    module: module_path(rel),
                    display: format!("src/{}", rel.display()),
                    text: std::fs::read_to_string(&p).unwrap(),
                });
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// The text without comments (line, doc and block comments): a path in a doc link is no import.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c as char);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1] as char);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            out.push('"');
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The first segments named by a `{ a, b::c, d::{e} }` group starting at `s` (after the `{`).
fn group_heads(s: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut expecting = true;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expecting = true,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let id = ident_at(rest).unwrap();
                if expecting && depth == 0 && id != "self" {
                    heads.push(id.to_string());
                }
                expecting = false;
                rest = &rest[id.len()..];
                continue;
            }
            _ => {}
        }
        rest = &rest[c.len_utf8()..];
    }
    heads
}

/// Dependencies of one file: the module paths (one or two segments) it refers to.
fn dependencies(src: &Source) -> Vec<Edge> {
    let text = strip_comments(&src.text);
    let mut edges = Vec::new();
    // Inline `mod name {` blocks: `super::` inside them refers to the file's own module.
    let mut inline_depths: Vec<i32> = Vec::new();
    let mut depth = 0i32;
    for (n, line) in text.lines().enumerate() {
        let at = format!("{}:{}", src.display, n + 1);
        let trimmed = line.trim_start();
        let opens_inline_mod = (trimmed.starts_with("mod ") || trimmed.starts_with("pub mod "))
            && trimmed.trim_end().ends_with('{');
        let mut push = |to: Vec<String>| {
            edges.push(Edge {
                from: src.module.clone(),
                to,
                at: at.clone(),
            })
        };
        for (i, _) in line.match_indices("crate::") {
            if i > 0 {
                let prev = line.as_bytes()[i - 1];
                if prev.is_ascii_alphanumeric() || prev == b'_' {
                    continue;
                }
            }
            let rest = &line[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                for h in group_heads(group) {
                    push(vec![h]);
                }
            } else if let Some(a) = ident_at(rest) {
                let after = rest[a.len()..].strip_prefix("::").unwrap_or("");
                if let Some(group) = after.strip_prefix('{') {
                    for h in group_heads(group) {
                        push(vec![a.to_string(), h]);
                    }
                } else if let Some(b) = ident_at(after) {
                    push(vec![a.to_string(), b.to_string()]);
                } else {
                    push(vec![a.to_string()]);
                }
            }
        }
        for (i, _) in line.match_indices("super::") {
            if i > 0 {
                let prev = line.as_bytes()[i - 1];
                if prev.is_ascii_alphanumeric() || prev == b'_' || prev == b':' {
                    continue;
                }
            }
            if !inline_depths.is_empty() {
                continue; // `super` of an inline module is this file's module
            }
            let mut base = src.module.clone();
            if base.pop().is_none() {
                continue;
            }
            let rest = &line[i + "super::".len()..];
            let heads = match rest.strip_prefix('{') {
                Some(group) => group_heads(group),
                None => ident_at(rest)
                    .map(|a| vec![a.to_string()])
                    .unwrap_or_default(),
            };
            for h in heads {
                let mut to = base.clone();
                to.push(h);
                push(to);
            }
        }
        for c in line.chars() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if inline_depths.last() == Some(&depth) {
                        inline_depths.pop();
                    }
                }
                _ => {}
            }
        }
        if opens_inline_mod {
            inline_depths.push(depth - 1);
        }
    }
    edges
}

/// Everything wrong with the layering of `sources`, one sentence each.
fn violations(sources: &[Source]) -> Vec<String> {
    let layer: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let known_tops: BTreeSet<String> = sources
        .iter()
        .filter_map(|s| s.module.first().cloned())
        .collect();
    let mut problems = Vec::new();
    for top in &known_tops {
        if !layer.contains_key(top.as_str()) {
            problems.push(format!(
                "module `{top}` has no layer: add it to LAYERS in tests/architecture.rs and to docs/architecture.md"
            ));
        }
    }
    let mut edges: BTreeSet<Edge> = BTreeSet::new();
    for s in sources {
        if s.module.is_empty() {
            continue; // lib.rs declares the modules
        }
        for e in dependencies(s) {
            if known_tops.contains(&e.to[0]) {
                edges.insert(e);
            }
        }
        let l = layer.get(s.module[0].as_str()).copied().unwrap_or(u32::MAX);
        if l < FIRST_CLI_LAYER {
            let text = strip_comments(&s.text);
            if let Some(n) = text.lines().position(|line| {
                line.contains("clap::") || line.contains("ValueEnum") || line.contains("use clap")
            }) {
                problems.push(format!(
                    "{}:{}: `{}` uses clap, which belongs to the command-line layers",
                    s.display,
                    n + 1,
                    s.module[0]
                ));
            }
        }
    }
    // Top-level: downward only.
    let mut top_pairs: BTreeMap<(String, String), String> = BTreeMap::new();
    for e in &edges {
        let (a, b) = (&e.from[0], &e.to[0]);
        if a == b {
            continue;
        }
        top_pairs
            .entry((a.clone(), b.clone()))
            .or_insert(e.at.clone());
        let (la, lb) = (
            layer.get(a.as_str()).copied().unwrap_or(u32::MAX),
            layer.get(b.as_str()).copied().unwrap_or(u32::MAX),
        );
        if lb >= la {
            problems.push(format!(
                "{}: `{a}` (layer {la}) uses `{b}` (layer {lb}), which is not below it (`{}` → `{}`)",
                e.at,
                e.from.join("::"),
                e.to.join("::")
            ));
        }
    }
    for ((a, b), at) in &top_pairs {
        if a < b {
            if let Some(back) = top_pairs.get(&(b.clone(), a.clone())) {
                problems.push(format!("`{a}` and `{b}` use each other ({at}; {back})"));
            }
        }
    }
    // Inside a module: no two submodules use each other; no subcommand uses another.
    let mut sub_pairs: BTreeMap<(String, String, String), String> = BTreeMap::new();
    for e in &edges {
        if e.from.len() < 2 || e.to.len() < 2 || e.from[0] != e.to[0] || e.from[1] == e.to[1] {
            continue;
        }
        let top = e.from[0].clone();
        if top == "cmd" {
            problems.push(format!(
                "{}: subcommand `{}` uses subcommand `{}`; shared code belongs in `app`",
                e.at,
                e.from.join("::"),
                e.to.join("::")
            ));
        }
        sub_pairs
            .entry((top, e.from[1].clone(), e.to[1].clone()))
            .or_insert(e.at.clone());
    }
    for ((top, a, b), at) in &sub_pairs {
        if a < b {
            if let Some(back) = sub_pairs.get(&(top.clone(), b.clone(), a.clone())) {
                problems.push(format!(
                    "`{top}::{a}` and `{top}::{b}` use each other ({at}; {back})"
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

#[test]
fn the_source_tree_keeps_its_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = read_tree(&root);
    assert!(sources.len() > 40, "read only {} files", sources.len());
    let problems = violations(&sources);
    assert!(
        problems.is_empty(),
        "the layering of src/ is broken (see docs/architecture.md):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_layer_table_matches_docs_architecture_md() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md"))
            .unwrap();
    for (module, layer) in LAYERS {
        let row = format!("| {layer} | `{module}`");
        assert!(
            doc.contains(&row),
            "docs/architecture.md has no row `{row} ...` for module `{module}`"
        );
    }
}

fn source(path: &str, text: &str) -> Source {
    Source {
        module: module_path(Path::new(path)),
        display: format!("src/{path}"),
        text: text.to_string(),
    }
}

/// The checker itself: each kind of loop the tree once had is reported.
#[test]
fn the_checker_reports_every_kind_of_loop() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        // profile → bench: a value type importing a stage.
        (
            &[
                ("profile.rs", "use crate::bench::BenchResult;"),
                ("bench/mod.rs", "pub mod runner;"),
            ],
            "`profile` (layer 1) uses `bench` (layer 3)",
        ),
        // verify ↔ state.
        (
            &[
                ("verify/mod.rs", "fn f() { crate::state::now_unix(); }"),
                ("state.rs", "use crate::verify::{Verdict, VerifyReport};"),
            ],
            "`state` and `verify` use each other",
        ),
        // config built from a verify report.
        (
            &[
                ("config.rs", "fn f(r: &crate::verify::VerifyReport) {}"),
                ("verify/mod.rs", ""),
            ],
            "`config` (layer 1) uses `verify`",
        ),
        // registry re-exporting predict's type.
        (
            &[
                ("registry/mod.rs", "pub use crate::predict::Workload;"),
                ("predict/mod.rs", ""),
            ],
            "`registry` (layer 2) uses `predict`",
        ),
        // the pipeline depending on clap.
        (
            &[(
                "pipeline/install.rs",
                "#[derive(Debug, clap::ValueEnum)]\npub enum OnMiss { A }",
            )],
            "uses clap",
        ),
        // cmd/install ↔ cmd/wizard, through a brace group and through super.
        (
            &[
                ("cmd/install.rs", "use crate::cmd::{wizard, plan};"),
                ("cmd/wizard.rs", "use super::install::InstallArgs;"),
                ("cmd/plan.rs", ""),
            ],
            "`cmd::install` and `cmd::wizard` use each other",
        ),
        (
            &[
                ("cmd/verify.rs", "use crate::cmd::install::InstallArgs;"),
                ("cmd/install.rs", ""),
            ],
            "subcommand `cmd::verify` uses subcommand `cmd::install`",
        ),
        // a loop between submodules of one stage.
        (
            &[
                ("bench/runner.rs", "use super::models::Model;"),
                ("bench/models.rs", "use crate::bench::runner::X;"),
            ],
            "`bench::models` and `bench::runner` use each other",
        ),
        // a module the table does not know.
        (&[("install.rs", "")], "module `install` has no layer"),
    ];
    for (files, expected) in cases {
        let sources: Vec<Source> = files.iter().map(|(p, t)| source(p, t)).collect();
        let problems = violations(&sources);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "expected a problem containing {expected:?}, got {problems:#?}"
        );
    }
}

#[test]
fn comments_doc_links_and_inline_test_modules_are_not_dependencies() {
    let sources = vec![
        source(
            "state.rs",
            "//! See [`crate::pipeline::install`].\n/* crate::cli */\nfn f() {}\n#[cfg(test)]\nmod tests {\n    use super::*;\n}\n",
        ),
        source("pipeline/mod.rs", ""),
        source("cli.rs", ""),
    ];
    assert_eq!(violations(&sources), Vec::<String>::new());
}
