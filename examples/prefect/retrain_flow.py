"""Retrain flow that driftd triggers (preset `prefect`), closing the loop through MLflow.

driftd calls `POST /api/deployments/{id}/create_flow_run` with its five parameters
(model, run_id, reason, drifted_features, drift_report) and its run id as
`idempotency_key`, so a retried trigger never starts a second run. The deployment's own
parameters say where the recent data is and which registered model to publish.

With MLFLOW_TRACKING_URI set and `recent_data` given, the flow trains on the recent data,
profiles it with `driftd baseline`, registers a new version tagged `driftd.reference` and
moves the alias driftd follows (`reference = "mlflow:models:/NAME@champion"`): driftd
swaps the reference and the drift episode ends with reason `reference_updated`
(examples/mlflow/driftd_mlflow.py). Without them it runs DRIFTD_TRAIN_COMMAND (e.g.
`dvc repro`, examples/dvc) instead.

Serve it (a long-running process that runs the deployment's flow runs):

    PREFECT_API_URL=http://127.0.0.1:4200/api MLFLOW_TRACKING_URI=http://127.0.0.1:5000 \
    DRIFTD_RECENT_DATA=/data/recent.csv DRIFTD_REGISTERED_MODEL=california-housing \
    DRIFTD_FEATURES=MedInc,HouseAge,AveRooms,AveBedrms,Population,AveOccup,Latitude,Longitude \
    python retrain_flow.py

or deploy it to a work pool with `prefect deploy` (see prefect.yaml beside this file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

from prefect import flow, get_run_logger, task

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mlflow"))

WORK_DIR = Path(os.environ.get("DRIFTD_RETRAIN_DIR", "/tmp/driftd-retrain"))


@task
def preprocess(model: str, run_id: str, reason: str, drift_report: Optional[dict]) -> Path:
    if reason == "drift" and not isinstance(drift_report, dict):
        raise ValueError("a drift-triggered run needs the drift report")
    run_dir = WORK_DIR / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "drift_report.json").write_text(json.dumps(drift_report, indent=2))
    return run_dir


@task
def train(
    run_dir: Path,
    run_id: str,
    recent_data: Optional[str],
    registered_model: Optional[str],
    features: Optional[list[str]],
    target: Optional[str],
    alias: str,
) -> Path:
    if os.environ.get("MLFLOW_TRACKING_URI") and recent_data and registered_model:
        from driftd_mlflow import retrain_and_publish

        version = retrain_and_publish(
            Path(recent_data), registered_model, features or [], target, alias,
            run_name=run_id, tags={"driftd.run_id": run_id},
        )
        (run_dir / "registered_version").write_text(version)
    else:
        command = os.environ.get("DRIFTD_TRAIN_COMMAND")  # e.g. "dvc repro" (examples/dvc)
        if command:
            subprocess.run(command, shell=True, check=True, cwd=os.environ.get("DRIFTD_TRAIN_CWD"))
    (run_dir / "trained").write_text("ok")
    return run_dir


@task
def validate(run_dir: Path) -> Path:
    if not (run_dir / "trained").exists():
        raise RuntimeError("training produced nothing")
    return run_dir


@task
def deploy(run_dir: Path, model: str, run_id: str) -> None:
    # with MLflow, moving the alias was the deployment: serving follows the alias
    (run_dir / "deployed").write_text(run_id)


def _env_list(name: str) -> Optional[list[str]]:
    value = os.environ.get(name)
    return value.split(",") if value else None


@flow(name="driftd-retrain")
def retrain(
    model: str,
    run_id: str,
    reason: str = "drift",
    drifted_features: Optional[list[str]] = None,
    drift_report: Optional[dict[str, Any]] = None,
    recent_data: Optional[str] = None,
    registered_model: Optional[str] = None,
    features: Optional[list[str]] = None,
    target: Optional[str] = None,
    alias: str = "champion",
) -> str:
    logger = get_run_logger()
    logger.info("retraining %s (%s) for drift in %s", model, run_id, drifted_features or [])
    run_dir = preprocess(model, run_id, reason, drift_report)
    trained = train(run_dir, run_id, recent_data, registered_model, features, target, alias)
    deploy(validate(trained), model, run_id)
    return str(run_dir)


if __name__ == "__main__":
    retrain.serve(
        name=os.environ.get("DRIFTD_DEPLOYMENT_NAME", "driftd-retrain"),
        parameters={
            "recent_data": os.environ.get("DRIFTD_RECENT_DATA"),
            "registered_model": os.environ.get("DRIFTD_REGISTERED_MODEL"),
            "features": _env_list("DRIFTD_FEATURES"),
            "target": os.environ.get("DRIFTD_TARGET"),
        },
    )
