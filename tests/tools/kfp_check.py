#!/usr/bin/env python3
"""Kubeflow's own SDK on the example pipeline and on the parameters driftd sent.

    kfp_check.py PIPELINE.py PARAMETERS.json OUT_DIR

Compiles the pipeline with kfp (the SDK's compiler, as `python retrain_pipeline.py`
does), reads the compiled pipeline's input definitions, and runs the whole pipeline
locally (kfp.local's SubprocessRunner: each component in a subprocess, no cluster) with
PARAMETERS (a captured request's `runtime_config.parameters`). Prints JSON: the inputs
({name: parameterType}), whether each parameter sent is declared with the type its value
has, whether each task is cached, and the local run's outcome.
"""
import importlib.util
import json
import os
import sys

import yaml
from kfp import compiler, local

pipeline_file, params_file, out_dir = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("retrain_pipeline", pipeline_file)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)

compiled = os.path.join(out_dir, "driftd_retrain.yaml")
compiler.Compiler().compile(module.driftd_retrain, compiled)
with open(compiled) as f:
    ir = yaml.safe_load(f)
declared = {k: v["parameterType"] for k, v in ir["root"]["inputDefinitions"]["parameters"].items()}
required = sorted(k for k, v in ir["root"]["inputDefinitions"]["parameters"].items() if not v.get("isOptional"))
cached = {name: t.get("cachingOptions", {}).get("enableCache", False) for name, t in ir["root"]["dag"]["tasks"].items()}
with open(params_file) as f:
    params = json.load(f)
kinds = {str: "STRING", bool: "BOOLEAN", int: "NUMBER_INTEGER", float: "NUMBER_DOUBLE", dict: "STRUCT", list: "LIST"}
typed = {k: declared.get(k) == kinds.get(type(v)) for k, v in params.items()}

os.chdir(out_dir)
local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=os.path.join(out_dir, "local_outputs"))
try:
    module.driftd_retrain(**params)
    run = {"succeeded": True}
except Exception as e:  # the local runner raises on a failed task
    run = {"succeeded": False, "error": f"{type(e).__name__}: {e}"}
print(json.dumps({"declared": declared, "required": required, "typed": typed, "cached": cached, "run": run}))
