//! The pipelines in `examples/` stay valid: every `[retrain]` block in its README passes
//! `driftd config check`, the Python files byte-compile, the YAML files parse.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{driftd, root};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn examples() -> Vec<PathBuf> {
    let mut out = Vec::new();
    files(&root().join("examples"), &mut out);
    out.sort();
    out
}

#[test]
fn every_config_block_in_the_examples_readme_is_valid() {
    let text = std::fs::read_to_string(root().join("examples/README.md")).unwrap();
    let blocks: Vec<&str> = text.split("```toml\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert!(blocks.len() >= 8, "a block per target, found {}", blocks.len());
    let dir = tempfile::tempdir().unwrap();
    for (i, block) in blocks.iter().enumerate() {
        let path = dir.path().join(format!("{i}.toml"));
        std::fs::write(&path, block).unwrap();
        let o = driftd(&["config", "check", path.to_str().unwrap()]);
        assert!(o.status.success(), "block {i}:\n{block}\n{}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn python_examples_byte_compile() {
    let py: Vec<PathBuf> = examples().into_iter().filter(|p| p.extension().is_some_and(|x| x == "py")).collect();
    assert!(py.len() >= 6, "{py:?}");
    let dir = tempfile::tempdir().unwrap();
    for p in py {
        let o = Command::new("python3")
            .args(["-c", "import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)"])
            .arg(&p)
            .arg(dir.path().join("out.pyc"))
            .output()
            .expect("python3 runs");
        assert!(o.status.success(), "{}: {}", p.display(), String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn yaml_examples_parse() {
    let yaml: Vec<PathBuf> =
        examples().into_iter().filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml")).collect();
    assert!(yaml.len() >= 6, "{yaml:?}");
    for p in yaml {
        let o = Command::new("python3")
            .args([
                "-c",
                "import sys, yaml; docs = list(yaml.safe_load_all(open(sys.argv[1]))); assert docs and all(docs), 'empty'",
            ])
            .arg(&p)
            .output()
            .expect("python3 with PyYAML runs");
        assert!(o.status.success(), "{}: {}", p.display(), String::from_utf8_lossy(&o.stderr));
    }
}

/// The GitHub Actions gate as written: its `driftd check` step, run on the housing pair
/// (the example's Parquet paths swapped for the CSVs), exits 1 on their drift and leaves
/// every file its upload step names, the HTML page among them.
#[test]
fn the_github_gate_step_leaves_the_artifacts_it_uploads() {
    let workflow = root().join("examples/github/driftd.yml");
    let script = "import json, sys, yaml\n\
        steps = yaml.safe_load(open(sys.argv[1]))['jobs']['drift-gate']['steps']\n\
        gate = next(s['run'] for s in steps if 'driftd check' in s.get('run', ''))\n\
        upload = next(s['with']['path'] for s in steps if s.get('uses', '').startswith('actions/upload-artifact'))\n\
        print(json.dumps({'run': gate, 'paths': upload.split()}))";
    let out = Command::new("python3").args(["-c", script]).arg(&workflow).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let step: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = step["run"].as_str().unwrap().replace("\\\n", " ");
    let args: Vec<String> = run
        .split_whitespace()
        .skip_while(|a| *a != "check")
        .map(|a| match a {
            "data/reference.parquet" => root().join("datasets/california_housing_reference.csv").display().to_string(),
            "data/current.parquet" => root().join("datasets/california_housing_analysis.csv").display().to_string(),
            a => a.to_string(),
        })
        .chain(["--exclude".to_string(), "clf_target".to_string()])
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_driftd")).args(&args).current_dir(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    let paths = step["paths"].as_array().unwrap();
    assert!(paths.iter().any(|p| p.as_str().unwrap().ends_with(".html")), "{paths:?}");
    for p in paths {
        let text = std::fs::read_to_string(dir.path().join(p.as_str().unwrap())).unwrap();
        match p.as_str().unwrap().rsplit('.').next() {
            Some("json") => {
                assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap()["dataset_drift"], true)
            }
            Some("html") => assert!(text.starts_with("<!doctype html>") && text.contains("Dataset drift")),
            other => panic!("an artifact of an unexpected kind: {other:?}"),
        }
    }
}
