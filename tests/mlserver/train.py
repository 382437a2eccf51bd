"""Trains the model MLServer serves in tests/it/open_inference.rs (the `mlserver_*` test):
a scikit-learn pipeline on the California housing reference's eight features predicting
`clf_target`, saved with its model-settings.json in DIR. Run with the MLServer virtualenv
(mlserver==1.7.1, mlserver-sklearn==1.7.1, scikit-learn and pandas as scripts/test pins)."""
import json
import os
import sys

import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude", "Longitude"]


def main():
    reference, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    df = pd.read_csv(reference)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(df[FEATURES], df["clf_target"])
    joblib.dump(model, os.path.join(out, "model.joblib"))
    with open(os.path.join(out, "model-settings.json"), "w") as f:
        json.dump({"name": "housing", "implementation": "mlserver_sklearn.SKLearnModel",
                   "parameters": {"uri": "./model.joblib", "version": "v1"}}, f)
    # the reference as driftd reads it: the model's own predictions as `prediction`
    df["prediction"] = model.predict(df[FEATURES])
    df[FEATURES + ["prediction"]].to_csv(os.path.join(out, "reference.csv"), index=False)


if __name__ == "__main__":
    main()
