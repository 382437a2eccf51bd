"""Retrain flow that driftd triggers (preset `prefect`).

driftd calls `POST /api/deployments/{id}/create_flow_run` with these parameters and its
run id as `idempotency_key`, so a retried trigger never starts a second run.

Serve it (a long-running process that runs the deployment's flow runs):

    PREFECT_API_URL=http://127.0.0.1:4200/api python retrain_flow.py

or deploy it to a work pool with `prefect deploy` (see prefect.yaml beside this file).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Optional

from prefect import flow, get_run_logger, task

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
def train(run_dir: Path) -> Path:
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
    (run_dir / "deployed").write_text(run_id)


@flow(name="driftd-retrain")
def retrain(
    model: str,
    run_id: str,
    reason: str = "drift",
    drifted_features: Optional[list[str]] = None,
    drift_report: Optional[dict[str, Any]] = None,
) -> str:
    logger = get_run_logger()
    logger.info("retraining %s (%s) for drift in %s", model, run_id, drifted_features or [])
    run_dir = preprocess(model, run_id, reason, drift_report)
    deploy(validate(train(run_dir)), model, run_id)
    return str(run_dir)


if __name__ == "__main__":
    retrain.serve(name=os.environ.get("DRIFTD_DEPLOYMENT_NAME", "driftd-retrain"))
