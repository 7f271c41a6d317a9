"""The Kubernetes manifests (deploy/): each overlay renders with kustomize, every
resource is valid for the API server, and the pieces fit together: probes, limits,
selectors, scaling bounded by the partitions, the Kafka the settings point at."""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest

from services.feedback.settings import FeedbackSettings
from services.intake.settings import IntakeSettings
from services.notifier.settings import NotifierSettings
from services.router.settings import RouterSettings

from deskstream import topics
from tests.deploy.manifests import DEPLOY, OVERLAYS, ROOT, build, of_kind, problems, render

SERVICES = {"intake": 8080, "router": 8081, "notifier": 8082, "feedback": 8083}
# Made in the cluster, never in the repository: ours (deploy/README.md, "Secrets") and
# the ones Strimzi's operators keep for the KafkaUser and the cluster CA.
EXTERNAL_SECRETS = {"deskstream-secrets", "deskstream-roster", "deskstream-cluster-ca-cert", "deskstream-keda",
                    *(topics.app_id(service) for service in topics.TABLES)}
SECRET_SETTINGS = {"CHAT_SESSION_SECRET", "ROUTER_SESSION_SECRET", "NOTIFIER_OPS_TOKEN", "FEEDBACK_SURVEY_SECRET",
                   "TWILIO_AUTH_TOKEN", "SMTP_PASSWORD", "IMAP_PASSWORD", "KAFKA_SASL_PASSWORD"}
# Hops whose topic has one key: one partition does all their work whatever the
# number of workers, so their lag is no reason to add one.
SINGLE_KEY_TOPICS = {topics.ROUTER_DISPATCH, topics.SURGE_WATCH}
# Not autoscaled: its rate limits are per worker, and its send backlog is not lag.
FIXED_COUNT = {"notifier"}
# What a plain cluster with the Strimzi operator knows (dev needs nothing else).
BUILT_IN_OR_STRIMZI = {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                       "Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}


def settings(resources: tuple[dict[str, Any], ...], service: str) -> dict[str, str]:
    """The environment a service's container gets from its ConfigMaps."""
    deployment = of_kind(resources, "Deployment")[service]
    config_maps = of_kind(resources, "ConfigMap")
    env: dict[str, str] = {}
    for source in deployment["spec"]["template"]["spec"]["containers"][0].get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    return env


def hops() -> dict[str, set[tuple[str, str]]]:
    """(consumer group, topic) of every hop, read from the services' app modules."""
    found: dict[str, set[tuple[str, str]]] = {}
    for service in SERVICES:
        source = (ROOT / "services" / service / "app.py").read_text()
        for name, constant in re.findall(r'@pipeline\.processor\("([\w-]+)", source=([A-Z_]+)', source):
            found.setdefault(service, set()).add((f"{topics.app_id(service)}.{name}", getattr(topics, constant)))
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_resource_is_valid_for_the_api_server(overlay: str) -> None:
    found = [problem for resource in render(overlay) for problem in problems(resource)]
    assert found == []


def test_the_validation_can_fail() -> None:
    resources = render("prod")
    deployment = copy.deepcopy(of_kind(resources, "Deployment")["intake"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    topic = copy.deepcopy(of_kind(resources, "KafkaTopic")["tickets.events"])
    topic["spec"]["partitions"] = "12"
    scaler = copy.deepcopy(of_kind(resources, "ScaledObject")["router"])
    scaler["spec"]["maxReplicas"] = 12
    assert any("readinesProbe" in problem for problem in problems(deployment))
    assert any("partitions" in problem for problem in problems(topic))
    assert any("maxReplicas" in problem for problem in problems(scaler))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_is_a_probed_limited_non_root_deployment_behind_a_service(overlay: str) -> None:
    resources = render(overlay)
    deployments, services, budgets = (of_kind(resources, kind) for kind in ("Deployment", "Service", "PodDisruptionBudget"))
    assert set(deployments) == set(SERVICES)
    for name, port in SERVICES.items():
        pod = deployments[name]["spec"]["template"]
        labels = pod["metadata"]["labels"]
        container = pod["spec"]["containers"][0]
        assert container["args"] == ["run", name]
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz/http", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and "memory" in container["resources"]["limits"]
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        # A worker stops within 10 s of SIGTERM (deskstream/faustapp.py), after the preStop pause.
        assert pod["spec"]["terminationGracePeriodSeconds"] >= 10 + 5
        assert deployments[name]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        for selector in (services[name]["spec"]["selector"], budgets[name]["spec"]["selector"]["matchLabels"],
                         deployments[name]["spec"]["selector"]["matchLabels"]):
            assert selector.items() <= labels.items(), f"{name}: {selector} does not select its pods"
        assert services[name]["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_come_from_the_cluster_never_from_the_manifests(overlay: str) -> None:
    resources = render(overlay)
    assert not of_kind(resources, "Secret"), "no Secret is rendered from the repository"
    for name, deployment in of_kind(resources, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        env = pod["containers"][0].get("env", [])
        for variable in env:
            if variable["name"] in SECRET_SETTINGS:
                assert "secretKeyRef" in variable.get("valueFrom", {}), f"{name}: {variable['name']} written in clear"
        referenced = {variable["valueFrom"]["secretKeyRef"]["name"] for variable in env if "secretKeyRef" in variable.get("valueFrom", {})}
        referenced |= {volume["secret"]["secretName"] for volume in pod.get("volumes", []) if "secret" in volume}
        assert referenced <= EXTERNAL_SECRETS, name
        assert not SECRET_SETTINGS & settings(resources, name).keys(), f"{name}: a secret in a ConfigMap"


SETTINGS = {"intake": IntakeSettings, "router": RouterSettings, "notifier": NotifierSettings, "feedback": FeedbackSettings}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_accepts_the_settings_its_deployment_gives_it(overlay: str, tmp_path: Path) -> None:
    """The services' own settings classes read what the manifests set (secrets as the
    cluster would give them, mounted files at stand-in paths): a setting the code
    refuses would otherwise surface as a crash-looping pod."""
    resources = render(overlay)
    for name, deployment in of_kind(resources, "Deployment").items():
        env = settings(resources, name)
        for variable in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
            env[variable["name"]] = "s" * 64  # a signing secret or a provider credential
        for key, value in list(env.items()):
            if value.startswith("/etc/deskstream/"):  # a mounted Secret: the Kafka password, the CA, the roster
                stand_in = tmp_path / Path(value).name
                stand_in.write_text(ROSTER.read_text() if key == "ROUTER_ROSTER_PATH" else "stand-in\n")
                env[key] = str(stand_in)
        SETTINGS[name].from_env(env)


ROSTER = ROOT / "services" / "router" / "roster.json"


def test_every_setting_in_the_config_maps_is_one_the_code_reads() -> None:
    code = " ".join(path.read_text() for path in [*ROOT.glob("deskstream/*.py"), *ROOT.glob("services/*/*.py")])
    for overlay in OVERLAYS:
        resources = render(overlay)
        read = {source["configMapRef"]["name"] for deployment in of_kind(resources, "Deployment").values()
                for source in deployment["spec"]["template"]["spec"]["containers"][0].get("envFrom", [])}
        for config_map in of_kind(resources, "ConfigMap").values():
            if config_map["metadata"]["name"] not in read:
                continue  # KEDA's (its Kafka user's name), not a service's settings
            for key in config_map["data"]:
                assert f'"{key}"' in code, f"{config_map['metadata']['name']}: {key} is read by nothing"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scaling_is_bounded_by_the_partitions(overlay: str) -> None:
    resources = render(overlay)
    kafka_topics = of_kind(resources, "KafkaTopic").values()
    for name in SERVICES:
        env = settings(resources, name)
        partitions = int(env["KAFKA_TOPIC_PARTITIONS"])
        assert {topic["spec"]["partitions"] for topic in kafka_topics} == {partitions}
        assert {topic["spec"]["replicas"] for topic in kafka_topics} == {int(env["KAFKA_REPLICATION_FACTOR"])}
        deployment = of_kind(resources, "Deployment")[name]
        autoscaler = of_kind(resources, "HorizontalPodAutoscaler").get(name)
        scaler = of_kind(resources, "ScaledObject").get(name)
        if name in FIXED_COUNT:
            assert autoscaler is None and scaler is None, f"{name} runs a fixed count"
            assert 1 <= deployment["spec"]["replicas"] <= partitions
            continue
        assert (autoscaler is None) != (scaler is None), f"{name}: one autoscaler, an HPA or a KEDA ScaledObject"
        assert "replicas" not in deployment["spec"], f"{name}: the autoscaler owns the count; an apply must not reset it"
        if autoscaler is not None:
            low, high, target = autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"], autoscaler["spec"]["scaleTargetRef"]
        else:
            low, high, target = scaler["spec"]["minReplicaCount"], scaler["spec"]["maxReplicaCount"], scaler["spec"]["scaleTargetRef"]
        assert target["name"] == name
        assert 1 <= low <= high <= partitions, name


def test_prod_scales_each_service_on_the_lag_of_its_own_hops() -> None:
    resources = render("prod")
    expected = hops()
    assert expected["router"] and expected["notifier"], "the hops were found in the app modules"
    assert set(of_kind(resources, "ScaledObject")) == set(SERVICES) - FIXED_COUNT
    for name, scaler in of_kind(resources, "ScaledObject").items():
        triggers = scaler["spec"]["triggers"]
        found = {(trigger["metadata"]["consumerGroup"], trigger["metadata"]["topic"]) for trigger in triggers}
        assert found == {(group, topic) for group, topic in expected[name] if topic not in SINGLE_KEY_TOPICS}, name
        namespace = scaler["metadata"]["namespace"]
        for trigger in triggers:
            assert trigger["type"] == "kafka"
            host = trigger["metadata"]["bootstrapServers"].rsplit(":", 1)[0]
            assert host.endswith(f".{namespace}.svc"), f"{host}: KEDA resolves it from its own namespace"
            assert trigger["metadata"]["allowIdleConsumers"] == "false", "never more workers than partitions"
            assert trigger["metadata"]["bootstrapServers"] == settings(resources, name)["KAFKA_BOOTSTRAP_SERVERS"]
            assert trigger["authenticationRef"]["name"] in of_kind(resources, "TriggerAuthentication")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_services_reach_the_kafka_the_overlay_runs(overlay: str) -> None:
    resources = render(overlay)
    (cluster,) = of_kind(resources, "Kafka").values()
    name = cluster["metadata"]["name"]
    listeners = {listener["port"]: listener for listener in cluster["spec"]["kafka"]["listeners"]}
    for service in SERVICES:
        env = settings(resources, service)
        host, port = env["KAFKA_BOOTSTRAP_SERVERS"].rsplit(":", 1)
        assert host in (f"{name}-kafka-bootstrap", f"{name}-kafka-bootstrap.{cluster['metadata']['namespace']}.svc")
        listener = listeners[int(port)]
        protocol = env["KAFKA_SECURITY_PROTOCOL"]
        assert protocol.endswith("SSL") == listener["tls"]
        scram = listener.get("authentication", {}).get("type") == "scram-sha-512"
        assert protocol.startswith("SASL") == scram
        if scram:
            assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
            assert env["KAFKA_SASL_USERNAME"] in of_kind(resources, "KafkaUser")
    for kind in ("KafkaTopic", "KafkaNodePool", "KafkaUser"):
        for resource in of_kind(resources, kind).values():
            assert resource["metadata"]["labels"]["strimzi.io/cluster"] == name, f"{kind} {resource['metadata']['name']}"
    replicas = sum(pool["spec"]["replicas"] for pool in of_kind(resources, "KafkaNodePool").values() if "broker" in pool["spec"]["roles"])
    assert int(settings(resources, "intake")["KAFKA_REPLICATION_FACTOR"]) <= replicas


def test_dev_needs_no_operator_but_strimzi() -> None:
    assert {resource["kind"] for resource in render("dev")} <= BUILT_IN_OR_STRIMZI


def test_the_shared_attachments_component_gives_intake_a_shared_volume(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{os.path.relpath(DEPLOY / 'overlays' / 'prod', tmp_path)}]\n"
        f"components: [{os.path.relpath(DEPLOY / 'components' / 'shared-attachments', tmp_path)}]\n"
    )
    resources = build(tmp_path, "--load-restrictor", "LoadRestrictionsNone")
    assert [problem for resource in resources for problem in problems(resource)] == []
    (claim,) = of_kind(resources, "PersistentVolumeClaim").values()
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    volumes = of_kind(resources, "Deployment")["intake"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}} in volumes


def test_prometheus_scrapes_every_service() -> None:
    resources = render("prod")
    (monitor,) = of_kind(resources, "ServiceMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["path"] == "/metrics"
    for name, service in of_kind(resources, "Service").items():
        assert selector.items() <= service["metadata"]["labels"].items(), name
        assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}


def test_the_overlays_are_what_the_readme_deploys() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for overlay in OVERLAYS:
        assert f"kubectl apply -k deploy/overlays/{overlay}" in readme
