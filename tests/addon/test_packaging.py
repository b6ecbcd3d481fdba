"""The add-on's packaging, checked the way the Supervisor, s6-overlay and Docker read it.

A config.yaml the Supervisor rejects makes the add-on vanish from the store without an error
in the UI, so its rules are transcribed here from the Supervisor source
(``supervisor/apps/validate.py`` ``_SCHEMA_APP_CONFIG``, ``supervisor/apps/options.py``
``RE_SCHEMA_ELEMENT``) and checked before an image is built.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import homeiq_addon
from homeiq_addon.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
S6 = ROOT / "rootfs/etc/s6-overlay/s6-rc.d"

RE_SLUG = re.compile(r"^[-_.A-Za-z0-9]+$")
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
RE_WATCHDOG = re.compile(r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$")
# _SCHEMA_APP_CONFIG keys (extra keys are silently removed: a typo would just vanish).
SUPERVISOR_KEYS = {
    "name", "version", "slug", "description", "arch", "machine", "url", "startup", "boot", "init",
    "advanced", "stage", "ports", "ports_description", "watchdog", "webui", "ingress", "ingress_port",
    "ingress_entry", "ingress_stream", "panel_icon", "panel_title", "panel_admin", "homeassistant",
    "host_network", "host_pid", "host_ipc", "host_uts", "host_dbus", "devices", "udev", "tmpfs", "map",
    "environment", "privileged", "apparmor", "full_access", "audio", "video", "gpio", "usb", "uart",
    "devicetree", "kernel_modules", "realtime", "hassio_api", "hassio_role", "homeassistant_api", "stdin",
    "legacy", "docker_api", "auth_api", "services", "discovery", "backup_exclude", "backup_pre",
    "backup_post", "backup", "options", "schema", "image", "ulimits", "timeout", "journald",
    "breaking_versions",
}  # fmt: skip
CURRENT_ARCHES = {"aarch64", "amd64"}


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    return data


def _schema_accepts(element: str, value: Any) -> bool:
    """Whether the Supervisor's option validation accepts ``value`` for a schema ``element``."""
    match = RE_SCHEMA_ELEMENT.match(element)
    assert match, element
    kind = element.rstrip("?").split("(")[0]
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        low, high = match.group("i_min"), match.group("i_max")
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (low is None or value >= int(low))
            and (high is None or value <= int(high))
        )
    if kind == "float":
        low, high = match.group("f_min"), match.group("f_max")
        return (
            isinstance(value, int | float)
            and (low is None or value >= float(low))
            and (high is None or value <= float(high))
        )
    if kind == "list":
        return value in match.group("list").split("|")
    if kind in {"str", "password"}:
        return isinstance(value, str)
    return False


def test_required_keys_and_only_keys_the_supervisor_knows(config: dict[str, Any]) -> None:
    for key in ("name", "version", "slug", "description", "arch"):
        assert config.get(key), key
    assert set(config) <= SUPERVISOR_KEYS, set(config) - SUPERVISOR_KEYS


def test_identity_matches_the_package_and_the_integration(config: dict[str, Any]) -> None:
    manifest = json.loads((ROOT / "custom_components/homeiq/manifest.json").read_text())
    assert RE_SLUG.match(config["slug"])
    assert config["slug"] == "homeiq"
    assert config["version"] == homeiq_addon.__version__
    assert manifest["domain"] in config["discovery"]
    assert set(config["arch"]) == CURRENT_ARCHES


def test_runtime_keys_for_an_s6_overlay_http_service(config: dict[str, Any]) -> None:
    assert config["init"] is False  # s6-overlay v3 is PID 1 in the base image
    assert config["ports"] == {"8765/tcp": None}  # reachable on the internal network only
    assert RE_WATCHDOG.match(config["watchdog"])
    assert config["watchdog"].endswith("/health")
    assert config["video"] is True  # /dev/dri for the GPU device option
    assert any(pattern.startswith("models") for pattern in config["backup_exclude"])
    assert re.fullmatch(r"\d{4}\.\d{1,2}\.\d+", config["homeassistant"])
    assert not {"host_network", "privileged", "full_access", "docker_api"} & set(config)


def test_every_schema_element_is_one_the_supervisor_parses(config: dict[str, Any]) -> None:
    bad = {key: element for key, element in config["schema"].items() if not RE_SCHEMA_ELEMENT.match(element)}
    assert bad == {}


def test_every_default_option_satisfies_its_schema(config: dict[str, Any]) -> None:
    schema, options = config["schema"], config["options"]
    assert set(options) <= set(schema)
    required = {key for key, element in schema.items() if not element.endswith("?")}
    assert required <= set(options), "the Supervisor refuses to start without a value for these"
    for key, value in options.items():
        assert _schema_accepts(schema[key], value), (key, schema[key], value)


def test_schema_checker_rejects_what_the_supervisor_rejects() -> None:
    assert not _schema_accepts("int(0,64)", 65)
    assert not _schema_accepts("int(0,64)", True)
    assert not _schema_accepts("list(full|lite)", "huge")
    assert not _schema_accepts("float(0.5,1.0)?", 0.2)
    assert not RE_SCHEMA_ELEMENT.match("str=default")


def test_the_server_reads_the_default_options_json(config: dict[str, Any], tmp_path: Path) -> None:
    """What the Supervisor writes to /data/options.json must be accepted by `serve`."""
    (tmp_path / "options.json").write_text(json.dumps(config["options"]))
    settings = load_settings({"data_dir": str(tmp_path)}, environ={})
    options = config["options"]
    assert settings.profile == options["profile"]
    assert settings.embedding_model == options["embedding_model"]
    assert settings.device == options["device"]
    assert settings.limits.max_texts == options["max_texts"]
    assert settings.limits.max_body_bytes == options["max_body_kb"] * 1024
    for key in config["schema"]:
        (tmp_path / "options.json").write_text(json.dumps({key: None}))
        load_settings({"data_dir": str(tmp_path)}, environ={})  # every schema key is a known option


def test_translations_describe_every_option_and_port(config: dict[str, Any]) -> None:
    translations = yaml.safe_load((ROOT / "translations/en.yaml").read_text(encoding="utf-8"))
    assert set(translations) <= {"configuration", "network"}
    assert set(translations["configuration"]) == set(config["schema"])
    for key, entry in translations["configuration"].items():
        assert isinstance(entry.get("name"), str), key
        assert isinstance(entry.get("description"), str), key
    assert set(translations["network"]) == set(config["ports"])


def test_docs_mention_every_option_and_changelog_the_version(config: dict[str, Any]) -> None:
    docs = (ROOT / "DOCS.md").read_text(encoding="utf-8")
    missing = [key for key in config["schema"] if f"`{key}`" not in docs]
    assert missing == []
    assert f"## {config['version']}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


# ---- s6-overlay services ----------------------------------------------------------------

SCRIPTS = [S6 / "homeiq/run", S6 / "homeiq/finish", S6 / "discovery/run"]


def test_s6_services_are_a_longrun_server_and_a_oneshot_discovery() -> None:
    assert (S6 / "homeiq/type").read_text().strip() == "longrun"
    assert (S6 / "discovery/type").read_text().strip() == "oneshot"
    assert (S6 / "discovery/up").read_text().strip() == "/etc/s6-overlay/s6-rc.d/discovery/run"
    assert (S6 / "homeiq/dependencies.d/base").is_file()
    assert (S6 / "discovery/dependencies.d/homeiq").is_file()
    assert {p.name for p in (S6 / "user/contents.d").iterdir()} == {"homeiq", "discovery"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_s6_scripts_are_executable_bashio_scripts_that_parse(script: Path) -> None:
    assert os.access(script, os.X_OK)
    assert script.read_text().startswith("#!/command/with-contenv bashio\n")
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_s6_scripts_pass_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", "--shell=bash", *map(str, SCRIPTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_server_service_runs_the_same_cli_entrypoint_on_the_published_port(config: dict[str, Any]) -> None:
    run = (S6 / "homeiq/run").read_text()
    port = next(iter(config["ports"])).split("/")[0]
    assert re.search(
        rf"^exec \S+/python3 -m homeiq_addon serve .*--port {port} .*--data-dir /data$", run, re.M
    )


def test_discovery_announces_host_port_and_token_for_the_integration(config: dict[str, Any]) -> None:
    script = (S6 / "discovery/run").read_text()
    port = next(iter(config["ports"])).split("/")[0]
    assert f"port={port}" in script
    assert "bashio::net.wait_for" in script
    assert re.search(r'bashio::discovery "homeiq" "\$\{config\}"', script)
    for field in ("host", "port", "token"):
        assert re.search(rf"^\s+{field} ", script, re.M), field
    assert "/data/token" in script


# ---- Docker image -----------------------------------------------------------------------


# A base image pinned by its release (``bookworm-2026.06.0``), optionally by digest too; never a
# floating tag such as ``bookworm`` or ``latest``.
PINNED_BASE = re.compile(
    r"^FROM ghcr\.io/home-assistant/base-debian:(?P<debian>bookworm|trixie)-\d{4}\.\d{1,2}\.\d+"
    r"(@sha256:[0-9a-f]{64})?$"
)
DEBIAN_PYTHON = {"bookworm": "3.11", "trixie": "3.13"}  # the python3 the image's venv is made with
LOCK = ROOT / "addon/requirements-runtime.lock"
CONVERTER_ONLY = {"torch", "torchvision", "transformers", "optimum", "optimum-intel", "nncf"}
WORKFLOW = ROOT / ".github/workflows/builder.yaml"


def _instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file, names normalised as pip does."""
    pins = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)", line)
            assert match, f"{path.name}: {line!r} is not pinned as name==version"
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[2]
    return pins


def test_dockerfile_starts_from_a_pinned_debian_base_and_builds_a_venv() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = _instructions(dockerfile)
    base = PINNED_BASE.match(instructions[0])
    assert base, f"the base image must be pinned by version, not {instructions[0]!r}"
    assert not any("BUILD_FROM" in line for line in instructions)
    assert "ARG PREFETCH_MODELS=false" in dockerfile  # lazy download is the default
    assert "python3 -m venv" in dockerfile
    assert "homeiq_addon fetch" in dockerfile
    assert "COPY rootfs /" in dockerfile
    assert not list(ROOT.glob("build.*")), "build.yaml is deprecated and would override FROM"
    # The lock was made with the Python the image's venv gets (Debian's python3).
    assert DEBIAN_PYTHON[base["debian"]] == "3.11"


def test_the_default_image_installs_the_locked_runtime_without_the_converter() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG WITH_CONVERTER=false" in dockerfile
    installs = [line for line in _instructions(dockerfile) if "pip install" in line]
    assert installs
    for line in installs:
        for command in re.findall(r"pip install[^&;]*", line):
            assert "-c requirements-runtime.lock" in command, command
    runtime = [line for line in installs if "requirements.txt" in line]
    assert len(runtime) == 1 and "WITH_CONVERTER" not in runtime[0]
    assert "pip check" in runtime[0]  # an inconsistent set fails the build
    converter = [line for line in installs if "requirements-convert.txt" in line]
    assert len(converter) == 1 and '"${WITH_CONVERTER}" = "true"' in converter[0]


def test_no_install_step_hides_a_failure() -> None:
    for line in _instructions((ROOT / "Dockerfile").read_text()):
        if line.startswith("RUN"):
            assert not re.search(r"\|\|\s*(true|:|exit 0)\b", line), line
            assert not re.search(r";\s*true\b", line), line
            assert "set +e" not in line, line


def test_the_lock_pins_the_whole_runtime_and_only_the_runtime() -> None:
    lock, requirements = _pins(LOCK), _pins(ROOT / "addon/requirements.txt")
    for name, version in requirements.items():
        assert lock.get(name) == version, f"{name}: requirements.txt {version}, lock {lock.get(name)}"
    assert not CONVERTER_ONLY & set(lock), "the converter's packages are not part of the runtime"
    assert len(lock) > len(requirements)  # the dependencies of the dependencies too
    assert not CONVERTER_ONLY & set(requirements)


def test_config_names_the_images_the_workflow_builds(config: dict[str, Any]) -> None:
    owner = re.fullmatch(r"https://github\.com/([^/]+)/[^/]+", config["url"])
    assert owner, config["url"]
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    env = workflow["env"]
    assert config["image"] == f"ghcr.io/{owner[1].lower()}/{{arch}}-{env['IMAGE_NAME']}"
    assert set(json.loads(env["ARCHITECTURES"])) == set(config["arch"]) == CURRENT_ARCHES


def test_the_workflow_builds_each_arch_with_home_assistants_builder_on_release() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    triggers = workflow[True]  # YAML 1.1 reads the key "on" as true
    assert triggers["release"]["types"] == ["published"]
    uses = [step["uses"] for job in workflow["jobs"].values() for step in job["steps"] if "uses" in step]
    builder = [u for u in uses if u.startswith("home-assistant/builder/actions/")]
    names = {u.split("@")[0].rsplit("/", 1)[1] for u in builder}
    assert names == {"prepare-multi-arch-matrix", "build-image", "publish-multi-arch-manifest"}
    for action in uses:  # every action pinned: a release tag or a commit, never a branch
        assert re.fullmatch(r"[\w./-]+@(v\d+(\.\d+)*|\d{4}\.\d{2}\.\d+|[0-9a-f]{40})", action), action
    build = workflow["jobs"]["build"]
    (image_step,) = [s for s in build["steps"] if s.get("uses", "").startswith("home-assistant/builder/")]
    assert image_step["with"]["push"] == "${{ github.event_name == 'release' }}"  # PRs only build
    assert workflow["jobs"]["manifest"]["if"] == "github.event_name == 'release'"
    assert "config.yaml's version" in text  # a release tag that is not the version fails the build


def test_dockerignore_keeps_the_context_to_the_addon_and_rootfs() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {"!addon/", "!rootfs/"} <= set(lines)
    for copied in re.findall(r"^COPY (\S+)", (ROOT / "Dockerfile").read_text(), re.M):
        assert any(copied.startswith(allowed[1:].rstrip("/")) for allowed in lines if allowed.startswith("!"))


def test_apparmor_profile_is_named_after_the_slug_and_allows_s6(config: dict[str, Any]) -> None:
    profile = (ROOT / "apparmor.txt").read_text()
    assert re.search(
        rf"^profile {config['slug']} flags=\(attach_disconnected,mediate_deleted\)", profile, re.M
    )
    for rule in ("/init ix,", "/run/{s6,s6-rc*,service}/** ix,", "/usr/lib/bashio/** ix,", "/data/** rwk,"):
        assert rule in profile
    assert profile.count("{") == profile.count("}")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_icon_is_square_and_logo_is_wide_png() -> None:
    width, height = _png_size(ROOT / "icon.png")
    assert width == height >= 128
    width, height = _png_size(ROOT / "logo.png")
    assert width > height


def test_repository_file_names_the_repository() -> None:
    repository = yaml.safe_load((ROOT / "repository.yaml").read_text())
    assert repository["name"]
    assert repository["url"].startswith("https://")
