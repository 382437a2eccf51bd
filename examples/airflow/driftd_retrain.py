"""Retrain DAG that driftd triggers (presets `airflow` and `airflow3`).

driftd starts a run with `dag_run_id` = its run id and `conf` = the run parameters:
`model`, `run_id`, `reason` ("drift" or "manual"), `drifted_features` (list) and
`drift_report` (the window's drift report). Steps: preprocess -> train -> validate ->
deploy.

With MLFLOW_TRACKING_URI, DRIFTD_RECENT_DATA and DRIFTD_REGISTERED_MODEL set, `train`
closes the loop through MLflow (examples/mlflow/driftd_mlflow.py, beside this DAG or in
the DAGs folder): it trains on the recent data, profiles it with `driftd baseline`,
registers a new version tagged `driftd.reference` and moves the alias driftd follows, so
driftd swaps the reference and the episode ends with reason `reference_updated`.
Otherwise `DRIFTD_TRAIN_COMMAND` (e.g. `dvc repro`, see examples/dvc) runs when set.

Works on Airflow 2.x (`airflow.decorators`) and 3.x (`airflow.sdk`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

try:  # Airflow 3
    from airflow.sdk import dag, get_current_context, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
    from airflow.operators.python import get_current_context

WORK_DIR = Path(os.environ.get("DRIFTD_RETRAIN_DIR", "/tmp/driftd-retrain"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "mlflow"))


def _conf() -> dict:
    ctx = get_current_context()
    return dict(ctx["dag_run"].conf or {})


@dag(
    dag_id="driftd_retrain",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["driftd", "retrain"],
)
def driftd_retrain():
    @task
    def preprocess() -> str:
        conf = _conf()
        report = conf.get("drift_report")
        if conf.get("reason") == "drift" and not isinstance(report, dict):
            raise ValueError("a drift-triggered run needs the drift report in conf['drift_report']")
        run_dir = WORK_DIR / conf.get("run_id", "manual")
        run_dir.mkdir(parents=True, exist_ok=True)
        drifted = conf.get("drifted_features", [])
        (run_dir / "drift_report.json").write_text(json.dumps(report, indent=2))
        print(f"model {conf.get('model')}: retraining for drift in {len(drifted)} feature(s): {drifted}")
        return str(run_dir)

    @task
    def train(run_dir: str) -> str:
        recent, registered = os.environ.get("DRIFTD_RECENT_DATA"), os.environ.get("DRIFTD_REGISTERED_MODEL")
        if os.environ.get("MLFLOW_TRACKING_URI") and recent and registered:
            from driftd_mlflow import retrain_and_publish

            run_id = _conf().get("run_id", "manual")
            features = [f for f in os.environ.get("DRIFTD_FEATURES", "").split(",") if f]
            version = retrain_and_publish(
                Path(recent), registered, features, os.environ.get("DRIFTD_TARGET"),
                run_name=run_id, tags={"driftd.run_id": run_id},
            )
            Path(run_dir, "registered_version").write_text(version)
        else:
            command = os.environ.get("DRIFTD_TRAIN_COMMAND")
            if command:
                subprocess.run(command, shell=True, check=True, cwd=os.environ.get("DRIFTD_TRAIN_CWD"))
        Path(run_dir, "trained").write_text(datetime.utcnow().isoformat())
        return run_dir

    @task
    def validate(run_dir: str) -> str:
        if not Path(run_dir, "trained").exists():
            raise RuntimeError("training produced nothing")
        # Gate the new model here, e.g. `driftd check` of its predictions against the
        # reference, or its metrics against the production model's.
        return run_dir

    @task
    def deploy(run_dir: str) -> None:
        conf = _conf()
        Path(run_dir, "deployed").write_text(conf.get("run_id", ""))
        print(f"deployed a new {conf.get('model')} for driftd run {conf.get('run_id')}")

    deploy(validate(train(preprocess())))


driftd_retrain()
