//! A complete little world for end-to-end tests: generated models published in a test registry
//! with its own tiers, served by a loopback HTTP server in Hugging Face's URL scheme, all in one
//! [`TestCtx`] whose directories the binary uses for config, state, models and caches.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use minerva_setup::bench::{BenchBackend, BenchResult, QuantBench, Stat, BENCH_SCHEMA_VERSION};
use minerva_setup::gguf::writer::{
    tiny_shape, write_model, write_split_model, ModelSpec, WeightLayout,
};
use minerva_setup::gguf::GgmlType;
use serde_json::{json, Value};

use super::http_server::TestServer;
use super::{ok, sha256_hex, TestCtx};

pub const REPO: &str = "test-org/tiny-GGUF";

/// llama.cpp runs on every core; tests that run it take turns so that they do not starve each
/// other (and their measurements stay meaningful).
pub fn llama_turn() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// One published model.
pub struct Published {
    pub id: String,
    pub filename: String,
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

pub struct World {
    pub ctx: TestCtx,
    pub server: TestServer,
    pub large: Published,
    pub small: Published,
    /// The large model's parts once [`World::split_large`] published it split; empty before.
    pub large_parts: Vec<Published>,
}

/// Tier promises (seconds per warm turn) of the two test tiers, best first.
pub struct Promises {
    pub large_turn_s: f64,
    pub small_turn_s: f64,
}

impl Promises {
    /// Both tiers promise `turn_s`: generous enough that the tiny models keep it anywhere.
    pub fn relaxed(turn_s: f64) -> Promises {
        Promises {
            large_turn_s: turn_s,
            small_turn_s: turn_s,
        }
    }
}

impl World {
    pub fn new(p: Promises) -> World {
        let ctx = TestCtx::new();
        let publish = ctx.path("publish");
        std::fs::create_dir_all(&publish).unwrap();
        let server = TestServer::start();
        // Layouts and seeds whose greedy answer to the verification's prompt is not degenerate:
        // random weights in K-quant and 4-bit layouts collapse into one repeated token at once,
        // which the verification rightly rejects, so a world whose installs must pass uses these.
        let large = publish_model(
            &server,
            &publish,
            "tiny-large",
            WeightLayout::Uniform(GgmlType::F16),
            1,
        );
        let small = publish_model(
            &server,
            &publish,
            "tiny-small",
            WeightLayout::Uniform(GgmlType::Q8_0),
            1,
        );
        let w = World {
            ctx,
            server,
            large,
            small,
            large_parts: Vec::new(),
        };
        w.write_registry(&[&w.large, &w.small]);
        w.write_tiers(&p);
        w
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.ctx.path(rel)
    }

    pub fn registry_dir(&self) -> PathBuf {
        self.path("registry")
    }

    pub fn tiers_file(&self) -> PathBuf {
        self.path("tiers.json")
    }

    pub fn config_file(&self) -> PathBuf {
        self.ctx.config_file()
    }

    pub fn models_dir(&self) -> PathBuf {
        self.ctx.models_dir()
    }

    pub fn state_dir(&self) -> PathBuf {
        self.ctx.state_dir()
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.config_file()).unwrap()).unwrap()
    }

    /// Replace a published file's bytes (its registry entry follows).
    pub fn republish(&mut self, which: &str, bytes: &[u8]) {
        let p = if which == "small" {
            &mut self.small
        } else {
            &mut self.large
        };
        std::fs::write(&p.path, bytes).unwrap();
        p.sha256 = sha256_hex(bytes);
        p.size = bytes.len() as u64;
        self.server.add_file(
            &format!("/{REPO}/resolve/main/{}", p.filename),
            bytes.to_vec(),
        );
        let (l, s) = (&self.large, &self.small);
        self.write_registry(&[l, s]);
    }

    /// Publish the large model split in `parts` files instead, as llama.cpp's gguf-split lays it
    /// out (`tiny-large-00001-of-0000N.gguf`, ...): the same tensors, and its registry entry (same
    /// id) lists the parts. Returns the parts, first first.
    pub fn split_large(&mut self, parts: u16) -> &[Published] {
        let publish = self.path("publish");
        let mut spec = ModelSpec::tiny(WeightLayout::Uniform(GgmlType::F16));
        spec.seed = 1;
        let written = write_split_model(&publish, &self.large.id, &spec, parts).unwrap();
        self.large_parts = written
            .into_iter()
            .map(|w| {
                let bytes = std::fs::read(&w.path).unwrap();
                let filename = w.path.file_name().unwrap().to_str().unwrap().to_string();
                self.server
                    .add_file(&format!("/{REPO}/resolve/main/{filename}"), bytes.clone());
                Published {
                    id: self.large.id.clone(),
                    filename,
                    path: w.path,
                    sha256: sha256_hex(&bytes),
                    size: bytes.len() as u64,
                }
            })
            .collect();
        let (l, s) = (&self.large, &self.small);
        self.write_registry(&[l, s]);
        &self.large_parts
    }

    /// Serve `bytes` for the published file `filename` (the registry keeps its checksum).
    pub fn serve(&self, filename: &str, bytes: Vec<u8>) {
        self.server
            .add_file(&format!("/{REPO}/resolve/main/{filename}"), bytes);
    }

    fn write_registry(&self, models: &[&Published]) {
        let shape = tiny_shape();
        let files: Vec<Value> = models
            .iter()
            .map(|m| {
                let mut entry = json!({
                    "id": m.id, "repo": REPO, "revision": "main", "filename": m.filename,
                    "sha256": m.sha256, "size_bytes": m.size,
                    "quantisation": if m.id.ends_with("large") { "F16" } else { "Q8_0" },
                    "parameters": 1_000_000u64,
                    "shape": shape, "licence": "apache-2.0", "gated": false,
                    "checksum_source": "generated by the test"
                });
                if m.id == self.large.id && !self.large_parts.is_empty() {
                    let e = entry.as_object_mut().unwrap();
                    for k in ["filename", "sha256", "size_bytes"] {
                        e.remove(k);
                    }
                    let parts: Vec<Value> = self
                        .large_parts
                        .iter()
                        .map(|p| json!({"filename": p.filename, "sha256": p.sha256, "size_bytes": p.size}))
                        .collect();
                    e.insert("parts".into(), Value::Array(parts));
                }
                entry
            })
            .collect();
        let doc = json!({ "schema_version": 1, "family": "test", "description": "generated test models", "files": files });
        std::fs::create_dir_all(self.registry_dir()).unwrap();
        std::fs::write(
            self.registry_dir().join("test.json"),
            serde_json::to_vec_pretty(&doc).unwrap(),
        )
        .unwrap();
    }

    fn write_tiers(&self, p: &Promises) {
        let tier = |id: &str, turn: f64, model: &str| {
            json!({
                "id": id, "description": format!("test tier {id}"),
                "requirements": { "min_ram_gib": 0.1, "min_cores": 1, "min_disk_gib": 0.01, "min_simd": [] },
                "workload": { "prompt_tokens": 64, "response_tokens": 8, "context_tokens": 256 },
                "promise": { "turn_s": turn, "cold_load_s": 60 },
                "candidates": [model]
            })
        };
        let doc = json!({
            "schema_version": 1,
            "tiers": [tier("test-large", p.large_turn_s, &self.large.id), tier("test-small", p.small_turn_s, &self.small.id)]
        });
        std::fs::write(self.tiers_file(), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }

    /// The context's binary with this world's registry, tiers and mirror; no terminal.
    pub fn cmd(&self) -> Command {
        let mut c = self.ctx.command();
        c.arg("--registry")
            .arg(self.registry_dir())
            .arg("--tiers")
            .arg(self.tiers_file())
            .env("MINERVA_MIRROR", self.server.url(""))
            .env("MINERVA_NO_PROGRESS", "1")
            .env("MINERVA_RETRY_BASE_MS", "10");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// A hardware profile of this machine carrying the given benchmark figures, saved in the world.
    pub fn profile_with_bench(
        &self,
        name: &str,
        decode_tokens_per_s: f64,
        extra_ram_gib: u64,
    ) -> PathBuf {
        let out = self.ctx.run(&["--json", "probe", "--no-bandwidth"]);
        let mut p: Value = serde_json::from_str(&ok(&out)).unwrap();
        let add = extra_ram_gib << 30;
        for k in ["total_bytes", "usable_bytes", "available_bytes"] {
            let v = p["memory"][k].as_u64().unwrap();
            p["memory"][k] = json!(v + add);
        }
        p["fingerprint"] = json!("");
        p["source"] = json!(format!("test profile {name}"));
        p["bench"] = serde_json::to_value(bench(decode_tokens_per_s)).unwrap();
        let path = self.path(&format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(&p).unwrap()).unwrap();
        path
    }
}

/// Benchmark figures for the tiny models' types, with the given decode speed.
pub fn bench(decode_tokens_per_s: f64) -> BenchResult {
    let params = 1_000_000u64;
    let quant = |t: &str, bytes: u64| QuantBench {
        ggml_type: t.into(),
        backend: BenchBackend::Cpu,
        params,
        weight_bytes_per_token: bytes,
        file_bytes: bytes,
        load_s: 0.001,
        prompt_tokens: 64,
        prefill_tokens_per_s: Stat::single(decode_tokens_per_s * 20.0),
        generated_tokens: 8,
        decode_tokens_per_s: Stat::single(decode_tokens_per_s),
        decode_weights_per_s: params as f64 * decode_tokens_per_s,
        decode_bandwidth_bytes_per_s: bytes as f64 * decode_tokens_per_s,
        bandwidth_ratio: None,
        prefill_flops_per_s: 2.0 * params as f64 * decode_tokens_per_s * 20.0,
        n_layers: 0,
        n_heads: 0,
        n_kv_heads: 0,
        head_dim: 0,
        decode_context_tokens: None,
        prefill_n_embd: None,
    };
    BenchResult {
        schema_version: BENCH_SCHEMA_VERSION,
        threads: 2,
        thread_trials: Vec::new(),
        per_token_overhead_s: 0.0,
        load_overhead_s: 0.0,
        quants: ["F16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"]
            .iter()
            .map(|t| quant(t, GgmlType::from_name(t).unwrap().bytes_for(params)))
            .collect(),
        probe_bandwidth_bytes_per_s: None,
        converged: Some(true),
        wall_s: 0.0,
        peak_rss_bytes: None,
        source: "test figures".into(),
        warnings: Vec::new(),
        batch_decode: Vec::new(),
        conditions: None,
        context_growth: None,
        context_growth_wide_heads: None,
        deep_decode: Vec::new(),
        decode_attention: None,
        cpu_variant: None,
        width_curve: Vec::new(),
        prefill_s_per_prompt: None,
        cold_load: None,
    }
}

fn publish_model(
    server: &TestServer,
    dir: &Path,
    id: &str,
    layout: WeightLayout,
    seed: u64,
) -> Published {
    let filename = format!("{id}.gguf");
    let path = dir.join(&filename);
    let mut spec = ModelSpec::tiny(layout);
    spec.seed = seed;
    write_model(&path, &spec).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    server.add_file(&format!("/{REPO}/resolve/main/{filename}"), bytes.clone());
    Published {
        id: id.to_string(),
        filename,
        path,
        sha256: sha256_hex(&bytes),
        size: bytes.len() as u64,
    }
}
