//! Fleets on Kubernetes: `status --nfd-features` writes a Node Feature Discovery local feature
//! file nfd-worker accepts, and the example manifests under `installers/kubernetes/` are
//! well-formed Kubernetes objects whose DaemonSet installs and labels each node.

mod support;

use std::collections::BTreeMap;

use support::world::{llama_turn, Promises, World};
use support::{exits, json, ok};
use yaml_rust2::{Yaml, YamlLoader};

/// `key=value` lines, comments skipped; fails on anything nfd-worker would not turn into a
/// label: a key that is not a label name, a value that is not a label value.
fn parse_features(text: &str) -> BTreeMap<String, String> {
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line:?}"));
        assert!(name_ok(k) && k.starts_with("minerva-"), "bad key {k:?}");
        assert!(v.is_empty() || name_ok(v), "bad label value {v:?} for {k}");
        assert!(
            out.insert(k.to_string(), v.to_string()).is_none(),
            "{k} twice"
        );
    }
    out
}

#[test]
fn the_feature_file_describes_the_installed_tier_in_label_syntax() {
    let w = World::new(Promises::relaxed(1000.0));
    let file = w.path("features.d/minerva");

    // Nothing installed yet.
    let before = json(&w.run(&["--json", "status", "--nfd-features", file.to_str().unwrap()]));
    assert_eq!(before["nfd_features_path"], file.to_str().unwrap());
    let f = parse_features(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(f["minerva-installed"], "false");
    assert_eq!(f["minerva-retier-due"], "true");
    assert!(!f.contains_key("minerva-tier"));

    let hw = w.profile_with_bench("hw", 20.0, 0);
    let hw = hw.to_str().unwrap();
    {
        let _turn = llama_turn();
        ok(&w.run(&["--hardware", hw, "install", "--yes", "--threads", "2"]));
    }
    let cfg = w.config();
    ok(&w.run(&[
        "--hardware",
        hw,
        "status",
        "--nfd-features",
        file.to_str().unwrap(),
    ]));
    let f = parse_features(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(f["minerva-installed"], "true");
    assert_eq!(f["minerva-tier"], cfg["tier"].as_str().unwrap());
    assert_eq!(f["minerva-model"], cfg["model"]["id"].as_str().unwrap());
    assert_eq!(f["minerva-retier-due"], "false");
    assert_eq!(
        f["minerva-concurrency"],
        cfg["concurrency"].as_u64().unwrap().to_string()
    );
    let turn: f64 = f["minerva-verified-turn-s"].parse().unwrap();
    let verified = cfg["verified"]["turn_s"].as_f64().unwrap();
    assert!(
        (turn - verified).abs() <= 0.05 + 1e-9,
        "{turn} vs {verified}"
    );
    assert!(!f["minerva-cpu-variant"].is_empty());
    assert_eq!(f["minerva-gpus"], "0");
    // No temporary file is left next to it.
    let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["minerva"]);

    // A directory that cannot be created is a clear error naming it.
    let blocked = w.path("not-a-dir");
    std::fs::write(&blocked, b"x").unwrap();
    let out = w.run(&[
        "status",
        "--nfd-features",
        blocked.join("minerva").to_str().unwrap(),
    ]);
    exits(&out, 1);
    assert!(
        support::stderr(&out).contains("not-a-dir"),
        "{}",
        support::stderr(&out)
    );
}

fn manifests() -> Vec<Yaml> {
    let text = std::fs::read_to_string("installers/kubernetes/daemonset.yaml").unwrap();
    YamlLoader::load_from_str(&text).expect("daemonset.yaml is YAML")
}

fn str_at<'a>(y: &'a Yaml, path: &[&str]) -> &'a str {
    let mut cur = y;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str()
        .unwrap_or_else(|| panic!("{} is not a string in {y:?}", path.join(".")))
}

#[test]
fn the_manifests_are_kubernetes_objects_and_the_daemonset_installs_and_labels_each_node() {
    let docs = manifests();
    assert!(docs.len() >= 2);
    for d in &docs {
        assert!(!str_at(d, &["apiVersion"]).is_empty());
        assert!(!str_at(d, &["kind"]).is_empty());
        assert!(!str_at(d, &["metadata", "name"]).is_empty());
    }
    let ds = docs
        .iter()
        .find(|d| str_at(d, &["kind"]) == "DaemonSet")
        .expect("a DaemonSet");
    assert_eq!(str_at(ds, &["apiVersion"]), "apps/v1");
    let ns = str_at(ds, &["metadata", "namespace"]);
    assert!(docs
        .iter()
        .any(|d| str_at(d, &["kind"]) == "Namespace" && str_at(d, &["metadata", "name"]) == ns));

    // The selector must match the pod template's labels, or the API server refuses it.
    let selector = ds["spec"]["selector"]["matchLabels"]
        .as_hash()
        .expect("matchLabels");
    let labels = ds["spec"]["template"]["metadata"]["labels"]
        .as_hash()
        .expect("labels");
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(
            labels.get(k),
            Some(v),
            "selector {k:?} not in the template's labels"
        );
    }

    let pod = &ds["spec"]["template"]["spec"];
    let containers = pod["containers"].as_vec().expect("containers");
    assert!(!containers.is_empty());
    let volumes = pod["volumes"].as_vec().expect("volumes");
    let volume = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no volume {name}"))
    };
    let c = &containers[0];
    assert!(!str_at(c, &["name"]).is_empty());
    assert!(!str_at(c, &["image"]).is_empty());
    let mounts = c["volumeMounts"].as_vec().expect("volumeMounts");
    for m in mounts {
        // Every mount names a volume of the pod.
        let _ = volume(str_at(m, &["name"]));
    }
    let mount_of = |path: &str| {
        mounts
            .iter()
            .find(|m| path.starts_with(str_at(m, &["mountPath"])))
            .unwrap_or_else(|| panic!("{path} is on no mount"))
    };
    let env: BTreeMap<&str, &str> = c["env"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
        .collect();
    // The models directory and the feature file live on host paths.
    let models = env["MINERVA_MODELS_DIR"];
    let models_volume = volume(str_at(mount_of(models), &["name"]));
    assert!(!str_at(models_volume, &["hostPath", "path"]).is_empty());
    let script = c["args"].as_vec().unwrap()[0].as_str().unwrap();
    assert!(script.contains("minerva-setup install --yes"), "{script}");
    let features = script
        .split_whitespace()
        .skip_while(|w| *w != "--nfd-features")
        .nth(1)
        .expect("status --nfd-features FILE in the script");
    assert_eq!(
        features,
        "/etc/kubernetes/node-feature-discovery/features.d/minerva"
    );
    let features_volume = volume(str_at(mount_of(features), &["name"]));
    assert_eq!(
        str_at(features_volume, &["hostPath", "path"]),
        "/etc/kubernetes/node-feature-discovery/features.d"
    );
    for k in [
        "MINERVA_CONFIG_DIR",
        "MINERVA_STATE_DIR",
        "MINERVA_DATA_DIR",
    ] {
        let _ = mount_of(env[k]);
    }
}
