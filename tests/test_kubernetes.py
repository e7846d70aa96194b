"""deploy/kubernetes/: the manifests are valid against the Kubernetes schemas (kubernetes-validate) and
agree with the service: probes on its real routes, a grace period above its shutdown grace, settings it
knows, and a sharded translation job that calls `carousel translate --shard`."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from carousel.service.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
KUBERNETES = "1.30.0"  # the oldest minor still supported upstream when these were written


def documents() -> list[dict]:
    return [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def by_kind(kind: str) -> dict:
    (found,) = [doc for doc in documents() if doc["kind"] == kind]
    return found


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_each_manifest_is_valid_against_the_kubernetes_schema(path):
    for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        kubernetes_validate.validate(document, KUBERNETES, strict=True)


def test_a_broken_manifest_is_caught():
    deployment = by_kind("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [5000]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_the_deployment_probes_the_services_routes_and_outlasts_its_shutdown():
    kinds = {doc["kind"] for doc in documents()}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap", "Secret",
            "Job"} <= kinds
    pod = by_kind("Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    config = by_kind("ConfigMap")["data"]
    grace = float(config["CAROUSEL_SHUTDOWN_GRACE_SECONDS"])
    pre_stop = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + grace + 5  # the workers' 5 s after the grace


def test_every_setting_the_manifests_give_is_one_the_service_reads():
    known = {f"CAROUSEL_{name.upper()}" for name in ServiceSettings.model_fields}
    given = set(by_kind("ConfigMap")["data"]) | set(by_kind("Secret")["stringData"])
    assert given <= known, given - known


def test_the_indexed_job_translates_one_share_per_pod():
    job = by_kind("Job")["spec"]
    assert job["completionMode"] == "Indexed" and job["completions"] == job["parallelism"]
    script = " ".join(job["template"]["spec"]["containers"][0]["args"])
    assert "carousel translate" in script and f'--shard "$((JOB_COMPLETION_INDEX + 1))/{job["completions"]}"' in script
