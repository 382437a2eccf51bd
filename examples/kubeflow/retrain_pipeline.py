"""Kubeflow Pipelines (v2 SDK) retrain pipeline that driftd triggers (preset `kubeflow`).

driftd creates a run with `POST /apis/v2beta1/runs`, `display_name` = its run id and
these string parameters in `runtime_config.parameters`. Compile and upload:

    python retrain_pipeline.py        # writes driftd_retrain.yaml
    kfp pipeline upload -p driftd-retrain driftd_retrain.yaml

then set `pipeline_id` (and `pipeline_version_id`) in driftd's `[retrain]`.
"""

from kfp import compiler, dsl

IMAGE = "python:3.12-slim"


@dsl.component(base_image=IMAGE)
def preprocess(model: str, run_id: str, reason: str, drifted_features: str, drift_report: str) -> str:
    import json

    report = json.loads(drift_report) if drift_report else None
    if reason == "drift" and not isinstance(report, dict):
        raise ValueError("a drift-triggered run needs the drift report")
    print(f"{model} ({run_id}): drift in {drifted_features or 'no feature'}")
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
    deploy(spec=v.output)


if __name__ == "__main__":
    compiler.Compiler().compile(driftd_retrain, "driftd_retrain.yaml")
