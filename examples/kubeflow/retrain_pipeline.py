"""Kubeflow Pipelines (v2 SDK) retrain pipeline that driftd triggers (preset `kubeflow`).

driftd creates a run with `POST /apis/v2beta1/runs`, `display_name` = its run id and
these string parameters in `runtime_config.parameters`. Compile and upload:

    python retrain_pipeline.py        # writes driftd_retrain.yaml
    kfp pipeline upload -p driftd-retrain driftd_retrain.yaml

then set `pipeline_id` (and `pipeline_version_id`) in driftd's `[retrain]`.

A run id already handled: Kubeflow has no run key, so a request driftd retried after a
lost answer starts a second run. Every task here is cached (KFP's cache key is the
component and its inputs, and `run_id` is among them, passed on in `spec`): the second
run's tasks are served from the first's results, and nothing trains or deploys twice. A
first run that failed is not cached, so the second one does the work.

A report too large for one command-line argument arrives cut (`"truncated": true`) with
`full_report`, the whole request in driftd's API, when driftd's `[retrain] driftd_url` is
set: preprocess reads it from there.
"""

from kfp import compiler, dsl

IMAGE = "python:3.12-slim"


@dsl.component(base_image=IMAGE)
def preprocess(model: str, run_id: str, reason: str, drifted_features: str, drift_report: str) -> str:
    import json

    report = json.loads(drift_report) if drift_report else None
    if isinstance(report, dict) and report.get("truncated") and report.get("full_report"):
        from urllib.request import urlopen

        with urlopen(report["full_report"], timeout=30) as r:
            report = json.load(r)["params"]["drift_report"]
    if reason == "drift" and not isinstance(report, dict):
        raise ValueError("a drift-triggered run needs the drift report")
    features = len(report.get("features", [])) if isinstance(report, dict) else 0
    print(f"{model} ({run_id}): drift in {drifted_features or 'no feature'}, report of {features} features")
    return json.dumps({"model": model, "run_id": run_id, "features": drifted_features.split(",") if drifted_features else []})


@dsl.component(base_image=IMAGE)
def train(spec: str) -> str:
    # Replace with the real training step (or a container running `dvc repro`).
    return spec


@dsl.component(base_image=IMAGE)
def validate(spec: str) -> str:
    return spec


@dsl.component(base_image=IMAGE)
def deploy(spec: str):
    print(f"deploying {spec}")


@dsl.pipeline(name="driftd-retrain", description="Retrain a model when driftd detects drift")
def driftd_retrain(
    model: str,
    run_id: str,
    reason: str = "drift",
    drifted_features: str = "",
    drift_report: str = "",
):
    p = preprocess(model=model, run_id=run_id, reason=reason, drifted_features=drifted_features, drift_report=drift_report)
    t = train(spec=p.output)
    v = validate(spec=t.output)
    d = deploy(spec=v.output)
    # a run id already handled is served from the cache (see above), even where the
    # cluster's default is off
    for task in (p, t, v, d):
        task.set_caching_options(True)


if __name__ == "__main__":
    compiler.Compiler().compile(driftd_retrain, "driftd_retrain.yaml")
