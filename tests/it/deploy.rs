//! What can be checked of the deployment files without a Docker engine or a cluster
//! (neither runs here): the manifests parse, the probes and the Service point at the
//! container's port and at paths a running driftd answers with 200, the ConfigMap's config
//! is valid, the Dockerfile is multi-stage and ends as a non-root user.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{driftd, free_port, http_get, root, wait_until};
use serde_json::Value;

fn yaml_docs(path: &str) -> Vec<Value> {
    let o = Command::new("python3")
        .args(["-c", "import sys, yaml, json; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"])
        .arg(root().join(path))
        .output()
        .expect("python3 with PyYAML runs");
    assert!(o.status.success(), "{path}: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn kind<'a>(docs: &'a [Value], k: &str) -> &'a Value {
    docs.iter().find(|d| d["kind"] == k).unwrap_or_else(|| panic!("no {k}"))
}

#[test]
fn manifests_fit_together_and_the_probes_hit_real_endpoints() {
    let kustomization = &yaml_docs("deploy/kubernetes/kustomization.yaml")[0];
    let mut docs = Vec::new();
    for r in kustomization["resources"].as_array().unwrap() {
        docs.extend(yaml_docs(&format!("deploy/kubernetes/{}", r.as_str().unwrap())));
    }
    let deployment = kind(&docs, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true));
    let port = &container["ports"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], port["name"], "{probe} targets the container's port");
    }
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], *labels);
    let service = kind(&docs, "Service");
    assert_eq!(service["spec"]["selector"], *labels);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port["name"]);
    let monitor = kind(&docs, "ServiceMonitor");
    assert_eq!(monitor["spec"]["selector"]["matchLabels"], *labels);
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], service["spec"]["ports"][0]["name"]);
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    // only the HTTP port is open to the pods, and only from the monitoring namespace
    let policy = kind(&docs, "NetworkPolicy");
    assert_eq!(policy["spec"]["podSelector"]["matchLabels"], *labels);
    let ingress = policy["spec"]["ingress"].as_array().unwrap();
    assert_eq!(ingress.len(), 1);
    assert_eq!(ingress[0]["ports"], serde_json::json!([{ "port": port["name"], "protocol": "TCP" }]));
    assert!(ingress[0]["from"][0]["namespaceSelector"].is_object());

    // the ConfigMap's config is valid and listens on the container's port
    let toml = kind(&docs, "ConfigMap")["data"]["driftd.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("driftd.toml");
    std::fs::write(&cfg, toml).unwrap();
    let o = driftd(&["config", "check", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    let listen = shown["server"]["listen"].as_str().unwrap();
    assert_eq!(listen.rsplit(':').next().unwrap(), port["containerPort"].to_string());
    let mounted = container["volumeMounts"].as_array().unwrap();
    assert!(mounted.iter().any(|m| m["mountPath"] == "/etc/driftd/driftd.toml"));
    assert!(container["args"].as_array().unwrap().iter().any(|a| a == "/etc/driftd/driftd.toml"));
    let state = shown["state"]["dir"].as_str().unwrap();
    assert!(mounted.iter().any(|m| state.starts_with(m["mountPath"].as_str().unwrap())), "the state dir is a volume");

    // the probes' paths answer 200 on a running driftd (the demo: a real daemon on a mock cluster)
    let http_port = free_port();
    let mut demo = Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["demo", "--forever", "--listen", &format!("127.0.0.1:{http_port}")])
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for probe in ["readinessProbe", "livenessProbe"] {
        let path = container[probe]["httpGet"]["path"].as_str().unwrap();
        wait_until(path, Duration::from_secs(60), || http_get(http_port, path).filter(|(c, _)| *c == 200));
    }
    let _ = demo.kill();
    let _ = demo.wait();
}

#[test]
fn the_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage");
    assert!(froms[0].contains(" AS build"));
    let last_stage = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let user = lines[last_stage..].iter().rev().find(|l| l.starts_with("USER ")).expect("a USER in the runtime stage");
    let uid = user.trim_start_matches("USER ").split(':').next().unwrap();
    assert!(uid != "0" && uid != "root", "{user}");
    assert!(
        lines[last_stage..].iter().any(|l| l.starts_with("COPY --from=build")),
        "the binary comes from the build stage"
    );
    assert!(text.contains("EXPOSE 9464"));
    assert!(text.contains("\"/etc/driftd/driftd.toml\""), "runs the config the manifests mount");
}
