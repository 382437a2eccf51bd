"""Closing the loop with MLflow: train, profile, register, promote.

The retrain examples (examples/prefect, examples/airflow) call `retrain_and_publish`:

1. train a scikit-learn model on the recent data (a logistic regression on the label
   column when the data has one, else an IsolationForest over the features);
2. run `driftd baseline` on the data the new model was trained on: its reference profile;
3. log the model, the profile (as the artifact `driftd/profile.json`) and the training
   data (as the run's `training` dataset input) in an MLflow run;
4. register a new version of the model, tagged `driftd.reference =
   runs:/<run>/driftd/profile.json`, and move the serving alias (`champion`) to it.

driftd follows the alias (`reference = "mlflow:models:/NAME@champion"`): it sees the new
version within one `[mlflow] poll`, downloads the profile, swaps it in, and the drift
episode that asked for the retrain ends with reason `reference_updated`.

Bootstrap a model's first version from its training data:

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python driftd_mlflow.py \
        --data datasets/california_housing_reference.csv --model california-housing \
        --features MedInc,HouseAge,AveRooms,AveBedrms,Population,AveOccup,Latitude,Longitude

Needs `mlflow-skinny` (or `mlflow`) 3.x, scikit-learn and pandas, and the `driftd` binary
(`DRIFTD_BIN`, else `driftd` on PATH).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

REFERENCE_TAG = "driftd.reference"


def driftd_bin() -> str:
    found = os.environ.get("DRIFTD_BIN") or shutil.which("driftd")
    if not found:
        raise RuntimeError("the driftd binary is needed for `driftd baseline` (set DRIFTD_BIN or put it on PATH)")
    return found


def train(data: Path, features: list[str], target: Optional[str]):
    """A model fitted on `data`, which kind it is, and the data as read."""
    import pandas as pd
    from sklearn.ensemble import IsolationForest
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(data)
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(f"{data}: no column(s) {', '.join(missing)}")
    x = frame[features].fillna(frame[features].median())
    if target and target in frame.columns:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(x, frame[target])
        return model, "logistic_regression", frame
    model = make_pipeline(StandardScaler(), IsolationForest(n_estimators=100, random_state=0))
    model.fit(x)
    return model, "isolation_forest", frame


def baseline(data: Path, features: list[str], out: Path) -> dict:
    """`driftd baseline`: the reference profile of the data the model was trained on."""
    cmd = [driftd_bin(), "baseline", "--data", str(data), "--out", str(out), "--columns", ",".join(features)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.read_text())


def retrain_and_publish(
    data: Path,
    registered_model: str,
    features: list[str],
    target: Optional[str] = None,
    alias: str = "champion",
    run_name: Optional[str] = None,
    tags: Optional[dict[str, str]] = None,
) -> str:
    """Trains on `data`, profiles it, logs and registers the model, moves `alias` to the
    new version. Returns the version."""
    import mlflow
    from mlflow import MlflowClient

    data = Path(data)
    model, kind, frame = train(data, features, target)
    client = MlflowClient()
    mlflow.set_experiment(os.environ.get("DRIFTD_MLFLOW_EXPERIMENT", f"{registered_model}-retrain"))
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags(tags or {})
        mlflow.log_params({"model_kind": kind, "rows": len(frame), "features": ",".join(features), "data": str(data)})
        (Path(tmp) / "model.pkl").write_bytes(pickle.dumps(model))
        mlflow.log_artifact(str(Path(tmp) / "model.pkl"), artifact_path="model")
        profile = Path(tmp) / "profile.json"
        baseline(data, features, profile)
        mlflow.log_artifact(str(profile), artifact_path="driftd")
        # the training data as the run's input: a fallback reference for driftd
        dataset = mlflow.data.from_pandas(frame[features], source=str(data.resolve()), name=data.name)
        mlflow.log_input(dataset, context="training")
        run_id = run.info.run_id
    try:
        client.create_registered_model(registered_model)
    except mlflow.exceptions.MlflowException as e:
        if "already exists" not in str(e).lower() and "RESOURCE_ALREADY_EXISTS" not in str(e):
            raise
    version = client.create_model_version(
        registered_model,
        source=f"runs:/{run_id}/model",
        run_id=run_id,
        tags={REFERENCE_TAG: f"runs:/{run_id}/driftd/profile.json", **(tags or {})},
    )
    client.set_registered_model_alias(registered_model, alias, version.version)
    return version.version


def main() -> None:
    p = argparse.ArgumentParser(description="Train on DATA, register a model version with its driftd reference, move the alias.")
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--model", required=True, help="the registered model's name")
    p.add_argument("--features", required=True, help="comma separated")
    p.add_argument("--target", default=None)
    p.add_argument("--alias", default="champion")
    a = p.parse_args()
    version = retrain_and_publish(a.data, a.model, a.features.split(","), a.target, a.alias)
    print(json.dumps({"model": a.model, "version": version, "alias": a.alias}))


if __name__ == "__main__":
    main()
