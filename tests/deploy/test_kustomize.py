"""The Kubernetes manifests in deploy/, checked offline.

Without any tool: every kustomization's paths resolve, every file is used, the config is a valid gateway
config and the example Secret holds placeholders only. With `kubectl kustomize` (kubectl >= 1.22):
each overlay is rendered and checked against the Kubernetes schemas (kubernetes-validate, strict) and
against the gateway itself: the rendered config and the container's environment load with the gateway's
own settings loader, the probe and scrape paths answer 200 from a gateway built from that config, and
every selector, port and mount lines up with the container.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pytest_aiohttp import AiohttpClient

from gateway.__main__ import main as gateway_cli
from gateway.app import create_app
from gateway.settings import Settings, load_settings
from gateway.store.factory import open_store
from tests.deploy import REPO, find_executable, missing_tool

DEPLOY = REPO / "deploy"
BASE = DEPLOY / "base"
OVERLAYS = ("development", "production")
KUSTOMIZE_DIRS = (BASE, *(DEPLOY / "overlays" / name for name in OVERLAYS))

# Oldest Kubernetes we claim to support; the newest schema kubernetes-validate ships is checked too.
OLDEST_KUBERNETES = "1.29"
# Custom resources kubernetes-validate has no schema for; their fields are asserted by hand below.
CUSTOM_RESOURCES = {("monitoring.coreos.com/v1", "ServiceMonitor")}

GATEWAY = "auth-gateway"  # the Deployment, Service, HPA, PDB, NetworkPolicy and ServiceMonitor
CONTAINER = "gateway"
SECRET = "auth-gateway-vendor-secrets"
SECRET_MOUNT = PurePosixPath("/var/run/secrets/gateway")
PLACEHOLDER = "REPLACE_ME"
POD_TMP = "/tmp"  # noqa: S108 - the path mounted in the pod, not a file these tests write
COMMON_LABELS = {
    "app.kubernetes.io/name": "auth-gateway",
    "app.kubernetes.io/part-of": "auth-gateway",
    "app.kubernetes.io/managed-by": "kustomize",
}
# gateway/api/server.py stops its runners with shutdown_timeout_s (default 10): in-flight requests get that long.
GATEWAY_SHUTDOWN_BOUND_S = 10
REDIS_DEFAULT_PORTS = {
    "redis": 6379,
    "rediss": 6379,
    "redis+sentinel": 26379,
    "redis+cluster": 6379,
}

Doc = dict[str, Any]


# --- offline: the files themselves -------------------------------------------------------------------


def load_yaml_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def kustomization(directory: Path) -> Doc:
    (doc,) = load_yaml_docs(directory / "kustomization.yaml")
    assert doc["kind"] == "Kustomization", directory
    return doc


def referenced_paths(directory: Path) -> list[Path]:
    """Every file or directory a kustomization names: resources, patches and generator files."""
    spec = kustomization(directory)
    names = list(spec.get("resources", []))
    names += [patch["path"] for patch in spec.get("patches", []) if "path" in patch]
    for generator in spec.get("configMapGenerator", []) + spec.get("secretGenerator", []):
        names += [entry.split("=", 1)[-1] for entry in generator.get("files", [])]
    return [(directory / name).resolve() for name in names]


def base_config() -> Doc:
    config = yaml.safe_load((BASE / "config.yaml").read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def example_secret() -> Doc:
    (secret,) = load_yaml_docs(BASE / "secret.example.yaml")
    return secret


@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS, ids=lambda d: str(d.relative_to(DEPLOY)))
def test_every_kustomization_path_resolves_and_every_manifest_parses(directory: Path) -> None:
    """Each path a kustomization names exists, and each manifest it names is Kubernetes YAML."""
    for path in referenced_paths(directory):
        assert path.exists(), f"{directory.relative_to(REPO)} names {path}, which does not exist"
        if path.is_dir():
            assert (path / "kustomization.yaml").is_file(), f"{path} is not a kustomization"
        elif path.name != "config.yaml":  # the gateway's own config, shipped as a ConfigMap
            docs = load_yaml_docs(path)
            assert docs, f"{path} holds no document"
            for doc in docs:
                assert {"apiVersion", "kind", "metadata"} <= doc.keys(), f"{path}: {doc}"


@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS, ids=lambda d: str(d.relative_to(DEPLOY)))
def test_no_manifest_is_left_out_of_its_kustomization(directory: Path) -> None:
    """Every YAML file beside a kustomization.yaml is one it uses, so nothing silently goes undeployed."""
    used = set(referenced_paths(directory)) | {(directory / "kustomization.yaml").resolve()}
    files = {p.resolve() for p in directory.iterdir() if p.suffix in (".yaml", ".yml")}
    assert sorted(str(p.relative_to(REPO)) for p in files - used) == []


SEED_KINDS = (
    "top:yunos.aiot.thirdminiapp.auth.get",
    "top:taobao.ailab.aicloud.top.auth.get",
    "top:alibaba.ailabs.iot.device.inside.checkbind.invoke",
    "tencent-iot:AppGetTokenByWeiXin",
)


def test_config_is_a_valid_gateway_config_using_every_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/base/config.yaml loads with the gateway's own loader and configures the four seed
    calls (the OAuth code exchange is installed too, but a deployment adds it when it needs it)."""
    config_text = (BASE / "config.yaml").read_text(encoding="utf-8")
    settings = load_gateway_settings(
        config_text, example_secret()["stringData"], {}, tmp_path, monkeypatch
    )
    assert sorted(p.kind for p in settings.providers.values()) == sorted(SEED_KINDS)
    assert settings.clients, "the example should show how a calling app is configured"


def test_example_secret_holds_placeholders_for_exactly_the_files_the_config_reads() -> None:
    """The example Secret has one REPLACE_ME entry per app_secret_file in the config, and no real value."""
    secret = example_secret()
    assert secret["metadata"]["name"] == SECRET
    assert "data" not in secret, "base64 `data` hides what is in it: use stringData placeholders"
    values = secret["stringData"]
    assert {name: value for name, value in values.items() if value != PLACEHOLDER} == {}
    files = [PurePosixPath(p["app_secret_file"]) for p in base_config()["providers"].values()]
    assert {f.parent for f in files} == {SECRET_MOUNT}
    assert sorted(f.name for f in files) == sorted(values)


def test_example_client_key_hash_matches_no_key() -> None:
    """The example client's api_key_sha256 is the all-zero placeholder, which no API key hashes to."""
    hashes = {name: c["api_key_sha256"] for name, c in base_config()["clients"].items()}
    assert {name: h for name, h in hashes.items() if h != "0" * 64} == {}
    app_keys = {name: p["app_key"] for name, p in base_config()["providers"].items()}
    assert {name: k for name, k in app_keys.items() if k != PLACEHOLDER} == {}


# --- rendered with kubectl kustomize ------------------------------------------------------------------


@functools.cache
def _render(overlay: str) -> tuple[Doc, ...]:
    kubectl = find_executable("kubectl")
    if kubectl is None:
        missing_tool(
            "kubectl",
            "kubectl >= 1.22 for `kubectl kustomize`; Debian's kubernetes-client is too old",
        )
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc is not None)


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def rendered(overlay: str) -> tuple[Doc, ...]:
    return _render(overlay)


def find(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> list[Doc]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def gateway_container(docs: tuple[Doc, ...]) -> Doc:
    containers = one(docs, "Deployment", GATEWAY)["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == CONTAINER]
    assert isinstance(container, dict)
    return container


def container_env(container: Doc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def http_port(container: Doc) -> int:
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == "http"]
    assert isinstance(port, int)
    return port


def pod_specs(docs: tuple[Doc, ...]) -> Iterator[tuple[str, Doc]]:
    for deployment in find(docs, "Deployment"):
        yield deployment["metadata"]["name"], deployment["spec"]["template"]


def matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def rendered_config(docs: tuple[Doc, ...]) -> str:
    """The config.yaml of the ConfigMap the gateway Deployment mounts (by its generated name)."""
    volumes = one(docs, "Deployment", GATEWAY)["spec"]["template"]["spec"]["volumes"]
    (config_volume,) = [v for v in volumes if "configMap" in v]
    config_map = one(docs, "ConfigMap", config_volume["configMap"]["name"])
    text: str = config_map["data"]["config.yaml"]
    return text


def redis_url(docs: tuple[Doc, ...]) -> str:
    url = container_env(gateway_container(docs)).get("GATEWAY_REDIS_URL")
    assert url, "every overlay must say where Redis is (GATEWAY_REDIS_URL)"
    return url


def redis_ports(url: str) -> set[int]:
    """The TCP ports a redis_url makes the gateway connect to (each host of a Sentinel/Cluster list)."""
    parts = urlsplit(url)
    default = REDIS_DEFAULT_PORTS[parts.scheme]
    hosts = parts.netloc.rpartition("@")[2].split(",")
    return {int(h.rpartition(":")[2]) if ":" in h else default for h in hosts}


def load_gateway_settings(
    config_text: str,
    secret_files: Mapping[str, str],
    env: Mapping[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """Load a config the way the pod does (GATEWAY_CONFIG file + GATEWAY_* env + mounted secret files),
    with the mount paths moved under tmp_path."""
    config = yaml.safe_load(config_text)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for name, value in secret_files.items():
        (secrets_dir / name).write_text(value, encoding="utf-8")
    for provider in config.get("providers", {}).values():
        if "app_secret_file" in provider:
            mounted = PurePosixPath(provider["app_secret_file"])
            assert mounted.parent == SECRET_MOUNT, mounted
            provider["app_secret_file"] = str(secrets_dir / mounted.name)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    for name in [n for n in os.environ if n.startswith("GATEWAY_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GATEWAY_CONFIG", str(config_file))
    return load_settings()


def test_overlay_passes_the_kubernetes_schemas(rendered: tuple[Doc, ...]) -> None:
    """Every rendered built-in resource validates strictly against the oldest and newest Kubernetes schemas."""
    try:
        import kubernetes_validate  # type: ignore[import-untyped]
        from kubernetes_validate.utils import latest_version  # type: ignore[import-untyped]
    except ImportError:
        missing_tool("kubernetes-validate", "pip install kubernetes-validate")
    errors: list[str] = []
    for doc in rendered:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCES:
            continue
        for version in (OLDEST_KUBERNETES, latest_version()):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                where = ".".join(str(p) for p in error.path)
                errors.append(
                    f"{doc['kind']}/{doc['metadata']['name']} @ {version}: {where}: {error.message}"
                )
            except kubernetes_validate.SchemaNotFoundError as error:
                errors.append(f"{error.message} (add it to CUSTOM_RESOURCES only if it is a CRD)")
    assert errors == []


def test_every_resource_carries_the_common_labels_and_the_overlay_namespace(
    rendered: tuple[Doc, ...], overlay: str
) -> None:
    """Each gateway resource has the app.kubernetes.io labels, and everything lands in the overlay's namespace."""
    namespace = kustomization(DEPLOY / "overlays" / overlay)["namespace"]
    for doc in rendered:
        assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "auth-gateway", doc["metadata"]["name"]
        assert "app.kubernetes.io/instance" in labels, doc["metadata"]["name"]
        if labels.get("app.kubernetes.io/name") != "redis":
            assert COMMON_LABELS.items() <= labels.items(), doc["metadata"]["name"]


def test_container_runs_a_real_gateway_command(
    rendered: tuple[Doc, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """The container's args are a command the gateway CLI accepts (the image's ENTRYPOINT is python -m gateway)."""
    container = gateway_container(rendered)
    assert "command" not in container, "keep the image's ENTRYPOINT; pass the subcommand as args"
    with pytest.raises(SystemExit) as exit_info:
        gateway_cli([*container["args"], "--help"])
    assert exit_info.value.code == 0, capsys.readouterr().err


def test_images_are_pinned(rendered: tuple[Doc, ...]) -> None:
    """Every container image has an explicit tag that is not `latest`."""
    for name, template in pod_specs(rendered):
        for container in template["spec"]["containers"]:
            image = container["image"]
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
            assert tag and tag != "latest", f"{name}: image {image} is not pinned"


def test_pods_run_locked_down(rendered: tuple[Doc, ...]) -> None:
    """Every pod runs non-root with a read-only root, no privilege escalation, no capabilities, RuntimeDefault
    seccomp, no API token, no service-link variables, and with resource requests and limits."""
    user = re.search(
        r"^USER (\d+)", (REPO / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE
    )
    assert user, "the Dockerfile sets no numeric USER"
    for name, template in pod_specs(rendered):
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["enableServiceLinks"] is False, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert security.get("privileged", False) is False, name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= container["resources"][kind].keys(), f"{name} {kind}"
    gateway_pod = one(rendered, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    assert gateway_pod["securityContext"]["runAsUser"] == int(user[1]), "not the image's USER"
    tmp = [m for m in gateway_container(rendered)["volumeMounts"] if m["mountPath"] == POD_TMP]
    (tmp_volume,) = [v for v in gateway_pod["volumes"] if v["name"] == tmp[0]["name"]]
    assert "emptyDir" in tmp_volume, "with a read-only root, /tmp must be a writable emptyDir"


def test_config_env_and_secrets_load_as_the_pod_would(
    rendered: tuple[Doc, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GATEWAY_CONFIG names the mounted ConfigMap file, the Secret is mounted where app_secret_file points,
    and the rendered config plus the container's env load into settings listening on the container port."""
    container = gateway_container(rendered)
    pod = one(rendered, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    env = container_env(container)

    (config_name,) = [n for n, v in volumes.items() if "configMap" in v]
    (item,) = volumes[config_name]["configMap"]["items"]
    assert item["key"] == "config.yaml"
    assert env["GATEWAY_CONFIG"] == str(
        PurePosixPath(mounts[config_name]["mountPath"]) / item["path"]
    )

    (secret_name,) = [n for n, v in volumes.items() if "secret" in v]
    assert volumes[secret_name]["secret"]["secretName"] == SECRET
    assert volumes[secret_name]["secret"].get("optional", False) is False, (
        "start only with the secrets"
    )
    assert PurePosixPath(mounts[secret_name]["mountPath"]) == SECRET_MOUNT
    assert all(m.get("readOnly") for m in mounts.values() if m["mountPath"] != POD_TMP)

    secrets = example_secret()["stringData"]
    for secret in find(rendered, "Secret", SECRET):
        assert secret["stringData"].keys() == secrets.keys()
    settings = load_gateway_settings(rendered_config(rendered), secrets, env, tmp_path, monkeypatch)
    assert settings.host == "0.0.0.0"  # noqa: S104 - a pod must listen on its pod IP
    assert settings.port == http_port(container)
    assert settings.redis_url == redis_url(rendered)


async def test_probe_and_scrape_paths_answer_from_a_gateway_built_from_the_overlay(
    rendered: tuple[Doc, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    aiohttp_client: AiohttpClient,
) -> None:
    """The startup, liveness and readiness probes and the ServiceMonitor ask paths that a gateway built from
    the rendered config answers with 200."""
    container = gateway_container(rendered)
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    probes = [container[p]["httpGet"] for p in ("startupProbe", "livenessProbe", "readinessProbe")]
    assert {p["port"] for p in probes} == {"http"}
    (monitor,) = find(rendered, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"

    env = {**container_env(container), "GATEWAY_REDIS_URL": "memory://"}  # no Redis needed for this
    settings = load_gateway_settings(
        rendered_config(rendered), example_secret()["stringData"], env, tmp_path, monkeypatch
    )
    client = await aiohttp_client(create_app(settings))
    for path in sorted({p["path"] for p in probes} | {endpoint["path"]}):
        response = await client.get(path)
        assert response.status == 200, f"{path}: {response.status} {await response.text()}"


def test_selectors_pick_the_gateway_pods_and_nothing_else(rendered: tuple[Doc, ...]) -> None:
    """Service, PDB, NetworkPolicy, topology spread and HPA all point at the gateway pods, never at Redis, and
    the ServiceMonitor finds the Service and its named port."""
    deployment = one(rendered, "Deployment", GATEWAY)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    other_pods = [t["metadata"]["labels"] for n, t in pod_specs(rendered) if n != GATEWAY]
    service = one(rendered, "Service", GATEWAY)
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": service["spec"]["selector"],
        "PodDisruptionBudget": one(rendered, "PodDisruptionBudget", GATEWAY)["spec"]["selector"][
            "matchLabels"
        ],
        "NetworkPolicy": one(rendered, "NetworkPolicy", GATEWAY)["spec"]["podSelector"][
            "matchLabels"
        ],
    }
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    for constraint in spread:
        selectors[f"spread {constraint['topologyKey']}"] = constraint["labelSelector"][
            "matchLabels"
        ]
    for owner, selector in selectors.items():
        assert matches(selector, pod_labels), f"{owner} selector {selector} misses the gateway pods"
        assert not any(matches(selector, labels) for labels in other_pods), (
            f"{owner} also selects Redis"
        )
    assert {c["topologyKey"] for c in spread} == {
        "topology.kubernetes.io/zone",
        "kubernetes.io/hostname",
    }
    assert len(spread) == 2, (
        "one constraint per topology key (a patch may have appended instead of replaced)"
    )

    hpa = one(rendered, "HorizontalPodAutoscaler", GATEWAY)
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": GATEWAY,
    }

    (port,) = service["spec"]["ports"]
    assert (port["name"], port["port"], port["targetPort"]) == ("http", 80, "http")
    assert http_port(gateway_container(rendered)) == 8080
    (monitor,) = find(rendered, "ServiceMonitor")
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [port["name"]]


def test_network_policy_admits_the_http_port_and_the_egress_the_gateway_needs(
    rendered: tuple[Doc, ...],
) -> None:
    """Ingress is the container's HTTP port only, from this namespace and monitoring; egress allows DNS,
    HTTPS to the vendors and every port of this overlay's Redis URL."""
    policy = one(rendered, "NetworkPolicy", GATEWAY)["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    ingress_ports = {
        (p["protocol"], p["port"]) for rule in policy["ingress"] for p in rule["ports"]
    }
    assert ingress_ports == {("TCP", http_port(gateway_container(rendered)))}
    peers = [peer for rule in policy["ingress"] for peer in rule["from"]]
    assert {"podSelector": {}} in peers
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    } in peers
    egress = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    needed = {("UDP", 53), ("TCP", 53), ("TCP", 443)}
    needed |= {("TCP", port) for port in redis_ports(redis_url(rendered))}
    assert needed <= egress, f"missing egress: {needed - egress}"


def test_scaling_and_shutdown_leave_room_for_drains_and_in_flight_requests(
    rendered: tuple[Doc, ...],
) -> None:
    """Replicas sit within the HPA range, the PDB lets a drain evict a pod at minimum scale, and the grace
    period covers the preStop pause plus the gateway's own shutdown bound."""
    deployment = one(rendered, "Deployment", GATEWAY)["spec"]
    hpa = one(rendered, "HorizontalPodAutoscaler", GATEWAY)["spec"]
    pdb = one(rendered, "PodDisruptionBudget", GATEWAY)["spec"]
    assert hpa["minReplicas"] <= deployment["replicas"] <= hpa["maxReplicas"]
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    if "minAvailable" in pdb:
        assert 1 <= pdb["minAvailable"] < hpa["minReplicas"], pdb
    else:
        assert pdb["maxUnavailable"] >= 1, pdb
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, (
        "roll without losing capacity"
    )

    pod = deployment["template"]["spec"]
    command = gateway_container(rendered)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] >= int(command[1]) + GATEWAY_SHUTDOWN_BOUND_S


def test_development_runs_its_own_redis_behind_the_url_it_gives() -> None:
    """The development overlay's GATEWAY_REDIS_URL names a Service it renders, on that Service's port,
    and the Service selects the Redis pods; it runs fewer gateway replicas than production."""
    docs = _render("development")
    url = urlsplit(redis_url(docs))
    assert url.scheme == "redis"
    service = one(docs, "Service", url.hostname or "")
    assert [p["port"] for p in service["spec"]["ports"]] == [url.port]
    redis = one(docs, "Deployment", service["metadata"]["name"])
    assert matches(service["spec"]["selector"], redis["spec"]["template"]["metadata"]["labels"])
    production = one(_render("production"), "Deployment", GATEWAY)["spec"]["replicas"]
    assert one(docs, "Deployment", GATEWAY)["spec"]["replicas"] < production


def test_production_uses_external_redis_and_never_applies_the_example_secret() -> None:
    """Production renders no Redis and no placeholder Secret (an apply must not overwrite the real one),
    reaches Redis through Sentinel or TLS, and runs at least three replicas from a registry image."""
    docs = _render("production")
    assert find(docs, "Secret") == []
    assert [d["metadata"]["name"] for d in find(docs, "Deployment")] == [GATEWAY]
    assert urlsplit(redis_url(docs)).scheme in ("redis+sentinel", "rediss")
    assert one(docs, "Deployment", GATEWAY)["spec"]["replicas"] >= 3
    assert "/" in gateway_container(docs)["image"], "production pulls from a registry"


@pytest.mark.parametrize(
    "overlay_name",
    [
        "development",
        "production",
    ],
)
async def test_overlay_redis_url_is_one_the_gateway_can_open(overlay_name: str) -> None:
    """The store factory accepts the overlay's GATEWAY_REDIS_URL (no connection is made)."""
    store = open_store(redis_url(_render(overlay_name))).store
    await store.close()


def test_rotated_files_reach_the_pod_secret_mounts_have_no_subpath(
    rendered: tuple[Doc, ...],
) -> None:
    """The kubelet updates a Secret mounted as a directory in place, and never one mounted with
    subPath: every file the config names for live rotation must sit under a whole-Secret mount."""
    pod = one(rendered, "Deployment", GATEWAY)["spec"]["template"]["spec"]
    secret_volumes = {v["name"] for v in pod["volumes"] if "secret" in v}
    mounts = [m for m in gateway_container(rendered)["volumeMounts"] if m["name"] in secret_volumes]
    assert mounts, "the vendor secrets are mounted from a Secret"
    assert [m for m in mounts if "subPath" in m or "subPathExpr" in m] == []
    mounted = [PurePosixPath(m["mountPath"]) for m in mounts]
    config = yaml.safe_load(rendered_config(rendered))
    files = [p["app_secret_file"] for p in config["providers"].values() if "app_secret_file" in p]
    files += [
        c["api_key_sha256_file"] for c in config["clients"].values() if "api_key_sha256_file" in c
    ]
    assert files
    for name in files:
        assert any(PurePosixPath(name).parent == mount for mount in mounted), name
