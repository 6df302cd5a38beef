"""Packaging, checked without a Docker engine or a cluster.

- Dockerfile: its instructions agree with the repo (sources, config path, user, health
  check), and its steps run outside Docker: the project builds as a wheel holding every
  file the code reads, and the image's entrypoint, config path and environment serve
  /healthz from that wheel alone;
- docker-compose.yml: services, mounts (every repo path exists), ports, depends_on,
  health checks and environment agree with each other and with the Prometheus, Grafana
  and gateway configuration they load;
- deploy/alertmanager: `amtool check-config`, and every alert routes to a receiver;
- deploy/k8s: base and overlay render (tests/integration/kustomize.py) and validate
  offline against the Kubernetes schemas (kubernetes-validate, strict: no unknown field);
  probes, shutdown timing, selectors and the config they mount agree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from bench.harness import free_port, server_process
from gateway.settings import Settings, load_settings
from tests.integration.kustomize import render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy/k8s"
KUSTOMIZATIONS = ["base", "overlays/production"]
K8S_VERSION = "1.32"  # the oldest Kubernetes the manifests promise to run on
OPERATOR_API = "monitoring.coreos.com/v1"  # CRDs: no bundled schema, checked by hand below


# --- Dockerfile --------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    parsed = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(words[0].upper(), words[1] if len(words) > 1 else "") for words in parsed]


def runtime_stage() -> list[tuple[str, str]]:
    instructions = dockerfile()
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


def image_env() -> dict[str, str]:
    env = {}
    for op, args in runtime_stage():
        if op == "ENV":
            env |= dict(pair.split("=", 1) for pair in args.split())
    return env


def test_dockerfile_builds_from_repo_files_into_a_slim_non_root_image() -> None:
    instructions = dockerfile()
    bases = [args.split()[0] for op, args in instructions if op == "FROM"]
    # The same base for both stages: wheels resolve per interpreter (redis needs
    # async-timeout below Python 3.11.3), so they must be built where they will run.
    assert len(bases) == 2, bases
    assert len(set(bases)) == 1, bases
    assert re.fullmatch(r"python:3\.1[1-9]-slim", bases[0])
    for op, args in instructions:
        if op == "COPY" and not args.startswith("--from"):
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repo"
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for kept in ("pyproject.toml", "README.md", "gateway/", "config/"):
        assert f"!{kept}" in ignore
    user = [args for op, args in runtime_stage() if op == "USER"]
    assert user
    assert user[-1] not in ("root", "0")
    health = " ".join(args for op, args in runtime_stage() if op == "HEALTHCHECK")
    assert "/healthz" in health
    assert image_env()["GATEWAY_SERVER__HOST"] == "0.0.0.0"


def image_command() -> list[str]:
    stage = dict(runtime_stage())
    return [*yaml.safe_load(stage["ENTRYPOINT"]), *yaml.safe_load(stage["CMD"])]


def test_the_image_config_path_is_the_copied_config() -> None:
    stage = runtime_stage()
    workdir = Path(next(args for op, args in stage if op == "WORKDIR"))
    copied = {
        workdir / dest: src
        for op, args in stage
        if op == "COPY" and not args.startswith("--from")
        for src, dest in [args.split()]
    }
    command = image_command()
    assert command[:2] == ["gateway", "serve"]
    config = Path(command[command.index("--config") + 1])
    assert config in copied, f"{config} is not copied into the image"
    load_settings(ROOT / copied[config])


def test_the_wheel_serves_with_the_image_command_config_and_environment(
    tmp_path: Path,
) -> None:
    """The Dockerfile's steps outside Docker: `pip wheel .`, then the image's command
    with the image's environment from a directory holding only the wheel's contents."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("tollgate-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
        names = set(archive.namelist())
    sources = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "gateway").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    missing = [path for path in sources if path not in names]
    assert not missing, f"the wheel (and so the image) lacks {missing}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "gateway = gateway.cli:main" in (site / entry_points).read_text()

    app = tmp_path / "app"  # the image's WORKDIR, with the config it copies
    (app / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config/gateway.yaml", app / "config/gateway.yaml")
    port, emulator_port = free_port(), free_port()
    command = image_command()
    command[command.index("--config") + 1] = str(app / "config/gateway.yaml")
    env = {
        **image_env(),
        "PYTHONPATH": str(site),  # ahead of the editable install of the repo
        "GATEWAY_SERVER__PORT": str(port),
        "GATEWAY_EMULATOR__PORT": str(emulator_port),
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": f"http://127.0.0.1:{emulator_port}",
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    argv = [sys.executable, "-m", "gateway", *command[1:]]  # `gateway` is this entry point
    with server_process(argv, f"http://127.0.0.1:{port}", "/healthz", env) as url:
        probe = subprocess.run(
            [sys.executable, "-c", _healthcheck_script(port)], env={**os.environ, **env}
        )
        assert probe.returncode == 0, "the image's HEALTHCHECK command failed"
        ready = httpx.get(url + "/readyz").json()
        assert ready["status"] == "ready"
        served = subprocess.run(
            [sys.executable, "-c", "import gateway; print(gateway.__file__)"],
            env={**os.environ, **env},
            cwd=app,
            capture_output=True,
            text=True,
        )
        assert served.stdout.startswith(str(site)), "served from the repo, not the wheel"


def _healthcheck_script(port: int) -> str:
    health = " ".join(args for op, args in runtime_stage() if op == "HEALTHCHECK")
    script: str = yaml.safe_load(health[health.index("CMD") + 3 :])[-1]
    return script.replace("127.0.0.1:8080", f"127.0.0.1:{port}")


# --- docker-compose.yml --------------------------------------------------------------------


def compose(name: str = "docker-compose.yml") -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return loaded


def test_compose_has_the_whole_stack() -> None:
    services = compose()["services"]
    assert set(services) == {
        "gateway", "emulator", "redis", "prometheus", "alertmanager", "grafana",
    }  # fmt: skip
    assert services["gateway"]["ports"] == ["8080:8080"]
    assert services["prometheus"]["ports"] == ["9090:9090"]
    assert services["alertmanager"]["ports"] == ["9093:9093"]
    assert services["grafana"]["ports"] == ["3000:3000"]
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
        for dependency, how in service.get("depends_on", {}).items():
            assert dependency in services
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency]


def test_compose_mounts_exist_in_the_repo() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source, target, *_ = volume.split(":")
            assert source.startswith("./"), f"{name}: {volume} is not a repo path"
            assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            assert target.startswith("/")
        if "build" in service:
            assert (ROOT / service["build"] / "Dockerfile").exists()


def gateway_settings(environment: dict[str, str]) -> Settings:
    """The gateway's settings as compose runs it: the image's config plus its environment."""
    saved = dict(os.environ)
    os.environ.update({k: str(v) for k, v in environment.items() if "STATE__" not in k})
    try:
        return load_settings(ROOT / "config/gateway.yaml")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_compose_gateway_relays_to_the_emulator_with_redis_state() -> None:
    services = compose()["services"]
    gateway = services["gateway"]
    settings = gateway_settings(gateway["environment"])
    assert settings.server.host == "0.0.0.0"
    assert not settings.server.start_emulator  # the emulator is its own service
    emulator = services["emulator"]["command"]
    emulator_url = f"http://emulator:{emulator[emulator.index('--port') + 1]}"
    assert settings.providers.anthropic.base_url == emulator_url
    assert emulator[emulator.index("--host") + 1] == "0.0.0.0"
    assert gateway["environment"]["GATEWAY_STATE__REDIS_URL"].startswith("redis://redis:6379")
    assert set(gateway["depends_on"]) == {"emulator", "redis"}
    grace = int(gateway["stop_grace_period"].removesuffix("s"))
    assert grace > settings.server.shutdown_grace_s, "compose would kill draining streams"
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])


def test_compose_observability_loads_the_repo_config() -> None:
    services = compose()["services"]
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (scrape,) = prometheus["scrape_configs"]
    assert scrape["static_configs"][0]["targets"] == ["gateway:8080"]
    alerting = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alerting == ["alertmanager:9093"]
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in services["prometheus"]["volumes"]
    datasources = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    dashboards = yaml.safe_load((ROOT / "grafana/provisioning/dashboards/tollgate.yml").read_text())
    path = dashboards["providers"][0]["options"]["path"]
    assert f"./grafana/dashboards:{path}:ro" in services["grafana"]["volumes"]


def test_the_providers_override_points_at_real_providers_with_env_keys() -> None:
    override = compose("docker-compose.providers.yml")["services"]["gateway"]["environment"]
    settings = gateway_settings({**compose()["services"]["gateway"]["environment"], **override})
    assert settings.providers.anthropic.base_url == "https://api.anthropic.com"
    assert settings.providers.openai.base_url == "https://api.openai.com"
    assert override["GATEWAY_PROVIDERS__ANTHROPIC__API_KEY"].startswith("${ANTHROPIC_API_KEY")


# --- Alertmanager ----------------------------------------------------------------------------

AMTOOL = shutil.which("amtool")
ALERTMANAGER_CONFIG = ROOT / "deploy/alertmanager/alertmanager.yml"


def test_alertmanager_config_is_valid() -> None:
    assert AMTOOL, "amtool is missing: Debian's prometheus-alertmanager (.ci/run installs it)"
    checked = subprocess.run(
        [AMTOOL, "check-config", str(ALERTMANAGER_CONFIG)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_alert_reaches_a_receiver() -> None:
    assert AMTOOL, "amtool is missing: Debian's prometheus-alertmanager (.ci/run installs it)"
    alerts = [
        rule
        for group in yaml.safe_load((ROOT / "deploy/prometheus/rules/alerts.yml").read_text())[
            "groups"
        ]
        for rule in group["rules"]
    ]
    expected = {"critical": "oncall", "warning": "team"}
    for alert in alerts:
        severity = alert["labels"]["severity"]
        routed = subprocess.run(
            [
                AMTOOL,
                "config",
                "routes",
                "test",
                f"--config.file={ALERTMANAGER_CONFIG}",
                f"alertname={alert['alert']}",
                f"severity={severity}",
                "job=gateway",
            ],
            capture_output=True,
            text=True,
        )
        assert routed.stdout.strip() == expected[severity], (alert["alert"], routed)


# --- Kubernetes --------------------------------------------------------------------------------


def resources(kustomization: str) -> dict[str, dict[str, Any]]:
    return {r["kind"]: r for r in render(K8S / kustomization)}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_k8s_manifests_validate_against_the_kubernetes_schemas(kustomization: str) -> None:
    rendered = render(K8S / kustomization)
    kinds = sorted(r["kind"] for r in rendered)
    assert kinds == sorted(
        [
            "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "PrometheusRule", "Service", "ServiceMonitor",
        ]
    )  # fmt: skip
    for resource in rendered:
        if resource["apiVersion"] == OPERATOR_API:
            continue
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_k8s_pods_drain_streams_before_they_are_killed(kustomization: str, tmp_path: Path) -> None:
    found = resources(kustomization)
    config = tmp_path / "gateway.yaml"
    config.write_text(found["ConfigMap"]["data"]["gateway.yaml"])
    settings = load_settings(config)
    pod = found["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    pause = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(pause[1]) + settings.server.shutdown_grace_s
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == settings.server.port
    assert settings.server.host == "0.0.0.0"
    assert not settings.server.start_emulator
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert container["args"] == ["serve", "--config", f"{mount['mountPath']}/gateway.yaml"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    assert volume["configMap"]["name"] == found["ConfigMap"]["metadata"]["name"]
    uid = next(args for op, args in runtime_stage() if op == "USER")
    assert str(pod["securityContext"]["runAsUser"]) == uid
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    (redis,) = [e for e in container["env"] if e["name"] == "GATEWAY_STATE__REDIS_URL"]
    assert redis["valueFrom"]["secretKeyRef"]["name"] == "tollgate-redis"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_k8s_selectors_and_targets_agree(kustomization: str) -> None:
    found = resources(kustomization)
    deployment = found["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = found["Service"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= (
        pod_labels.items()
    )
    monitor = found["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert {endpoint["port"] for endpoint in monitor["endpoints"]} <= port_names
    assert monitor["endpoints"][0]["path"] == "/metrics"
    hpa = found["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    # A drain (node upgrade) must be able to evict a pod at the smallest scale.
    assert found["PodDisruptionBudget"]["spec"]["minAvailable"] < hpa["minReplicas"]
    namespaces = {r["metadata"].get("namespace") for r in found.values()}
    assert len(namespaces) == 1


def test_k8s_production_pins_the_image_and_requires_redis() -> None:
    found = resources("overlays/production")
    (container,) = found["Deployment"]["spec"]["template"]["spec"]["containers"]
    image = container["image"]
    assert ":" in image
    assert not image.endswith(":latest")
    (redis,) = [e for e in container["env"] if e["name"] == "GATEWAY_STATE__REDIS_URL"]
    assert redis["valueFrom"]["secretKeyRef"]["optional"] is False
    assert found["Deployment"]["metadata"]["namespace"] == "tollgate"
