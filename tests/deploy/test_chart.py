"""The Helm chart: lint, what it renders, hardened pods, credentials, and values it refuses."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest
import yaml

from services.common.settings import PipelineSettings
from services.ingest.settings import IngestSettings
from tests.deploy.support import (
    CHART,
    DASHBOARD,
    RULES,
    Manifest,
    Rendered,
    production_values,
    render,
)

KUBE_VERSION = "v1.35.0"
COMPONENTS = {
    "ingest": (8081, ["ingest"]),
    "sync-portal": (8082, ["sync", "--target", "portal"]),
    "sync-ndxp": (8083, ["sync", "--target", "ndxp"]),
}
CREDENTIAL = re.compile(r"PASSWORD|SECRET|_TOKEN$|API_KEYS")


def _container(deployment: Manifest) -> Manifest:
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one process per pod"
    return containers[0]


def _env(deployment: Manifest) -> dict[str, Manifest]:
    return {e["name"]: e for e in _container(deployment).get("env", [])}


@pytest.mark.parametrize("values_name", ["default", "production"])
def test_helm_lint_finds_nothing_but_info(values_name: str) -> None:
    values = production_values() if values_name == "production" else None
    report = helm.lint(CHART, values, strict=True, kube_version=KUBE_VERSION, namespace="govsync")
    assert report["errors"] == []
    worse_than_info = [m for m in report["messages"] if m["severity"] >= 2]
    assert worse_than_info == []


def test_default_values_render_the_three_components(default_render: Rendered) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in default_render.objects)
    per_component = [
        (kind, f"govsync-{c}")
        for c in COMPONENTS
        for kind in ("ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service")
    ]
    expected = [*per_component, ("ConfigMap", "govsync-common"), ("ServiceAccount", "govsync")]
    assert kinds == sorted(expected)


def test_production_values_add_keda_and_monitoring(production_render: Rendered) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in production_render.objects}
    assert {("ScaledObject", f"govsync-{c}") for c in COMPONENTS} <= names
    assert ("ServiceMonitor", "govsync") in names
    assert ("PrometheusRule", "govsync") in names
    assert ("ConfigMap", "govsync-dashboard") in names
    assert production_render.of_kind("HorizontalPodAutoscaler") == []
    for component in COMPONENTS:
        deployment = production_render.named("Deployment", f"govsync-{component}")
        assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    # The scores service is the one writer of its database: one replica, never two at once.
    scores = production_render.named("Deployment", "govsync-scores")["spec"]
    assert (scores["replicas"], scores["strategy"]) == (1, {"type": "Recreate"})


def test_every_deployment_runs_its_own_subcommand_on_its_port(any_render: Rendered) -> None:
    for component, (port, args) in COMPONENTS.items():
        deployment = any_render.named("Deployment", f"govsync-{component}")
        container = _container(deployment)
        assert container["args"] == args
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        service = any_render.named("Service", f"govsync-{component}")
        assert service["spec"]["ports"][0]["port"] == port
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == component
        config = any_render.named("ConfigMap", f"govsync-{component}")
        assert config["data"]["GOVSYNC_HTTP_PORT"] == str(port)


def test_pods_are_hardened(any_render: Rendered) -> None:
    for deployment in any_render.of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert [c["topologyKey"] for c in pod["topologySpreadConstraints"]] == [
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        ]
        container = _container(deployment)
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["runAsUser"] >= 10000
        for bound in ("requests", "limits"):
            assert set(container["resources"][bound]) == {"cpu", "memory"}
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # noqa: S108
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp


def test_pods_roll_when_their_configuration_changes(default_render: Rendered) -> None:
    changed = render({"config": {"logLevel": "DEBUG"}})
    for component in COMPONENTS:
        name = f"govsync-{component}"
        before = default_render.named("Deployment", name)["spec"]["template"]["metadata"]
        after = changed.named("Deployment", name)["spec"]["template"]["metadata"]
        assert re.fullmatch(r"[0-9a-f]{64}", before["annotations"]["checksum/config"])
        assert before["annotations"]["checksum/config"] != after["annotations"]["checksum/config"]


def test_image_is_the_app_version_unless_pinned(
    default_render: Rendered, production_render: Rendered
) -> None:
    for deployment in default_render.of_kind("Deployment"):
        assert _container(deployment)["image"] == "ghcr.io/govsync/govsync:0.1.0"
    digest = production_values()["image"]["digest"]
    for deployment in production_render.of_kind("Deployment"):
        assert _container(deployment)["image"].endswith(f":0.1.0@{digest}")


def test_credentials_come_only_from_existing_secrets(any_render: Rendered) -> None:
    assert any_render.of_kind("Secret") == [], "the chart never creates a Secret"
    for config in any_render.of_kind("ConfigMap"):
        if config["metadata"]["name"] == "govsync-dashboard":
            continue
        assert not [key for key in config["data"] if CREDENTIAL.search(key)]
    for deployment in any_render.of_kind("Deployment"):
        for name, entry in _env(deployment).items():
            if CREDENTIAL.search(name):
                assert set(entry) == {"name", "valueFrom"}
                assert set(entry["valueFrom"]) == {"secretKeyRef"}


def test_each_component_gets_only_its_own_credentials(production_render: Rendered) -> None:
    common = {"GOVSYNC_KAFKA_SASL_PASSWORD", "GOVSYNC_ADMIN_TOKEN"}
    expected = {
        "ingest": common
        | {"GOVSYNC_API_KEYS", "GOVSYNC_DVCQG_ACCOUNTS", "GOVSYNC_DVCQG_SESSION_SECRET"},
        "sync-portal": common | {"GOVSYNC_PORTAL_PASSWORD"},
        "sync-ndxp": common | {"GOVSYNC_NDXP_CLIENT_SECRET"},
    }
    for component, names in expected.items():
        env = _env(production_render.named("Deployment", f"govsync-{component}"))
        assert set(env) == names
    sasl = _env(production_render.named("Deployment", "govsync-ingest"))[
        "GOVSYNC_KAFKA_SASL_PASSWORD"
    ]
    assert sasl["valueFrom"]["secretKeyRef"] == {"name": "govsync-kafka-sasl", "key": "password"}
    ingest = _env(production_render.named("Deployment", "govsync-ingest"))
    assert ingest["GOVSYNC_DVCQG_SESSION_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "govsync-ingest-dvcqg",
        "key": "session-secret",
    }


def test_kafka_sasl_ssl_settings_and_ca_mount(production_render: Rendered) -> None:
    data = production_render.named("ConfigMap", "govsync-common")["data"]
    assert data["GOVSYNC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["GOVSYNC_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["GOVSYNC_KAFKA_SSL_CAFILE"] == "/etc/govsync/kafka-tls/ca.crt"
    assert data["GOVSYNC_TRUST_BUNDLE"] == "/etc/govsync/trust/ca-bundle.pem"
    assert data["GOVSYNC_CREATE_TOPICS"] == "false"
    assert data["GOVSYNC_TOPIC_PARTITIONS"] == "12"
    assert data["GOVSYNC_TOPIC_REPLICATION_FACTOR"] == data["GOVSYNC_REPLICATION_FACTOR"] == "3"
    for deployment in production_render.of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "kafka-tls")
        assert volume["secret"]["secretName"] == "govsync-kafka-tls"
        mount = next(m for m in _container(deployment)["volumeMounts"] if m["name"] == "kafka-tls")
        assert mount == {
            "name": "kafka-tls",
            "mountPath": "/etc/govsync/kafka-tls",
            "readOnly": True,
        }


def test_sync_targets_get_their_own_destination_settings(production_render: Rendered) -> None:
    portal = production_render.named("ConfigMap", "govsync-sync-portal")["data"]
    ndxp = production_render.named("ConfigMap", "govsync-sync-ndxp")["data"]
    assert portal["GOVSYNC_PORTAL_URL"] == "https://dvcqg-adapter.gov.vn"
    assert portal["GOVSYNC_PORTAL_MADONVI"] == "000.00.10.H29"
    assert not [k for k in portal if k.startswith("GOVSYNC_NDXP_")]
    assert ndxp["GOVSYNC_NDXP_CLIENT_ID"] == "govsync-h29"
    assert not [k for k in ndxp if k.startswith("GOVSYNC_PORTAL_")]


@pytest.mark.parametrize(
    ("values", "gone"),
    [
        pytest.param({"ingest": {"enabled": False}}, "govsync-ingest", id="ingest"),
        pytest.param({"sync": {"portal": {"enabled": False}}}, "govsync-sync-portal", id="portal"),
        pytest.param({"sync": {"ndxp": {"enabled": False}}}, "govsync-sync-ndxp", id="ndxp"),
    ],
)
def test_each_component_can_be_turned_off(values: dict[str, Any], gone: str) -> None:
    rendered = render(values)
    names = {o["metadata"]["name"] for o in rendered.objects}
    assert gone not in names
    assert len(rendered.of_kind("Deployment")) == 2


def test_network_policies_allow_only_what_each_component_needs(
    production_render: Rendered,
) -> None:
    def egress_cidrs(name: str) -> set[str]:
        policy = production_render.named("NetworkPolicy", name)
        return {
            peer["ipBlock"]["cidr"]
            for rule in policy["spec"]["egress"]
            for peer in rule.get("to", [])
            if "ipBlock" in peer
        }

    kafka, portal, ndxp = "10.20.0.0/24", "203.0.113.0/28", "198.51.100.0/28"
    assert egress_cidrs("govsync-ingest") == {kafka}
    assert egress_cidrs("govsync-sync-portal") == {kafka, portal}
    assert egress_cidrs("govsync-sync-ndxp") == {kafka, ndxp}
    for component in COMPONENTS:
        policy = production_render.named("NetworkPolicy", f"govsync-{component}")
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        assert all("to" in rule for rule in policy["spec"]["egress"]), "no open egress"
        sources = len(policy["spec"]["ingress"])
        assert sources == (2 if component == "ingest" else 1), "monitoring (+ callers for ingest)"


def test_default_network_policy_admits_no_caller_until_told() -> None:
    policy = render().named("NetworkPolicy", "govsync-ingest")
    namespaces = [
        peer["namespaceSelector"]["matchLabels"]
        for rule in policy["spec"]["ingress"]
        for peer in rule["from"]
    ]
    assert namespaces == [{"kubernetes.io/metadata.name": "monitoring"}]


def test_autoscalers_never_exceed_the_partitions(production_render: Rendered) -> None:
    partitions = production_values()["kafka"]["topicPartitions"]
    for scaled in production_render.of_kind("ScaledObject"):
        spec = scaled["spec"]
        assert spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
        trigger = spec["triggers"][0]
        assert trigger["type"] == "prometheus"
        assert "consumer_lag" in trigger["metadata"]["query"]
        assert 'namespace="govsync"' in trigger["metadata"]["query"]


def test_hpa_on_cpu_when_asked() -> None:
    rendered = render({"ingest": {"autoscaling": {"enabled": True, "maxReplicas": 4}}})
    hpa = rendered.named("HorizontalPodAutoscaler", "govsync-ingest")
    assert hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["scaleTargetRef"]["name"] == "govsync-ingest"
    assert "replicas" not in rendered.named("Deployment", "govsync-ingest")["spec"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            {"ingest": {"keda": {"enabled": True, "maxReplicaCount": 7}}},
            "exceeds kafka.topicPartitions",
            id="keda-beyond-partitions",
        ),
        pytest.param(
            {"sync": {"ndxp": {"autoscaling": {"enabled": True, "maxReplicas": 9}}}},
            "exceeds kafka.topicPartitions",
            id="hpa-beyond-partitions",
        ),
        pytest.param(
            {"ingest": {"autoscaling": {"enabled": True}, "keda": {"enabled": True}}},
            "exclude each other",
            id="hpa-and-keda",
        ),
        pytest.param(
            {"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"username": "u"}}},
            "kafka.sasl.existingSecret",
            id="sasl-without-secret",
        ),
        pytest.param(
            {"kafka": {"tls": {"existingSecret": "ca"}}},
            "not SSL or SASL_SSL",
            id="tls-secret-on-plaintext",
        ),
        pytest.param(
            {"trustBundle": {"existingConfigMap": "a", "existingSecret": "b"}},
            "not both",
            id="two-trust-bundles",
        ),
        pytest.param(
            {"kafka": {"securityProtocol": "SSL", "tls": {"existingSecret": "t", "certKey": "c"}}},
            "go together",
            id="cert-without-key",
        ),
    ],
)
def test_values_that_could_never_run_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


def test_service_monitor_names_jobs_for_the_alerts(production_render: Rendered) -> None:
    monitor = production_render.named("ServiceMonitor", "govsync")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    (relabel,) = endpoint["relabelings"]
    assert relabel["targetLabel"] == "job"
    assert relabel["replacement"] == "govsync-$1"


def test_prometheus_rule_carries_the_rule_files_unchanged(production_render: Rendered) -> None:
    rule = production_render.named("PrometheusRule", "govsync")
    from_files: list[Any] = []
    for path in RULES:
        from_files.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["groups"])
    key = lambda group: group["name"]  # noqa: E731
    assert sorted(rule["spec"]["groups"], key=key) == sorted(from_files, key=key)


def test_dashboard_ships_as_a_labelled_config_map(production_render: Rendered) -> None:
    config = production_render.named("ConfigMap", "govsync-dashboard")
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["annotations"]["grafana_folder"] == "govsync"
    shipped = json.loads(config["data"]["govsync.json"])
    assert shipped == json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_notes_point_the_operator_onwards(default_render: Rendered) -> None:
    assert "docs/operations.md" in default_render.notes
    assert "kubectl -n govsync get pods" in default_render.notes
    assert "WARNINGS" in default_render.notes
    assert "sync.portal.existingSecret is empty" in default_render.notes


def test_signer_bindings_reach_ingest_as_its_setting() -> None:
    bindings = {
        "000.00.10.H29": [
            {"organisation": "UBND tỉnh Thử Nghiệm", "issuer_sha256": "ab" * 32},
            {"organisation_identifier": "MST:0101234567"},
        ]
    }
    rendered = render({"ingest": {"signerBindings": bindings}})
    data = rendered.named("ConfigMap", "govsync-ingest")["data"]
    parsed = IngestSettings(signer_bindings=json.loads(data["GOVSYNC_SIGNER_BINDINGS"]))
    assert parsed.signer_bindings["000.00.10.H29"][0].organisation == "UBND tỉnh Thử Nghiệm"
    assert "GOVSYNC_SIGNER_BINDINGS" not in render().named("ConfigMap", "govsync-ingest")["data"]


def test_label_agencies_are_the_served_and_listed_well_formed_codes() -> None:
    rendered = render(
        {
            "config": {
                "ownAgencies": ["000.00.10.H29", "H29.12.AB.C01"],
                "labelAgencies": ["000.00.30.H01"],
            }
        }
    )
    common = rendered.named("ConfigMap", "govsync-common")["data"]
    assert common["GOVSYNC_LABEL_AGENCIES"] == "000.00.10.H29,000.00.30.H01"
    assert PipelineSettings(label_agencies=common["GOVSYNC_LABEL_AGENCIES"]).label_agencies == {
        "000.00.10.H29",
        "000.00.30.H01",
    }
    assert "GOVSYNC_LABEL_AGENCIES" not in render().named("ConfigMap", "govsync-common")["data"]


def test_scores_reads_its_database_from_values_and_its_password_from_a_secret(
    production_render: Rendered,
) -> None:
    deployment = production_render.named("Deployment", "govsync-scores")
    container = _container(deployment)
    assert container["args"] == ["scores"]
    assert container["ports"] == [{"name": "http", "containerPort": 8084, "protocol": "TCP"}]
    password = _env(deployment)["GOVSYNC_SCORES_DATABASE_PASSWORD"]["valueFrom"]
    assert password == {"secretKeyRef": {"name": "govsync-scores-db", "key": "password"}}
    config = production_render.named("ConfigMap", "govsync-scores")["data"]
    assert config["GOVSYNC_SCORES_DATABASE_URL"] == (
        "postgresql://govsync_scores@pg-govsync.db.internal:5432/govsync_scores?sslmode=verify-full"
    )
    assert config["GOVSYNC_SCORES_AGENCY_CROSSWALK"] == "/etc/govsync/scores/crosswalk.csv"
    assert config["GOVSYNC_SCORES_AGENCIES"] == '["000.00.10.H29","000.00.12.H29"]'
    assert {"name": "scores-files", "mountPath": "/etc/govsync/scores", "readOnly": True} in (
        container["volumeMounts"]
    )
    assert production_render.named("Service", "govsync-scores")["spec"]["ports"][0]["port"] == 8084
    policy = production_render.named("NetworkPolicy", "govsync-scores")["spec"]
    egress = [p for rule in policy["egress"] for p in rule.get("to", [])]
    assert {"ipBlock": {"cidr": "10.20.5.10/32"}} in egress
    assert len(policy["ingress"]) == 2, "monitoring and the pages' readers"
    monitor = production_render.named("ServiceMonitor", "govsync")["spec"]["selector"]
    assert "scores" in monitor["matchExpressions"][0]["values"]


def test_scores_without_a_database_host_does_not_render() -> None:
    with pytest.raises(Exception, match=r"scores\.database\.host"):
        render({"scores": {"enabled": True}})


def test_ingest_hardening_settings_reach_the_service(
    production_render: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMaps' variables, read by the service's own settings class."""
    for name in ("govsync-common", "govsync-ingest"):
        for key, value in production_render.named("ConfigMap", name)["data"].items():
            monkeypatch.setenv(key, value)
    settings = IngestSettings()
    assert settings.trusted_proxies == ("10.244.0.0/16",)
    assert settings.source_agencies == {
        "urn:vn:gov:dvc:h29": ["000.00.10.H29", "000.00.12.H29"],
        "urn:vn:gov:edoc:h29": ["000.00.10.H29", "000.00.12.H29"],
    }


def test_scores_reconcile_schedule_takes_the_portal_settings_and_egress() -> None:
    rendered = render(
        {
            "scores": {
                "enabled": True,
                "database": {"host": "pg.internal"},
                "reconcile": {
                    "schedule": True,
                    "lookupsPerSecond": 5,
                    "departments": {"000.00.10.H29": "6a1f0b5e-0000-4000-8000-000000000001"},
                },
            },
            "sync": {
                "portal": {
                    "url": "https://adapter.example.vn",
                    "username": "govsync",
                    "existingSecret": "portal-login",
                }
            },
            "networkPolicy": {"portal": {"peers": [{"ipBlock": {"cidr": "10.30.0.0/24"}}]}},
        }
    )
    config = rendered.named("ConfigMap", "govsync-scores")["data"]
    assert config["GOVSYNC_RECONCILE_SCHEDULE"] == "true"
    assert config["GOVSYNC_RECONCILE_LOOKUPS_PER_SECOND"] == "5"
    assert json.loads(config["GOVSYNC_RECONCILE_DEPARTMENTS"]) == {
        "000.00.10.H29": "6a1f0b5e-0000-4000-8000-000000000001"
    }
    assert config["GOVSYNC_PORTAL_URL"] == "https://adapter.example.vn"
    env = _env(rendered.named("Deployment", "govsync-scores"))
    assert env["GOVSYNC_PORTAL_PASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "portal-login", "key": "password"}
    }
    policy = rendered.named("NetworkPolicy", "govsync-scores")["spec"]
    egress = [p for rule in policy["egress"] for p in rule.get("to", [])]
    assert {"ipBlock": {"cidr": "10.30.0.0/24"}} in egress
    # Off (the default): no portal settings, no egress to it.
    quiet = render({"scores": {"enabled": True, "database": {"host": "pg.internal"}}})
    assert "GOVSYNC_RECONCILE_SCHEDULE" not in quiet.named("ConfigMap", "govsync-scores")["data"]
    quiet_egress = quiet.named("NetworkPolicy", "govsync-scores")["spec"]["egress"]
    assert all(443 not in [p["port"] for p in rule["ports"]] for rule in quiet_egress)


def test_shared_sources_reach_ingest_as_its_setting() -> None:
    groups = [["urn:vn:gov:dvc:h29", "urn:vn:gov:dvc:h29-mirror"]]
    data = render({"ingest": {"sharedSources": groups}}).named("ConfigMap", "govsync-ingest")[
        "data"
    ]
    parsed = IngestSettings(shared_sources=json.loads(data["GOVSYNC_SHARED_SOURCES"]))
    assert parsed.shared_sources == groups
    assert "GOVSYNC_SHARED_SOURCES" not in render().named("ConfigMap", "govsync-ingest")["data"]
