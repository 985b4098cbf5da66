"""The Helm chart: what it renders is valid Kubernetes, lints clean, and does what its values say."""

from __future__ import annotations

import argparse
import copy
import re
from collections.abc import Mapping
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from tablekeeper.cli import build_parser
from tests.chart.support import (
    CHART,
    NAMESPACE,
    OLDEST_KUBERNETES,
    PLURALS,
    VALUE_SETS,
    GoYamlLoader,
    dashboard,
    objects_of,
    of_kind,
    one,
    render,
    render_manifests,
    values_all,
)

KUBERNETES_VERSIONS = (OLDEST_KUBERNETES, kubernetes_validate.latest_version())
BY_VALUE_SET = pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
# Kinds that are custom resources, not built in: kubernetes-validate has no
# schema for them, so they are checked on their own below.
CUSTOM_KINDS = {"ServiceMonitor", "ClusterKopfPeering", "KopfPeering"}


def _identity(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


# --- valid Kubernetes ---------------------------------------------------------


@BY_VALUE_SET
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_built_in_object_validates_against_the_official_schema(value_set: str, version: str) -> None:
    built_in = [o for o in render(value_set) if o["kind"] not in CUSTOM_KINDS]
    assert built_in
    for obj in built_in:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = f"{_identity(obj)} in Kubernetes {version}"
            pytest.fail(f"{where}: {error.message} at {error.path}")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kopf_peering_crds_in_the_chart_crds_directory_are_valid(version: str) -> None:
    with helm_python.Chart.load(CHART) as chart:
        files = chart.crds
    crds = [doc for f in files for doc in yaml.safe_load_all(f["data"]) if doc]
    assert {c["metadata"]["name"] for c in crds} == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    for crd in crds:
        kubernetes_validate.validate(crd, version, strict=True)


def test_object_names_are_unique() -> None:
    for value_set in VALUE_SETS:
        names = [_identity(o) for o in render(value_set)]
        assert len(names) == len(set(names)), value_set


@BY_VALUE_SET
def test_namespaced_objects_name_their_namespace(value_set: str) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "ClusterKopfPeering"}
    for obj in render(value_set):
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"].get("namespace"), _identity(obj)


# --- helm lint ---------------------------------------------------------------


@pytest.mark.parametrize("value_set", ["defaults", "all-on"])
def test_helm_lint_passes_strictly(value_set: str) -> None:
    report = helm_python.lint(
        CHART, VALUE_SETS[value_set], strict=True, namespace=NAMESPACE, kube_version=f"v{OLDEST_KUBERNETES}"
    )
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [], problems


def test_chart_metadata() -> None:
    with helm_python.Chart.load(CHART) as chart:
        metadata = chart.metadata
    assert metadata["apiVersion"] == "v2"
    assert metadata["type"] == "application"
    assert (metadata["version"], metadata["appVersion"]) == ("0.1.0", "0.1.0")
    assert metadata["kubeVersion"] == ">=1.27.0-0"


# --- values.schema.json ------------------------------------------------------


def test_values_schema_is_valid_draft_7_and_accepts_the_defaults() -> None:
    with helm_python.Chart.load(CHART) as chart:
        schema, defaults = chart.schema, chart.values
    assert schema is not None
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(defaults, schema)
    jsonschema.validate(values_all(), schema)


def test_values_file_turning_everything_on_sets_every_value() -> None:
    """values-all.yaml names every key of values.yaml, so "all on" really is all."""
    free_form = {"resources", "affinity"}

    def missing(defaults: Mapping[str, Any], chosen: Mapping[str, Any], prefix: str = "") -> list[str]:
        found = []
        for key, value in defaults.items():
            if key not in chosen:
                found.append(f"{prefix}{key}")
            elif isinstance(value, Mapping) and value and key not in free_form:
                found.extend(missing(value, chosen[key], f"{prefix}{key}."))
        return found

    with helm_python.Chart.load(CHART) as chart:
        defaults = chart.values
    assert missing(defaults, values_all()) == []


@pytest.mark.parametrize(
    ("bad", "complaint"),
    [
        ({"replicaCount": 2}, "replicaCount"),
        ({"operator": {"watchNamespace": "shop"}}, "watchNamespace"),
        ({"operator": {"logLevel": "LOUD"}}, "logLevel"),
        ({"operator": {"watchNamespaces": ["Not_A_Namespace"]}}, "watchNamespaces"),
        ({"metrics": {"port": 70000}}, "port"),
        ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "interval"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"podSecurityContext": {"runAsUser": 0}}, "runAsUser"),
        ({"crds": {"install": "yes"}}, "install"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_values_schema_rejects_a_bad_value(bad: dict[str, Any], complaint: str) -> None:
    with helm_python.Chart.load(CHART) as chart, pytest.raises(helm_python.HelmValuesError, match=complaint):
        chart.render(bad, name="tk", namespace=NAMESPACE)


# --- CRDs ----------------------------------------------------------------------


def _crd_files() -> dict[str, dict[str, Any]]:
    """The chart's CRD files as Helm reads them (Go's YAML 1.1: see test_crd_copies)."""
    files = sorted((CHART / "files" / "crds").glob("*.yaml"))
    crds = (yaml.load(f.read_text(), Loader=GoYamlLoader) for f in files)
    return {crd["metadata"]["name"]: crd for crd in crds}


def test_crds_render_as_the_files_with_the_keep_annotation() -> None:
    rendered = {c["metadata"]["name"]: c for c in of_kind(render("defaults"), "CustomResourceDefinition")}
    expected = _crd_files()
    assert set(rendered) == {f"{plural}.tablekeeper.io" for plural in PLURALS}
    assert set(rendered) == set(expected)
    for name, crd in rendered.items():
        assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        want = copy.deepcopy(expected[name])
        want["metadata"].setdefault("annotations", {})["helm.sh/resource-policy"] = "keep"
        assert crd == want, f"{name} changed on its way through the template"


def test_crds_are_not_kept_on_uninstall_when_keep_is_off() -> None:
    crds = of_kind(objects_of(render_manifests({"crds": {"keep": False}})), "CustomResourceDefinition")
    assert len(crds) == 6
    assert all("helm.sh/resource-policy" not in (c["metadata"].get("annotations") or {}) for c in crds)


def test_no_crds_are_rendered_when_install_is_off() -> None:
    assert of_kind(render("all-off"), "CustomResourceDefinition") == []


# --- the Deployment ---------------------------------------------------------


def _container(objects: tuple[dict[str, Any], ...]) -> Mapping[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return container


def _command(container: Mapping[str, Any]) -> argparse.Namespace:
    """The container's arguments as `tablekeeper` (the image's entrypoint) parses them."""
    return build_parser().parse_args(container["args"])


@BY_VALUE_SET
def test_operator_runs_one_replica_replaced_not_rolled(value_set: str) -> None:
    spec = one(render(value_set), "Deployment")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}


@BY_VALUE_SET
def test_container_arguments_are_a_valid_tablekeeper_operator_command(value_set: str) -> None:
    args = _command(_container(render(value_set)))
    assert args.command == "operator"


def test_operator_serves_every_namespace_from_the_chart_image_by_default() -> None:
    container = _container(render("defaults"))
    assert container["image"] == "ghcr.io/tablekeeper/tablekeeper:0.1.0"
    args = _command(container)
    assert args.log_level == "INFO"
    assert args.namespace is None  # every namespace
    assert args.engine_image == container["image"]
    assert (args.metrics_port, args.liveness_port) == (9090, 8080)
    assert args.peering == "default"
    assert {e["name"] for e in container["env"]} == {"POD_ID"}  # kopf's identity in the peering object


def test_operator_values_reach_the_operator_command() -> None:
    container = _container(render("all-on"))
    assert container["image"] == "registry.example.com/platform/tablekeeper:0.1.0-rc.1"
    assert container["imagePullPolicy"] == "Always"
    args = _command(container)
    assert args.log_level == "DEBUG"
    assert args.namespace == ["shop", "billing"]
    assert args.engine_image == "registry.example.com/platform/tablekeeper:0.1.0-engine"
    assert (args.metrics_port, args.liveness_port) == (9191, 8081)
    assert args.peering == "tablekeeper"
    assert args.status_interval == 60.0  # operator.extraArgs
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"metrics": 9191, "healthz": 8081}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}


def test_metrics_off_turns_the_endpoint_off() -> None:
    container = _container(render("all-off"))
    assert _command(container).metrics_port == 0
    assert [p["name"] for p in container["ports"]] == ["healthz"]


def test_peering_off_runs_the_operator_standalone() -> None:
    objects = objects_of(render_manifests({"peering": {"enabled": False}}))
    assert _command(_container(objects)).peering is None
    assert of_kind(objects, "ClusterKopfPeering") == []


def test_scheduling_and_pod_values_reach_the_pod() -> None:
    deployment = one(render("all-on"), "Deployment")
    template = deployment["spec"]["template"]
    pod = template["spec"]
    assert pod["priorityClassName"] == "tablekeeper-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["value"] == "databases"
    assert "nodeAffinity" in pod["affinity"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror-credentials"}]
    assert pod["serviceAccountName"] == "tablekeeper-operator"
    assert template["metadata"]["annotations"] == {"example.com/owner": "data-platform"}
    assert template["metadata"]["labels"]["team"] == "data-platform"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()


def test_pod_labels_cannot_override_the_selector_labels() -> None:
    hijack = {"podLabels": {"app.kubernetes.io/name": "other", "team": "x"}}
    deployment = one(objects_of(render_manifests(hijack)), "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert labels["team"] == "x"


@BY_VALUE_SET
def test_liveness_probe_asks_kopf_health_endpoint(value_set: str) -> None:
    container = _container(render(value_set))
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert probe["port"] == "healthz"
    assert "healthz" in {p["name"] for p in container["ports"]}


@BY_VALUE_SET
def test_root_filesystem_is_read_only_with_tmp_writable(value_set: str) -> None:
    pod = one(render(value_set), "Deployment")["spec"]["template"]["spec"]
    container = _container(render(value_set))
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume


def test_runs_as_the_image_user_by_default() -> None:
    pod = one(render("defaults"), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == 65532
    dockerfile = (CHART.parents[1] / "Dockerfile").read_text()
    assert re.search(r"^ARG UID=65532$", dockerfile, re.MULTILINE)
    assert re.search(r"^USER \$\{UID\}:\$\{UID\}$", dockerfile, re.MULTILINE)


def test_dockerfile_runs_the_operator_by_default_from_a_slim_final_stage() -> None:
    dockerfile = (CHART.parents[1] / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)[1:]
    assert len(stages) == 2, "a build stage and a runtime stage"
    runtime = stages[-1]
    assert 'ENTRYPOINT ["tablekeeper"]' in runtime
    assert 'CMD ["operator"]' in runtime
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim$", dockerfile, re.MULTILINE)
    for compiler in ("gcc", "build-essential", "apt-get install"):
        assert compiler not in runtime


# --- the metrics Service, ServiceMonitor, dashboard ------------------------


def test_metrics_service_reaches_the_operator_pod() -> None:
    objects = render("all-on")
    service = one(objects, "Service")
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("metrics", 9191, "metrics")


def test_service_monitor_scrapes_the_metrics_service() -> None:
    objects = render("all-on")
    monitor, service = one(objects, "ServiceMonitor"), one(objects, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    spec = monitor["spec"]
    assert set(spec) == {"selector", "namespaceSelector", "endpoints"}
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = spec["endpoints"]
    assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "15s", "scrapeTimeout": "5s"}


def test_no_service_monitor_or_dashboard_by_default() -> None:
    kinds = {o["kind"] for o in render("defaults")}
    assert "ServiceMonitor" not in kinds
    assert "ConfigMap" not in kinds


def test_dashboard_config_map_is_found_by_grafana_sidecar() -> None:
    config_map = one(render("all-on"), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Databases"}


def test_dashboard_charts_every_tablekeeper_metric() -> None:
    board = dashboard(render("all-on"))
    panels = [p for p in board["panels"] if p["type"] != "row"]
    expressions = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in (
        "tablekeeper_reconciles_total",
        "tablekeeper_objects",
        "tablekeeper_backup_duration_seconds_bucket",
        "tablekeeper_backup_bytes_total",
        "tablekeeper_pitr_lag_seconds",
        "tablekeeper_restore_duration_seconds_bucket",
        "tablekeeper_engine_requests_total",
        "tablekeeper_engine_request_duration_seconds_bucket",
        "tablekeeper_backups_total",
        "tablekeeper_restores_total",
        "tablekeeper_operator_restores_total",
        "tablekeeper_operator_restore_duration_seconds_bucket",
    ):
        assert metric in expressions, metric
    assert "sum by (kind, outcome) (rate(tablekeeper_reconciles_total" in expressions
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels)
    assert board["templating"]["list"][0]["query"] == "prometheus"


# --- kopf peering --------------------------------------------------------------


def _peering_schema(kind: str) -> dict[str, Any]:
    with helm_python.Chart.load(CHART) as chart:
        files = chart.crds
    for crd in (doc for f in files for doc in yaml.safe_load_all(f["data"]) if doc):
        if crd["spec"]["names"]["kind"] == kind:
            schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return schema
    raise AssertionError(f"no CRD for {kind}")


def test_cluster_wide_operator_gets_a_cluster_peering_object() -> None:
    objects = render("defaults")
    peering = one(objects, "ClusterKopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == "default"
    assert of_kind(objects, "KopfPeering") == []
    jsonschema.validate(peering, _peering_schema("ClusterKopfPeering"))


def test_namespaced_operator_gets_a_peering_object_in_each_watched_namespace() -> None:
    objects = render("all-on")
    peerings = of_kind(objects, "KopfPeering")
    assert {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings} == {
        ("shop", "tablekeeper"),
        ("billing", "tablekeeper"),
    }
    assert of_kind(objects, "ClusterKopfPeering") == []
    for peering in peerings:
        jsonschema.validate(peering, _peering_schema("KopfPeering"))


def test_everything_off_renders_the_operator_alone() -> None:
    assert sorted(o["kind"] for o in render("all-off")) == ["Deployment"]
    pod = one(render("all-off"), "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "default"
