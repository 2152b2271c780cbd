#!/usr/bin/env python3
"""Lints and renders charts/memoryc with Helm's own code, then checks what it renders.

Helm comes from the `helm-python-sdk` package (import `helm_python`), which bundles Helm v4's Go
SDK as a C library: the lint is `helm lint --strict`, the manifests are what `helm install`
would send. PyYAML parses them a second time to find duplicate keys, which Helm's Go YAML
decoding silently collapses and strict YAML parsers reject.

Each scenario (default values, values-production.yaml, values-minimal.yaml) is linted, rendered
and checked against its values and against the code the chart deploys: the operator's and the
platform's configuration variables, subcommands and HTTP paths, the objects the operator
creates and the tenant-admin Role it grants (so its ClusterRole must hold every permission of
that Role), and the CRDs. A self-test then breaks the rendered manifests on purpose and expects
each break to be caught.

Run by charts/tests/run: `python charts/tests/render.py`. Exits 1 on any failed check.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import celpy
import helm_python as helm
import yaml

HERE = Path(__file__).resolve().parent
CHART = HERE.parent / "memoryc"
ROOT = HERE.parent.parent
KUBE_VERSION = "v1.28.0"  # the oldest the chart supports (Chart.yaml's kubeVersion)

# The API version of each kind the chart renders; all served by Kubernetes 1.28 and later (and by
# the Prometheus Operator's CRDs for the monitoring.coreos.com kinds).
API_VERSION = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "PodDisruptionBudget": "policy/v1",
    "ClusterRole": "rbac.authorization.k8s.io/v1",
    "ClusterRoleBinding": "rbac.authorization.k8s.io/v1",
    "Role": "rbac.authorization.k8s.io/v1",
    "RoleBinding": "rbac.authorization.k8s.io/v1",
    "ServiceMonitor": "monitoring.coreos.com/v1",
    "PrometheusRule": "monitoring.coreos.com/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "ValidatingAdmissionPolicy": "admissionregistration.k8s.io/v1",
    "ValidatingAdmissionPolicyBinding": "admissionregistration.k8s.io/v1",
}
CLUSTER_SCOPED = {
    "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
}
OPERATOR = "memoryc-operator"
PLATFORM = "memoryc-platform"
LEADER_ELECTION = "memoryc-operator-leader-election"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
# How Helm itself splits a template's output into documents (releaseutil.SplitManifests).
DOC_SEPARATOR = re.compile(r"(?:^|\s*\n)---\s*")


@dataclass
class Scenario:
    name: str
    values_file: Path | None
    release: str
    namespace: str


SCENARIOS = [
    Scenario("defaults", None, "memoryc", "memoryc-system"),
    Scenario("production", HERE / "values-production.yaml", "mc-prod", "memoryc-prod"),
    Scenario("minimal", HERE / "values-minimal.yaml", "memoryc", "ops"),
]


class Report:
    """Counts checks; keeps the failed ones."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.passed = 0
        self.failures: list[str] = []

    def check(self, ok: bool, message: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failures.append(message)
        return ok

    def fail(self, message: str) -> None:
        self.check(False, message)

    def equal(self, actual: Any, expected: Any, what: str) -> bool:
        return self.check(actual == expected, f"{what}: {actual!r}, expected {expected!r}")


# ---------------------------------------------------------------------------------------------
# YAML


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses duplicate keys and, like Kubernetes' Go decoding,
    leaves timestamps as strings."""


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def strict_load(text: str) -> Any:
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class Obj:
    """One rendered Kubernetes object and the template it came from."""

    source: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        return (self.body.get("metadata") or {}).get("namespace")

    @property
    def labels(self) -> dict[str, str]:
        return (self.body.get("metadata") or {}).get("labels") or {}

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} ({self.source})"


def parse_manifests(rendered: dict[str, str], report: Report) -> list[Obj]:
    """Every document of every rendered template, parsed by PyYAML (strictly) and by Helm's Go
    YAML decoder; the two must agree, so the checks see what the cluster will."""
    objects = []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        for index, document in enumerate(DOC_SEPARATOR.split(text)):
            where = f"{template} document {index}"
            if not document.strip():
                continue
            try:
                body = strict_load(document)
            except yaml.YAMLError as error:
                report.fail(f"{where} is not valid YAML: {error}")
                continue
            if body is None:  # comments only
                continue
            if not report.check(isinstance(body, dict), f"{where} is not a mapping"):
                continue
            try:
                decoded = helm.values_from_yaml(document)
            except helm.HelmError as error:
                report.fail(f"{where}: Helm's YAML decoder refuses it: {error}")
                continue
            report.check(
                decoded == body,
                f"{where} means something else to Helm's Go YAML decoder than to PyYAML",
            )
            objects.append(Obj(template, body))
    return objects


# ---------------------------------------------------------------------------------------------
# What the code says: each binary describes what it reads and serves (`memoryc-platform
# describe`, `memoryc-operator --describe`), so the chart is checked against the code it deploys


def _describe(binary: str, args: list[str]) -> dict[str, Any]:
    """Builds and runs one of the workspace's binaries with `args`; its JSON on stdout."""
    command = ["cargo", "run", "--quiet", "--locked", "--bin", binary, "--", *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout)


@dataclass
class CodeFacts:
    operator_env: dict[str, str | None] = field(default_factory=dict)  # name -> default
    platform_env: set[str] = field(default_factory=set)
    platform_renamed_env: set[str] = field(default_factory=set)
    platform_commands: set[str] = field(default_factory=set)
    operator_paths: set[str] = field(default_factory=set)
    platform_public_paths: set[str] = field(default_factory=set)
    admin_rules: list[tuple[list[str], list[str], list[str]]] = field(default_factory=list)
    applied_types: set[str] = field(default_factory=set)
    swept_types: set[str] = field(default_factory=set)


def read_code_facts(report: Report) -> CodeFacts:
    facts = CodeFacts()
    operator = _describe("memoryc-operator", ["--describe"])
    platform = _describe("memoryc-platform", ["describe"])
    facts.operator_env = dict(operator["environment"])
    facts.operator_paths = set(operator["paths"])
    facts.admin_rules = [
        (rule.get("apiGroups", []), rule.get("resources", []), rule.get("verbs", []))
        for rule in operator["tenant_admin_rules"]
    ]
    facts.applied_types = set(operator["applied_kinds"])
    facts.swept_types = set(operator["swept_kinds"])
    # The platform reads MEMORYC_<SECTION>__<NAME> for each setting and ignores any other
    # MEMORYC_ variable, so a misspelt one would be dropped without a word. The previous
    # release's flat names are still read, with a warning; the chart uses none of them.
    facts.platform_env = set(platform["environment"])
    facts.platform_renamed_env = set(platform["renamed_environment"])
    facts.platform_commands = set(platform["commands"])
    facts.platform_public_paths = set(platform["unauthenticated_paths"])
    for what, value in [
        ("MEMORYC_OPERATOR_* variables (memoryc-operator --describe)", facts.operator_env),
        ("settings (memoryc-platform describe)", facts.platform_env),
        ("subcommands (memoryc-platform describe)", facts.platform_commands),
        ("paths (memoryc-operator --describe)", facts.operator_paths),
        ("unauthenticated paths (memoryc-platform describe)", facts.platform_public_paths),
        ("tenant-admin rules (memoryc-operator --describe)", facts.admin_rules),
        ("applied kinds (memoryc-operator --describe)", facts.applied_types),
        ("swept kinds (memoryc-operator --describe)", facts.swept_types),
    ]:
        report.check(bool(value), f"found no {what}")
    return facts


# Kubernetes' (group, plural) of the kinds the operator applies.
RESOURCE_OF_TYPE = {
    "Namespace": ("", "namespaces"),
    "ServiceAccount": ("", "serviceaccounts"),
    "ResourceQuota": ("", "resourcequotas"),
    "Secret": ("", "secrets"),
    "Service": ("", "services"),
    "ConfigMap": ("", "configmaps"),
    "Deployment": ("apps", "deployments"),
    "PodDisruptionBudget": ("policy", "poddisruptionbudgets"),
    "NetworkPolicy": ("networking.k8s.io", "networkpolicies"),
    "Role": ("rbac.authorization.k8s.io", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io", "rolebindings"),
}

# Calls the operator makes besides applying the builders' objects (operator/src): watches of
# the controllers (controllers.rs), get_opt reads, the finalizers and status patches of both
# controllers, kube-runtime's event Recorder, and the credentials Secret it applies itself.
OPERATOR_CALLS = [
    ("memoryc.dev", "memorytenants", ["get", "list", "watch", "patch"]),
    ("memoryc.dev", "memorytenants/status", ["patch"]),
    # Objects owned by a tenant carry blockOwnerDeletion (controller_owner_ref).
    ("memoryc.dev", "memorytenants/finalizers", ["update"]),
    ("memoryc.dev", "integrationbindings", ["get", "list", "watch", "patch"]),
    ("memoryc.dev", "integrationbindings/status", ["patch"]),
    ("", "namespaces", ["get", "list", "watch"]),
    ("", "secrets", ["get", "list", "watch", "create", "patch"]),
    ("apps", "deployments", ["list", "watch"]),
    ("events.k8s.io", "events", ["create", "patch"]),
]

CRDS = {
    "memorytenants.memoryc.dev": ("MemoryTenant", "memorytenants", "Cluster"),
    "integrationbindings.memoryc.dev": ("IntegrationBinding", "integrationbindings", "Namespaced"),
}


# ---------------------------------------------------------------------------------------------
# Checks of one rendered release


@dataclass
class Release:
    scenario: Scenario
    values: dict[str, Any]  # the chart's defaults merged with the scenario's values
    chart_version: str
    app_version: str
    objects: list[Obj]
    notes: str
    facts: CodeFacts
    report: Report

    def find(self, kind: str, name: str) -> Obj | None:
        return next((o for o in self.objects if o.kind == kind and o.name == name), None)

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o.kind == kind]

    def image(self, component: str) -> str:
        image = self.values[component]["image"]
        return f"{image['repository']}:{image.get('tag') or self.app_version}"


def expected_objects(release: Release) -> set[tuple[str, str]]:
    values = release.values
    expected = {
        ("Deployment", OPERATOR),
        ("Service", "memoryc-operator-metrics"),
        ("ServiceAccount", OPERATOR),
        ("ClusterRole", OPERATOR),
        ("ClusterRoleBinding", OPERATOR),
        ("Role", LEADER_ELECTION),
        ("RoleBinding", LEADER_ELECTION),
    }
    if values["platform"]["enabled"]:
        expected |= {("Deployment", PLATFORM), ("Service", PLATFORM)}
        expected |= {("PodDisruptionBudget", PLATFORM)}
    if values["admission"]["enabled"]:
        expected |= {("ValidatingAdmissionPolicy", ADMISSION)}
        expected |= {("ValidatingAdmissionPolicyBinding", ADMISSION)}
    for backend in values.get("backendNetworkPolicies") or []:
        expected.add(("NetworkPolicy", f"memoryc-{backend['name']}-clients"))
    if values["monitoring"]["serviceMonitor"]:
        expected.add(("ServiceMonitor", "memoryc"))
    if values["monitoring"]["prometheusRule"]:
        expected.add(("PrometheusRule", "memoryc"))
    return expected


ADMISSION = "memoryc-tenant-bounds"


def admitted(policy: dict[str, Any], tenant: dict[str, Any]) -> list[str]:
    """Evaluates the policy's CEL on a MemoryTenant as the API server would; returns the
    messages of the validations it fails (empty: admitted)."""
    env = celpy.Environment()
    activation: dict[str, Any] = {"object": celpy.json_to_cel(tenant)}
    variables: dict[str, Any] = {}
    for variable in policy["spec"].get("variables") or []:
        program = env.program(env.compile(variable["expression"]))
        variables[variable["name"]] = program.evaluate(
            {**activation, "variables": celpy.json_to_cel(variables)}
        )
    activation["variables"] = celpy.celtypes.MapType(
        {celpy.celtypes.StringType(k): v for k, v in variables.items()}
    )
    denied = []
    for validation in policy["spec"]["validations"]:
        if not env.program(env.compile(validation["expression"])).evaluate(activation):
            message = env.program(env.compile(validation["messageExpression"]))
            denied.append(str(message.evaluate(activation)))
    return denied


def check_backend_policies(r: Release) -> None:
    """Each backend policy sits in the backend's namespace, selects its pods, and admits exactly
    the release's operator and platform pods on the backend's ports."""
    for backend in r.values.get("backendNetworkPolicies") or []:
        policy = r.find("NetworkPolicy", f"memoryc-{backend['name']}-clients")
        if policy is None:
            continue
        spec = policy.body["spec"]
        r.report.equal(policy.body["metadata"].get("namespace"), backend["namespace"],
                       f"{policy} namespace")
        r.report.equal(spec["podSelector"], backend["podSelector"], f"{policy} podSelector")
        ingress = spec.get("ingress") or []
        if not r.report.check(len(ingress) == 1, f"{policy}: one ingress rule"):
            continue
        peers = ingress[0]["from"]
        admitted = []
        for deployment in r.of_kind("Deployment"):
            labels = pod_labels(deployment)
            if any(selects(peer["podSelector"]["matchLabels"], labels) for peer in peers):
                admitted.append(deployment.name)
        r.report.equal(sorted(admitted), sorted(d.name for d in r.of_kind("Deployment")),
                       f"{policy} admits the operator and the platform")
        namespaces = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                      for peer in peers}
        r.report.equal(namespaces, {r.scenario.namespace}, f"{policy} peer namespaces")
        r.report.equal([p["port"] for p in ingress[0]["ports"]], backend["ports"],
                       f"{policy} ports")


def check_admission(r: Release) -> None:
    policy = r.find("ValidatingAdmissionPolicy", ADMISSION)
    binding = r.find("ValidatingAdmissionPolicyBinding", ADMISSION)
    if policy is None or binding is None:
        return
    r.report.equal(binding.body["spec"]["policyName"], ADMISSION, "admission binding policy")
    r.report.equal(binding.body["spec"]["validationActions"], ["Deny"], "admission binding")
    rules = policy.body["spec"]["matchConstraints"]["resourceRules"]
    r.report.equal(
        [(rule["apiGroups"], rule["resources"]) for rule in rules],
        [(["memoryc.dev"], ["memorytenants"])],
        "admission policy resources",
    )
    control = r.values["database"]["controlSchema"]
    cases = [
        ({}, True),
        ({"__namespace__": "team-a"}, True),
        ({"__namespace__": "kube-system"}, False),
        ({"__namespace__": "kube-public"}, False),
        ({"__namespace__": "default"}, False),
        ({"__namespace__": r.scenario.namespace}, False),
        ({"storage": {"schemaName": "acme_data"}}, True),
        ({"storage": {"schemaName": "public"}}, False),
        ({"storage": {"schemaName": "pg_catalog"}}, False),
        ({"storage": {"schemaName": control}}, False),
        ({"storage": {}}, True),
    ]
    for spec, allowed in cases:
        tenant = {"metadata": {"name": "acme"}, "spec": spec}
        denied = admitted(policy.body, tenant)
        r.report.check(
            (not denied) == allowed,
            f"admission of spec {spec}: wanted {'admitted' if allowed else 'denied'}, "
            f"denied with {denied}",
        )


def check_inventory(r: Release) -> None:
    rendered = Counter((o.kind, o.name) for o in r.objects)
    for key, count in rendered.items():
        r.report.check(count == 1, f"{key[0]}/{key[1]} is rendered {count} times")
    expected = expected_objects(r)
    r.report.check(
        set(rendered) == expected,
        f"rendered objects differ from the values' expectation: missing "
        f"{sorted(expected - set(rendered))}, unexpected {sorted(set(rendered) - expected)}",
    )


def check_metadata(r: Release) -> None:
    ns = r.scenario.namespace
    common = {
        "app.kubernetes.io/part-of": "memoryc",
        "app.kubernetes.io/managed-by": "Helm",
        "app.kubernetes.io/instance": r.scenario.release,
        "helm.sh/chart": f"memoryc-{r.chart_version}",
    }
    for o in r.objects:
        r.report.check(
            isinstance(o.body.get("apiVersion"), str) and bool(o.body["apiVersion"]),
            f"{o} has no apiVersion",
        )
        r.report.check(bool(o.kind), f"{o} has no kind")
        r.report.equal(o.body.get("apiVersion"), API_VERSION.get(o.kind), f"{o} apiVersion")
        r.report.check(
            len(o.name) <= 63 and bool(DNS_LABEL.match(o.name)), f"{o}: invalid name {o.name!r}"
        )
        backend_namespaces = {
            f"memoryc-{b['name']}-clients": b["namespace"]
            for b in r.values.get("backendNetworkPolicies") or []
        }
        if o.kind in CLUSTER_SCOPED:
            r.report.check(o.namespace is None, f"{o} is cluster-scoped but names a namespace")
        elif o.kind == "NetworkPolicy" and o.name in backend_namespaces:
            # Backend policies live with the backend (checked in check_backend_policies).
            r.report.equal(o.namespace, backend_namespaces[o.name], f"{o} namespace")
        else:
            r.report.equal(o.namespace, ns, f"{o} namespace")
        for key, value in common.items():
            r.report.equal(o.labels.get(key), value, f"{o} label {key}")
        for key, value in o.labels.items():
            valid_key = LABEL_KEY_NAME.match(key.rsplit("/", 1)[-1]) and len(key) <= 316
            valid_value = isinstance(value, str) and len(value) <= 63 and LABEL_VALUE.match(value)
            r.report.check(bool(valid_key and valid_value), f"{o}: invalid label {key}={value!r}")


def first_container(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["template"]["spec"]["containers"][0]


def pod_labels(deployment: Obj) -> dict[str, str]:
    return deployment.body["spec"]["template"]["metadata"].get("labels") or {}


def container_ports(deployment: Obj) -> dict[str, int]:
    ports = {}
    for container in deployment.body["spec"]["template"]["spec"]["containers"]:
        for port in container.get("ports") or []:
            ports[port.get("name", str(port["containerPort"]))] = port["containerPort"]
    return ports


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def env_of(container: dict[str, Any], r: Release, where: str) -> dict[str, dict[str, Any]]:
    entries = container.get("env") or []
    names = [e.get("name") for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    r.report.check(not duplicates, f"{where}: environment variables set twice: {duplicates}")
    return {e["name"]: e for e in entries}


def check_deployment(r: Release, name: str, component: str) -> dict[str, Any] | None:
    """What every Deployment of the chart must be; returns its one container."""
    deployment = r.find("Deployment", name)
    if deployment is None:
        return None
    values = r.values[component]
    spec = deployment.body["spec"]
    selector = spec["selector"].get("matchLabels") or {}
    r.report.check(bool(selector), f"{deployment}: empty selector")
    r.report.check(
        selects(selector, pod_labels(deployment)),
        f"{deployment}: selector {selector} does not match its pod labels {pod_labels(deployment)}",
    )
    r.report.equal(selector.get("app.kubernetes.io/name"), name, f"{deployment} selector name")
    r.report.equal(
        selector.get("app.kubernetes.io/instance"), r.scenario.release, f"{deployment} instance"
    )
    r.report.check(
        selects(selector, deployment.labels), f"{deployment}: its own labels miss its selector"
    )
    r.report.equal(spec.get("replicas"), values["replicas"], f"{deployment} replicas")
    pod = spec["template"]["spec"]
    r.report.check(
        (pod.get("securityContext") or {}).get("runAsNonRoot") is True,
        f"{deployment}: pod may run as root",
    )
    containers = pod.get("containers") or []
    if not r.report.equal(len(containers), 1, f"{deployment} container count"):
        return None
    container = containers[0]
    r.report.equal(container.get("image"), r.image(component), f"{deployment} image")
    r.report.equal(
        container.get("imagePullPolicy"), values["image"]["pullPolicy"], f"{deployment} pullPolicy"
    )
    r.report.equal(container.get("resources"), values["resources"], f"{deployment} resources")
    security = container.get("securityContext") or {}
    r.report.equal(
        security,
        {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        f"{deployment} container securityContext",
    )
    ports = container_ports(deployment)
    for probe_name in ("livenessProbe", "readinessProbe"):
        probe = container.get(probe_name)
        if not r.report.check(probe is not None, f"{deployment}: no {probe_name}"):
            continue
        action = probe.get("httpGet") or probe.get("tcpSocket") or {}
        r.report.check(
            action.get("port") in ports or action.get("port") in ports.values(),
            f"{deployment} {probe_name}: port {action.get('port')!r} is not a container port",
        )
    volumes = {v["name"] for v in pod.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        r.report.check(mount["name"] in volumes, f"{deployment}: mounts unknown volume {mount}")
    return container


def probe_paths(container: dict[str, Any]) -> list[str]:
    paths = []
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        path = ((container.get(probe_name) or {}).get("httpGet") or {}).get("path")
        if path:
            paths.append(path)
    return paths


def literal(env: dict[str, dict[str, Any]], name: str) -> Any:
    return (env.get(name) or {}).get("value")


def check_milvus_token(r: Release, env: dict[str, dict[str, Any]], name: str, where: str) -> None:
    """The Milvus token comes from the configured Secret, never as a literal value."""
    secret = r.values["milvus"]["tokenSecret"]
    r.report.equal(
        (env.get(name) or {}).get("valueFrom"),
        {"secretKeyRef": {"name": secret["existingSecret"], "key": secret["key"]}}
        if secret["existingSecret"] else None,
        f"{where} {name}",
    )
    r.report.check(literal(env, name) is None, f"{where}: {name} given as a literal value")


def check_operator(r: Release) -> None:
    container = check_deployment(r, OPERATOR, "operator")
    if container is None:
        return
    deployment = r.find("Deployment", OPERATOR)
    assert deployment is not None
    values, ns = r.values, r.scenario.namespace
    pod = deployment.body["spec"]["template"]["spec"]
    r.report.equal(pod.get("serviceAccountName"), OPERATOR, "operator serviceAccountName")
    where = "operator container"
    env = env_of(container, r, where)
    for name in env:
        r.report.check(
            name in r.facts.operator_env,
            f"{where}: {name} is not a memoryc-operator variable (memoryc-operator --describe)",
        )
    database = values["database"]
    r.report.equal(
        (env.get("MEMORYC_OPERATOR_DATABASE_URL") or {}).get("valueFrom"),
        {"secretKeyRef": {"name": database["existingSecret"], "key": database["uriKey"]}},
        f"{where} MEMORYC_OPERATOR_DATABASE_URL",
    )
    expected = {
        "MEMORYC_OPERATOR_CONTROL_SCHEMA": database["controlSchema"],
        "MEMORYC_OPERATOR_MILVUS_URL": values["milvus"]["url"],
        "MEMORYC_OPERATOR_PLATFORM_IMAGE": r.image("platform"),
        "MEMORYC_OPERATOR_PLATFORM_MODEL_DIR": values["platform"]["modelDir"],
        "MEMORYC_OPERATOR_LEASE_SECONDS": str(values["operator"]["leaseSeconds"]),
        "MEMORYC_OPERATOR_LOG_FORMAT": values["operator"]["logFormat"],
        "MEMORYC_OPERATOR_TENANT_DATABASE_HOST": database["tenantHost"] or None,
        "MEMORYC_OPERATOR_PLATFORM_DATABASE_ROLE": database["platform"]["role"] or None,
    }
    for name, value in expected.items():
        r.report.equal(literal(env, name), value, f"{where} {name}")
    check_milvus_token(r, env, "MEMORYC_OPERATOR_MILVUS_TOKEN", where)
    for name, path in [
        ("MEMORYC_OPERATOR_NAMESPACE", "metadata.namespace"),
        ("MEMORYC_OPERATOR_IDENTITY", "metadata.name"),
    ]:
        r.report.equal(
            (env.get(name) or {}).get("valueFrom"),
            {"fieldRef": {"fieldPath": path}},
            f"{where} {name}",
        )
    # The shared platform's URL is the rendered Service's; without one, the given URL or none
    # (the operator then refuses Shared tenants).
    url = literal(env, "MEMORYC_OPERATOR_SHARED_PLATFORM_URL")
    if not values["platform"]["enabled"]:
        r.report.equal(url, values["platform"]["sharedUrl"], f"{where} shared platform URL")
        url = None
    match = re.fullmatch(r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc:(\d+)", url or "")
    if url is not None and r.report.check(
        match is not None, f"{where}: shared platform URL {url!r}"
    ):
        assert match is not None
        r.report.equal(match.group(2), ns, f"{where} shared platform URL namespace")
        service = r.find("Service", match.group(1))
        if r.report.check(
            service is not None, f"{where}: shared platform URL {url} names no rendered Service"
        ):
            assert service is not None
            service_ports = [p["port"] for p in service.body["spec"]["ports"]]
            r.report.check(
                int(match.group(3)) in service_ports,
                f"{where}: shared platform URL port {match.group(3)} not in {service_ports}",
            )
    # It listens where the metrics port and the probes point.
    default_listen = r.facts.operator_env.get("MEMORYC_OPERATOR_LISTEN") or ""
    listen = literal(env, "MEMORYC_OPERATOR_LISTEN") or default_listen
    r.report.equal(
        container_ports(deployment).get("metrics"),
        int(listen.rsplit(":", 1)[-1]) if ":" in listen else None,
        "operator metrics containerPort (against its listen address)",
    )
    paths = probe_paths(container)
    r.report.check(bool(paths), f"{where}: no HTTP probe")
    for path in paths:
        r.report.check(
            path in r.facts.operator_paths,
            f"{where}: probe path {path} is not served (memoryc-operator --describe)",
        )


def check_platform(r: Release) -> None:
    container = check_deployment(r, PLATFORM, "platform")
    if container is None:
        return
    deployment = r.find("Deployment", PLATFORM)
    assert deployment is not None
    values = r.values
    pod = deployment.body["spec"]["template"]["spec"]
    where = "platform container"
    r.report.check(
        pod.get("automountServiceAccountToken") is False,
        "the shared platform needs no Kubernetes API token, yet gets one",
    )
    args = container.get("args") or []
    r.report.check(
        bool(args) and args[0] in r.facts.platform_commands,
        f"{where}: args {args} start with no memoryc-platform subcommand "
        f"{sorted(r.facts.platform_commands)}",
    )
    r.report.equal(args, ["serve"], f"{where} args")
    env = env_of(container, r, where)
    for name in env:
        r.report.check(
            name not in r.facts.platform_renamed_env,
            f"{where}: {name} is a setting's old name (memoryc-platform describe); use its new one",
        )
        r.report.check(
            not name.startswith("MEMORYC_")
            or name in r.facts.platform_env
            or name in r.facts.platform_renamed_env,
            f"{where}: {name} is no platform setting (memoryc-platform describe), so it is ignored",
        )
    database = values["database"]
    # Its own login, not the operator's.
    login = database["platform"]
    r.report.equal(
        (env.get("MEMORYC_STORAGE__DATABASE_URL") or {}).get("valueFrom"),
        {"secretKeyRef": {"name": login["existingSecret"], "key": login["uriKey"]}},
        f"{where} MEMORYC_STORAGE__DATABASE_URL",
    )
    r.report.check(
        login["existingSecret"] != database["existingSecret"],
        f"{where}: logs in with the operator's database Secret",
    )
    r.report.equal(
        literal(env, "MEMORYC_STORAGE__REDIS_URL"), values["redis"]["url"] or None, f"{where} MEMORYC_STORAGE__REDIS_URL"
    )
    check_milvus_token(r, env, "MEMORYC_STORAGE__MILVUS_TOKEN", where)
    proxies = values["platform"].get("trustedProxies") or []
    given = literal(env, "MEMORYC_SECURITY__TRUSTED_PROXIES")
    r.report.equal(json.loads(given) if given else [], proxies, f"{where} MEMORYC_SECURITY__TRUSTED_PROXIES")
    r.report.check(
        int(values["platform"]["replicas"]) <= 1 or bool(values["redis"]["url"]),
        f"{where}: {values['platform']['replicas']} replicas without Redis",
    )
    expected = {
        "MEMORYC_STORAGE__RELATIONAL_BACKEND": "postgres",
        "MEMORYC_STORAGE__VECTOR_BACKEND": "milvus",
        "MEMORYC_STORAGE__CONTROL_SCHEMA": database["controlSchema"],
        "MEMORYC_STORAGE__MILVUS_URL": values["milvus"]["url"],
        "MEMORYC_EMBEDDING__MODEL_DIR": values["platform"]["modelDir"],
        "MEMORYC_SERVER__DEMO_TENANT": "false",
    }
    for name, value in expected.items():
        r.report.equal(literal(env, name), value, f"{where} {name}")
    token = values["platform"]["metricsToken"]
    r.report.equal(
        (env.get("MEMORYC_METRICS__TOKEN") or {}).get("valueFrom"),
        {"secretKeyRef": {"name": token["existingSecret"], "key": token["key"]}}
        if token["existingSecret"] else None,
        f"{where} MEMORYC_METRICS__TOKEN",
    )
    listen = literal(env, "MEMORYC_SERVER__LISTEN") or ""
    r.report.check(
        listen.startswith("0.0.0.0:"), f"{where}: listens on {listen!r}, not on every address"
    )
    r.report.equal(
        container_ports(deployment).get("http"),
        int(listen.rsplit(":", 1)[-1]) if ":" in listen else None,
        "platform http containerPort (against MEMORYC_SERVER__LISTEN)",
    )
    # The root filesystem is read-only: the data directory must be a volume.
    data_dir = literal(env, "MEMORYC_SERVER__DATA_DIR")
    mounts = [m["mountPath"] for m in container.get("volumeMounts") or []]
    r.report.check(data_dir in mounts, f"{where}: data dir {data_dir} is not a volume {mounts}")
    paths = probe_paths(container)
    r.report.check(bool(paths), f"{where}: no HTTP probe")
    for path in paths:
        r.report.check(
            path in r.facts.platform_public_paths,
            f"{where}: probe path {path} is no public route of the platform",
        )


def check_services(r: Release) -> None:
    deployments = r.of_kind("Deployment")
    for service in r.of_kind("Service"):
        selector = service.body["spec"].get("selector") or {}
        r.report.check(bool(selector), f"{service}: no selector")
        chosen = [d for d in deployments if selects(selector, pod_labels(d))]
        if not r.report.check(
            len(chosen) == 1, f"{service}: selector {selector} selects {len(chosen)} Deployments"
        ):
            continue
        ports = container_ports(chosen[0])
        for port in service.body["spec"].get("ports") or []:
            target = port.get("targetPort", port["port"])
            r.report.check(
                target in ports or target in ports.values(),
                f"{service}: targetPort {target!r} is not a port of {chosen[0]} {ports}",
            )
    for budget in r.of_kind("PodDisruptionBudget"):
        selector = budget.body["spec"]["selector"].get("matchLabels") or {}
        chosen = [d for d in deployments if selects(selector, pod_labels(d))]
        r.report.equal([d.name for d in chosen], [budget.name], f"{budget} selects")
        if chosen:
            # A budget that allows no disruption blocks node drains for good.
            replicas = chosen[0].body["spec"].get("replicas", 1)
            spec = budget.body["spec"]
            if "maxUnavailable" in spec:
                drainable = spec["maxUnavailable"] not in (0, "0%")
            else:
                minimum = spec.get("minAvailable", 0)
                drainable = minimum != "100%" and (isinstance(minimum, str) or minimum < replicas)
            r.report.check(drainable, f"{budget}: blocks every eviction of {chosen[0]}")


def match_expressions(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selects(selector.get("matchLabels") or {}, labels):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        options = expression.get("values") or []
        if operator == "In" and labels.get(key) not in options:
            return False
        if operator == "NotIn" and labels.get(key) in options:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def check_monitoring(r: Release) -> None:
    monitoring = r.values["monitoring"]
    extra_labels = monitoring.get("labels") or {}
    monitor = r.find("ServiceMonitor", "memoryc")
    scraped: list[Obj] = []
    if monitor is not None:
        for key, value in extra_labels.items():
            r.report.equal(monitor.labels.get(key), value, f"{monitor} label {key}")
        spec = monitor.body["spec"]
        r.report.check(
            "namespaceSelector" not in spec,
            f"{monitor}: selects Services beyond its own namespace",
        )
        scraped = [s for s in r.of_kind("Service") if match_expressions(spec["selector"], s.labels)]
        expected = ["memoryc-operator-metrics"]
        if r.values["platform"]["enabled"]:
            expected.append(PLATFORM)
        r.report.equal(sorted(s.name for s in scraped), expected, f"{monitor} selects Services")
        paths_of = {
            "memoryc-operator-metrics": r.facts.operator_paths,
            PLATFORM: r.facts.platform_public_paths,
        }
        for endpoint in spec.get("endpoints") or []:
            r.report.equal(endpoint.get("interval"), monitoring["interval"], f"{monitor} interval")
            owners = [
                s for s in scraped
                if endpoint["port"] in [p.get("name") for p in s.body["spec"]["ports"]]
            ]
            if r.report.check(
                bool(owners), f"{monitor}: endpoint port {endpoint['port']!r} is on no Service"
            ):
                for owner in owners:
                    r.report.check(
                        endpoint.get("path") in paths_of.get(owner.name, set()),
                        f"{monitor}: {owner.name} serves no {endpoint.get('path')}",
                    )
                    if owner.name == PLATFORM:
                        r.report.equal(
                            endpoint.get("authorization"),
                            platform_scrape_authorization(r),
                            f"{monitor}: authorization of the platform's {endpoint['port']!r} "
                            "endpoint (against the platform's MEMORYC_METRICS__TOKEN)",
                        )
    rule = r.find("PrometheusRule", "memoryc")
    if rule is not None:
        for key, value in extra_labels.items():
            r.report.equal(rule.labels.get(key), value, f"{rule} label {key}")
        alerts = strict_load((CHART / "files/alerts.rules.yaml").read_text())
        r.report.check(
            rule.body.get("spec") == alerts,
            f"{rule}: spec differs from files/alerts.rules.yaml (indentation of the include?)",
        )
        # Alerts about a job must name one the ServiceMonitor creates (job = Service name).
        if monitor is not None:
            exprs = [
                rl.get("expr", "") for g in rule.body["spec"].get("groups") or []
                for rl in g.get("rules") or []
            ]
            jobs = [j for e in exprs for j in re.findall(r'job\s*=~?\s*"([^"]*)"', e)]
            r.report.check(bool(jobs), f"{rule}: no alert watches a scrape job")
            for job in jobs:
                r.report.check(
                    any(re.fullmatch(job, s.name) for s in scraped),
                    f"{rule}: job {job!r} matches no Service the ServiceMonitor scrapes",
                )


def platform_scrape_authorization(r: Release) -> dict[str, Any] | None:
    """What Prometheus must present to scrape the platform: the Secret its token comes from."""
    deployment = r.find("Deployment", PLATFORM)
    if deployment is None:
        return None
    for entry in first_container(deployment.body).get("env") or []:
        if entry.get("name") == "MEMORYC_METRICS__TOKEN":
            reference = (entry.get("valueFrom") or {}).get("secretKeyRef") or {}
            return {"type": "Bearer", "credentials": reference}
    return None


def rbac_permissions(role: Obj) -> list[tuple[str, str, set[str], list[str]]]:
    permissions = []
    for rule in role.body.get("rules") or []:
        verbs = set(rule.get("verbs") or [])
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                permissions.append((group, resource, verbs, rule.get("resourceNames") or []))
    return permissions


def allowed(permissions: list[tuple[str, str, set[str], list[str]]], group: str,
            resource: str, verb: str, name: str | None = None) -> bool:
    return any(
        g == group and r == resource and verb in verbs and (not names or name in names)
        for g, r, verbs, names in permissions
    )


def check_rbac(r: Release) -> None:
    ns = r.scenario.namespace
    account = {"kind": "ServiceAccount", "name": OPERATOR, "namespace": ns}
    r.report.check(r.find("ServiceAccount", OPERATOR) is not None, "no operator ServiceAccount")

    binding = r.find("ClusterRoleBinding", OPERATOR)
    role = r.find("ClusterRole", OPERATOR)
    if binding is not None:
        ref = binding.body["roleRef"]
        r.report.equal(
            (ref.get("kind"), ref.get("name")), ("ClusterRole", OPERATOR), f"{binding} roleRef"
        )
        r.report.check(account in binding.body.get("subjects", []), f"{binding}: not to {account}")
    if role is not None:
        permissions = rbac_permissions(role)
        for group, resource, verbs, _ in permissions:
            r.report.check(
                "*" not in verbs and resource != "*" and group != "*", f"{role}: wildcard rule"
            )
            r.report.check(
                not verbs & {"escalate", "bind", "impersonate"},
                f"{role}: {sorted(verbs)} on {resource} lets the operator exceed its role",
            )
            if group == "memoryc.dev":
                r.report.check(
                    resource.split("/")[0] in {p for _, p, _ in CRDS.values()},
                    f"{role}: memoryc.dev/{resource} is no resource of the CRDs",
                )
        needed = list(OPERATOR_CALLS)
        for kind in sorted(r.facts.applied_types):
            if r.report.check(
                kind in RESOURCE_OF_TYPE,
                f"the operator applies {kind}: add its resource to RESOURCE_OF_TYPE",
            ):
                # Applied, and watched by the operator's label.
                needed.append((*RESOURCE_OF_TYPE[kind], ["create", "patch", "list", "watch"]))
        # Swept for orphans: listed by label and deleted.
        for kind in sorted(r.facts.swept_types):
            if r.report.check(
                kind in RESOURCE_OF_TYPE,
                f"the operator sweeps {kind}: add its resource to RESOURCE_OF_TYPE",
            ):
                needed.append((*RESOURCE_OF_TYPE[kind], ["list", "delete"]))
        for group, resource, verbs in needed:
            for verb in verbs:
                r.report.check(
                    allowed(permissions, group, resource, verb),
                    f"{role}: the operator may not {verb} {group or 'core'}/{resource}",
                )
        # Kubernetes lets a subject grant only what it holds itself.
        for groups, resources, verbs in r.facts.admin_rules:
            for group in groups:
                for resource in resources:
                    for verb in verbs:
                        r.report.check(
                            allowed(permissions, group, resource, verb),
                            f"{role}: cannot grant tenant admins {verb} "
                            f"{group or 'core'}/{resource}",
                        )
        r.report.check(
            not allowed(permissions, "", "namespaces", "delete"),
            f"{role}: may delete namespaces (garbage collection removes tenants' namespaces)",
        )

    # Leader election: the operator's Lease, in the namespace the operator runs in.
    election = r.find("Role", LEADER_ELECTION)
    election_binding = r.find("RoleBinding", LEADER_ELECTION)
    lease = r.facts.operator_env.get("MEMORYC_OPERATOR_LEASE_NAME")
    operator = r.find("Deployment", OPERATOR)
    if operator is not None:
        env = {e["name"]: e for e in first_container(operator.body).get("env") or []}
        lease = literal(env, "MEMORYC_OPERATOR_LEASE_NAME") or lease
    if election is not None:
        permissions = rbac_permissions(election)
        group = "coordination.k8s.io"
        r.report.check(allowed(permissions, group, "leases", "create"), "cannot create the Lease")
        for verb in ("get", "update"):
            r.report.check(
                allowed(permissions, group, "leases", verb, lease), f"cannot {verb} Lease {lease}"
            )
        r.report.check(
            not allowed(permissions, group, "leases", "update", "another-lease"),
            f"{election}: may update every Lease of {ns}",
        )
    if election_binding is not None:
        ref = election_binding.body["roleRef"]
        r.report.equal((ref.get("kind"), ref.get("name")), ("Role", LEADER_ELECTION), "roleRef")
        r.report.check(
            account in election_binding.body.get("subjects", []),
            f"{election_binding}: not to {account}",
        )


def check_notes(r: Release) -> None:
    r.report.check(f"installed in {r.scenario.namespace}." in r.notes, "NOTES.txt: no namespace")
    r.report.check(
        '{{index .data "api-key" | base64decode}}' in r.notes,
        "NOTES.txt: the kubectl go-template is not printed literally",
    )


CHECKS: list[Callable[[Release], None]] = [
    check_inventory,
    check_metadata,
    check_operator,
    check_platform,
    check_services,
    check_monitoring,
    check_rbac,
    check_notes,
    check_admission,
    check_backend_policies,
]


def check_release(
    scenario: Scenario, overrides: dict[str, Any] | None, chart: helm.Chart,
    rendered: dict[str, str], facts: CodeFacts, report: Report,
) -> Release:
    objects = parse_manifests(rendered, report)
    notes = next((text for path, text in rendered.items() if path.endswith("NOTES.txt")), "")
    metadata = chart.metadata
    release = Release(
        scenario, chart.merge_values(overrides), metadata["version"], metadata["appVersion"],
        objects, notes, facts, report,
    )
    for check in CHECKS:
        try:
            check(release)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as error:
            report.fail(f"{check.__name__}: manifests not shaped as expected: {error!r}")
    return release


# ---------------------------------------------------------------------------------------------
# The CRDs under crds/ (installed by Helm, not templated)


def check_crds(chart: helm.Chart, report: Report) -> list[str]:
    names = []
    crds = chart.crds
    report.equal(len(crds), len(CRDS), "number of CRD files in the chart")
    for crd in crds:
        filename = Path(crd["filename"]).name
        generated = ROOT / "crds" / filename
        report.check(
            generated.exists() and generated.read_text() == crd["data"],
            f"chart crds/{filename} differs from crds/{filename} (run crdgen)",
        )
        try:
            body = strict_load(crd["data"])
        except yaml.YAMLError as error:
            report.fail(f"crds/{filename}: {error}")
            continue
        name = body["metadata"]["name"]
        names.append(name)
        report.equal(
            (body.get("apiVersion"), body.get("kind")),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            f"crds/{filename}",
        )
        if not report.check(name in CRDS, f"crds/{filename}: unexpected CRD {name}"):
            continue
        kind, plural, scope = CRDS[name]
        spec = body["spec"]
        report.equal(
            (spec["group"], spec["names"]["kind"], spec["names"]["plural"], spec["scope"]),
            ("memoryc.dev", kind, plural, scope),
            f"{name} group, kind, plural and scope",
        )
        versions = spec.get("versions") or []
        report.equal(sum(1 for v in versions if v.get("storage")), 1, f"{name} storage versions")
        for version in versions:
            if version.get("served"):
                report.check(
                    "status" in (version.get("subresources") or {}),
                    f"{name} {version['name']}: no status subresource, yet the operator "
                    "patches status",
                )
    return sorted(names)


# ---------------------------------------------------------------------------------------------
# Scenarios


def load_values(scenario: Scenario) -> dict[str, Any] | None:
    if scenario.values_file is None:
        return None
    # Helm's own parser, as for `helm install -f`.
    return helm.values_from_yaml(scenario.values_file.read_text())


def unknown_keys(values: dict[str, Any], defaults: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys of `values` that values.yaml does not have (below an empty map, any key goes)."""
    unknown = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in defaults:
            unknown.append(path)
        elif isinstance(value, dict) and isinstance(defaults[key], dict) and defaults[key]:
            unknown += unknown_keys(value, defaults[key], f"{path}.")
    return unknown


def lint(scenario: Scenario, overrides: dict[str, Any] | None, report: Report) -> int:
    result = helm.lint(
        str(CHART), overrides, strict=True, namespace=scenario.namespace,
        kube_version=KUBE_VERSION,
    )
    report.equal(result.get("total_charts_linted"), 1, "charts linted")
    for message in result.get("messages") or []:
        report.check(
            message.get("severity", 0) < 2,
            f"helm lint: {message.get('path')}: {message.get('error')}",
        )
    for error in result.get("errors") or []:
        report.fail(f"helm lint: {error}")
    return len(result.get("messages") or [])


def render(
    chart: helm.Chart, scenario: Scenario, overrides: dict[str, Any] | None
) -> dict[str, str]:
    return chart.render(
        overrides, name=scenario.release, namespace=scenario.namespace, is_install=True
    )


def summary(objects: list[Obj]) -> str:
    counts = Counter(o.kind for o in objects)
    return ", ".join(f"{kind}×{n}" if n > 1 else kind for kind, n in sorted(counts.items()))


# ---------------------------------------------------------------------------------------------
# Self-test: break the rendered defaults on purpose; the checks must notice each break


def edit_object(kind: str, name: str, edit: Callable[[dict[str, Any]], None]):
    def mutate(rendered: dict[str, str]) -> dict[str, str]:
        changed = dict(rendered)
        for template, text in rendered.items():
            if not template.endswith(".yaml"):
                continue
            documents = [strict_load(d) for d in DOC_SEPARATOR.split(text) if d.strip()]
            documents = [d for d in documents if d is not None]
            for document in documents:
                meta = document.get("metadata") or {}
                if document.get("kind") == kind and meta.get("name") == name:
                    edit(document)
                    changed[template] = yaml.safe_dump_all(documents, sort_keys=False)
                    return changed
        raise LookupError(f"{kind}/{name} not rendered")

    return mutate


def drop_verb(resource: str, verb: str) -> Callable[[dict[str, Any]], None]:
    def edit(role: dict[str, Any]) -> None:
        for rule in role["rules"]:
            if resource in rule["resources"] and verb in rule["verbs"]:
                rule["verbs"].remove(verb)

    return edit


def rename_env(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for entry in first_container(document)["env"]:
            if entry["name"] == old:
                entry["name"] = new

    return edit


def duplicate_label(rendered: dict[str, str]) -> dict[str, str]:
    path = next(p for p in rendered if p.endswith("operator-deployment.yaml"))
    text = rendered[path]
    line = "    app.kubernetes.io/part-of: memoryc\n"
    assert line in text
    twice = line + "    app.kubernetes.io/part-of: other\n"
    return {**rendered, path: text.replace(line, twice, 1)}


MUTATIONS: list[tuple[str, Callable[[dict[str, str]], dict[str, str]], str]] = [
    ("a label written twice", duplicate_label, "duplicate key"),
    ("a Service selecting nothing", edit_object(
        "Service", PLATFORM,
        lambda d: d["spec"]["selector"].update({"app.kubernetes.io/name": "memoryc-platfrom"}),
    ), "selects 0 Deployments"),
    ("a Deployment whose pods miss its selector", edit_object(
        "Deployment", OPERATOR,
        lambda d: d["spec"]["template"]["metadata"]["labels"].pop("app.kubernetes.io/instance"),
    ), "does not match its pod labels"),
    ("the operator losing patch on secrets", edit_object(
        "ClusterRole", OPERATOR, drop_verb("secrets", "patch"),
    ), "may not patch core/secrets"),
    ("the operator unable to grant pods/log", edit_object(
        "ClusterRole", OPERATOR, drop_verb("pods/log", "watch"),
    ), "cannot grant tenant admins watch core/pods/log"),
    ("a misspelt operator variable", edit_object(
        "Deployment", OPERATOR,
        rename_env("MEMORYC_OPERATOR_MILVUS_URL", "MEMORYC_OPERATOR_MILVUS"),
    ), "is not a memoryc-operator variable"),
    ("a misspelt platform variable", edit_object(
        "Deployment", PLATFORM, rename_env("MEMORYC_EMBEDDING__MODEL_DIR", "MEMORYC_EMBEDDING__MODEL_PATH"),
    ), "is no platform setting"),
    ("a platform variable under its old name", edit_object(
        "Deployment", PLATFORM, rename_env("MEMORYC_EMBEDDING__MODEL_DIR", "MEMORYC_MODEL_DIR"),
    ), "is a setting's old name"),
    ("the wrong operator image", edit_object(
        "Deployment", OPERATOR,
        lambda d: first_container(d).update({"image": "memoryc/operator:latest"}),
    ), "image"),
    ("a probe on an unserved path", edit_object(
        "Deployment", PLATFORM,
        lambda d: first_container(d)["readinessProbe"]["httpGet"].update({"path": "/health"}),
    ), "probe path /health"),
    ("a ServiceMonitor on a port no Service has", edit_object(
        "ServiceMonitor", "memoryc",
        lambda d: d["spec"]["endpoints"][0].update({"port": "metric"}),
    ), "is on no Service"),
    ("a metrics token the platform does not check", edit_object(
        "ServiceMonitor", "memoryc",
        lambda d: d["spec"]["endpoints"][1].update({"authorization": {
            "type": "Bearer", "credentials": {"name": "memoryc-metrics", "key": "token"},
        }}),
    ), "against the platform's MEMORYC_METRICS__TOKEN"),
    ("alert rules lost from the PrometheusRule", edit_object(
        "PrometheusRule", "memoryc", lambda d: d.update({"spec": {"groups": []}}),
    ), "differs from files/alerts.rules.yaml"),
    ("an admission policy that admits kube-system", edit_object(
        "ValidatingAdmissionPolicy", "memoryc-tenant-bounds",
        lambda d: d["spec"]["validations"][0].update({"expression": "true"}),
    ), "'__namespace__': 'kube-system'"),
    ("a missing leader-election Role", lambda rendered: {
        path: re.sub(r"(?s)---\n# Leader election.*?\n---\n", "---\n", text)
        if path.endswith("operator-rbac.yaml") else text
        for path, text in rendered.items()
    }, "missing [('Role'"),
]


def self_test(chart: helm.Chart, facts: CodeFacts, report: Report) -> int:
    """Returns how many of the breaks were caught."""
    scenario = SCENARIOS[0]
    rendered = render(chart, scenario, None)
    clean = Report("self-test")
    check_release(scenario, None, chart, rendered, facts, clean)
    report.check(not clean.failures, f"self-test: the unbroken render fails: {clean.failures}")
    caught = 0
    for description, mutate, expected in MUTATIONS:
        broken = Report(description)
        try:
            check_release(scenario, None, chart, mutate(copy.deepcopy(rendered)), facts, broken)
        except Exception as error:  # noqa: BLE001 - a check crashing is a finding too
            broken.fail(f"crashed: {error!r}")
        caught += report.check(
            any(expected in failure for failure in broken.failures),
            f"self-test: {description} went unnoticed (wanted {expected!r}, got "
            f"{broken.failures[:3]})",
        )
    return caught


# Values the chart must refuse to render, and the words its `fail` must say.
REFUSALS = [
    ("two platform replicas without Redis", {"platform": {"replicas": 2}},
     "platform.replicas > 1 needs redis.url"),
    ("the platform logging in as the operator",
     {"database": {"platform": {"existingSecret": "memoryc-database"}}},
     "must not log in as the operator's role"),
    ("no login for the platform", {"database": {"platform": {"existingSecret": ""}}},
     "needs a PostgreSQL login of its own"),
]


def check_refusals(chart: helm.Chart, report: Report) -> None:
    scenario = SCENARIOS[0]
    for description, overrides, expected in REFUSALS:
        try:
            render(chart, scenario, overrides)
        except helm.HelmError as error:
            report.check(expected in str(error), f"{description}: refused with {error}")
        else:
            report.fail(f"{description}: rendered, but must be refused")


def main() -> int:
    started = time.monotonic()
    print(f"Helm {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__})")
    reports = []
    facts_report = Report("code")
    facts = read_code_facts(facts_report)
    reports.append(facts_report)
    with helm.Chart.load(CHART) as chart:
        crd_report = Report("crds")
        crds = check_crds(chart, crd_report)
        reports.append(crd_report)
        print(f"crds: {', '.join(crds)}")
        for scenario in SCENARIOS:
            report = Report(scenario.name)
            overrides = load_values(scenario)
            if overrides is not None:
                unknown = unknown_keys(overrides, chart.values)
                report.check(not unknown, f"{scenario.values_file}: not in values.yaml: {unknown}")
            infos = lint(scenario, overrides, report)
            try:
                rendered = render(chart, scenario, overrides)
            except helm.HelmError as error:
                report.fail(f"helm render: {error}")
                reports.append(report)
                continue
            release = check_release(scenario, overrides, chart, rendered, facts, report)
            values = scenario.values_file.name if scenario.values_file else "default values"
            print(
                f"{scenario.name} ({values}; release {scenario.release} in {scenario.namespace}):"
                f" lint ok ({infos} info), {len(release.objects)} objects: "
                f"{summary(release.objects)}"
            )
            reports.append(report)
        refusal_report = Report("refusals")
        check_refusals(chart, refusal_report)
        reports.append(refusal_report)
        print(f"refusals: {len(REFUSALS)} values the chart must refuse")
        self_report = Report("self-test")
        caught = self_test(chart, facts, self_report)
        reports.append(self_report)
        print(f"self-test: {caught} of {len(MUTATIONS)} deliberate breaks caught")

    failures = [f"[{r.scope}] {f}" for r in reports for f in r.failures]
    for failure in failures:
        print(f"FAIL {failure}")
    passed = sum(r.passed for r in reports)
    print(f"({time.monotonic() - started:.1f}s)")
    print(f"checks: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
