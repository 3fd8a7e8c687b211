"""cluster.yaml is a valid Ray cluster-launcher config (the schema shipped inside the ray package)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

from tests.conftest import ROOT

SCHEMA = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"


def _config() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text(encoding="utf-8"))


def test_cluster_yaml_matches_rays_schema():
    jsonschema.validate(_config(), json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_cluster_yaml_installs_the_project_and_has_gpu_workers():
    cfg = _config()
    assert cfg["provider"]["type"] == "aws"
    assert any("make install" in c for c in cfg["setup_commands"])
    workers = [t for n, t in cfg["available_node_types"].items() if n != cfg["head_node_type"]]
    assert workers and all(t["node_config"]["InstanceType"].startswith(("g", "p")) for t in workers)
    assert sum(t["max_workers"] for t in workers) <= cfg["max_workers"]
    assert ".venv" in cfg["rsync_exclude"] and "results" in cfg["rsync_exclude"]
    assert all("--dashboard-host=127.0.0.1" in c for c in cfg["head_start_ray_commands"] if "--head" in c)


def test_schema_rejects_a_broken_config():
    cfg = _config()
    cfg["available_node_types"]["head"]["max_workers"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cfg, json.loads(SCHEMA.read_text(encoding="utf-8")))


def test_every_node_disk_is_encrypted():
    """The nodes hold members' embeddings and results: every EBS volume is encrypted at rest."""
    cfg = _config()
    disks = [m["Ebs"] for t in cfg["available_node_types"].values() for m in t["node_config"].get("BlockDeviceMappings", [])]
    assert disks and all(d.get("Encrypted") is True for d in disks)
