//! Secrets stay secret (#14): with a recognisable secret in every credential slot of
//! every retrain preset and alert receiver (the secret itself, a URL's user info, its
//! query, a Slack webhook's path), and every delivery failing, no secret appears in a
//! log line (at debug level), the replay's output, a state file (the outbox and the
//! retrain history the API serves), or `config check`.

use std::path::Path;

use crate::helpers::{driftd, episode_logs, free_port, model_toml};

const MODEL: &str = "housing";

/// Every file under `dir`, as text.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.display().to_string(), String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned()));
        }
    }
    out
}

#[test]
fn no_secret_surfaces_when_every_delivery_fails() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("episode.jsonl");
    std::fs::write(&input, episode_logs(MODEL, 1000, 2, 3, 2).join("\n")).unwrap();
    // nothing listens there: every call fails to connect, and reqwest's error names the URL
    let dead = format!("127.0.0.1:{}", free_port());
    let presets: [(&str, &str, &str); 11] = [
        ("webhook", "/hook", ""),
        ("airflow", "/api/v1/dags/retrain/dagRuns", ""),
        ("airflow3", "/api/v2/dags/retrain/dagRuns", "username = \"admin\""),
        ("prefect", "/api/deployments/d1/create_flow_run", ""),
        ("kubeflow", "/apis/v2beta1/runs", "pipeline_id = \"p1\""),
        ("argo", "/api/v1/workflows/ml/submit", "workflow_template = \"retrain\""),
        ("github", "/repos/o/r/dispatches", ""),
        ("gitlab", "/api/v4/projects/1/trigger/pipeline", "ref = \"main\""),
        ("jenkins", "/job/retrain/buildWithParameters", "username = \"ci\""),
        // what a dry run logs: the request, with GitLab's token in its form (Jenkins' in basic auth)
        ("gitlab", "/api/v4/projects/1/trigger/pipeline", "ref = \"main\"\ndry_run = true"),
        ("jenkins", "/job/retrain/buildWithParameters", "username = \"ci\"\ndry_run = true"),
    ];
    let alerts = format!(
        "[[alerts]]\nkind = \"slack\"\nurl = \"http://{dead}/services/T000/B000/SECRET-slack-path\"\n\
         [[alerts]]\nkind = \"webhook\"\nurl = \"http://{dead}/hooks?token=SECRET-webhook-query\"\nsecret = \"SECRET-webhook-signing\"\n\
         [[alerts]]\nkind = \"alertmanager\"\nurl = \"http://am:SECRET-am-password@{dead}\"\n\
         [[alerts]]\nkind = \"pagerduty\"\nurl = \"http://{dead}/v2/enqueue\"\nsecret = \"SECRET-routing-key\"\n"
    );
    for (i, (preset, path, extra)) in presets.iter().enumerate() {
        let name = format!("{preset}-{i}");
        let state = dir.path().join(format!("state-{name}"));
        let cfg = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[state]\ndir = \"{}\"\n[defaults]\nwindow = {{ events = 1000 }}\nfire_after = 2\nresolve_after = 2\n\
                 [retrain]\npreset = \"{preset}\"\nurl = \"http://user:SECRET-userinfo@{dead}{path}?token=SECRET-query\"\n\
                 secret = \"SECRET-credential\"\nmax_attempts = 2\nbackoff = \"10ms\"\n{extra}\n{}{}",
                state.display(),
                // the receivers do not depend on the preset (each failing alert takes 3 tries)
                if i == 0 { alerts.as_str() } else { "" },
                model_toml(MODEL, "")
            ),
        )
        .unwrap();
        let o = driftd(&[
            "--log-level",
            "debug",
            "replay",
            "--config",
            cfg.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ]);
        let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.code(), Some(0), "{name}: {err}");
        // the failures were met and logged: the test looks where secrets would show
        let summary = err.lines().find_map(|l| l.strip_prefix("replay: ")).expect("summary");
        let want = if extra.contains("dry_run") { "dry_run" } else { "failed" };
        assert!(summary.contains(&format!("\"{want}\":1")), "{name}: {summary}");
        assert!(err.contains("127.0.0.1"), "{name}: the failing calls were logged");
        assert!(!err.contains("SECRET") && !out.contains("SECRET"), "{name}: a secret in the output:\n{err}");
        let files = files_under(&state);
        assert!(!files.is_empty(), "{name}: the state was written");
        for (file, text) in files {
            assert!(!text.contains("SECRET"), "{name}: a secret in {file}:\n{text}");
        }
        let check = driftd(&["config", "check", cfg.to_str().unwrap()]);
        let shown = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success() && shown.contains(preset), "{name}: {shown}");
        assert!(!shown.contains("SECRET"), "{name}: a secret in config check:\n{shown}");
    }
}

#[test]
fn config_check_masks_kafka_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("kafka.toml");
    std::fs::write(
        &cfg,
        format!(
            "[kafka]\nbrokers = \"127.0.0.1:9092\"\ntopics = [\"t\"]\n[kafka.options]\n\"security.protocol\" = \"SASL_SSL\"\n\
             \"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\"sasl.username\" = \"driftd\"\n\"sasl.password\" = \"SECRET-sasl\"\n\
             \"ssl.key.password\" = \"SECRET-key\"\n\"sasl.oauthbearer.client.secret\" = \"SECRET-oauth\"\n{}",
            model_toml(MODEL, "")
        ),
    )
    .unwrap();
    let o = driftd(&["config", "check", cfg.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(shown.contains("\"sasl.username\": \"driftd\"") && shown.contains("SCRAM-SHA-512"), "{shown}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert_eq!(shown.matches("\"***\"").count(), 3, "{shown}");
}
