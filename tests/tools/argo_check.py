#!/usr/bin/env python3
"""Argo's own models on a WorkflowTemplate: hera's (generated from Argo Workflows'
OpenAPI specification) validate its types, and every key must be one the specification
knows (the models ignore unknown keys, so the input is compared with what they kept).

    argo_check.py TEMPLATE.yaml

Prints JSON: {"valid": bool, "error": str|null, "unknown": [key paths], "parameters":
{name: has_default}}.
"""
import json
import sys

import yaml
from hera.workflows.models import WorkflowTemplate


def unknown_keys(given, kept, path=""):
    out = []
    if isinstance(given, dict):
        kept = kept if isinstance(kept, dict) else {}
        for k, v in given.items():
            p = f"{path}.{k}" if path else k
            if k not in kept:
                out.append(p)
            else:
                out.extend(unknown_keys(v, kept[k], p))
    elif isinstance(given, list):
        kept = kept if isinstance(kept, list) else []
        for i, v in enumerate(given):
            out.extend(unknown_keys(v, kept[i] if i < len(kept) else None, f"{path}[{i}]"))
    return out


doc = yaml.safe_load(open(sys.argv[1]))
try:
    model = WorkflowTemplate.model_validate(doc)
    kept = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    result = {"valid": True, "error": None, "unknown": unknown_keys(doc, kept)}
except Exception as e:
    result = {"valid": False, "error": str(e), "unknown": []}
params = doc.get("spec", {}).get("arguments", {}).get("parameters", [])
result["parameters"] = {p["name"]: "value" in p for p in params}
print(json.dumps(result))
