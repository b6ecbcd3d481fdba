"""Repository-level rules that HA's Supervisor, HACS and hassfest impose on our layout."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
METADATA_NAME = re.compile(r"^(config|build)\.(yaml|yml|json)$")


def _repo_files() -> list[Path]:
    """Files git would ship: tracked plus untracked-but-not-ignored."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [ROOT / line for line in out.splitlines() if line and (ROOT / line).exists()]


def test_root_config_yaml_is_the_only_addon_metadata_file() -> None:
    """The Supervisor reads every config.* / build.* file as add-on metadata."""
    offenders = [
        str(p.relative_to(ROOT))
        for p in _repo_files()
        if METADATA_NAME.match(p.name) and p.relative_to(ROOT) != Path("config.yaml")
    ]
    assert offenders == []
    assert (ROOT / "config.yaml").is_file()


def test_metadata_name_rule_catches_offenders() -> None:
    """The rule above must actually match the names the Supervisor looks for."""
    for name in ("config.yaml", "config.yml", "config.json", "build.yaml", "build.yml", "build.json"):
        assert METADATA_NAME.match(name)
    for name in ("config.yaml.j2", "myconfig.yaml", "options.json", "build.py"):
        assert not METADATA_NAME.match(name)


def test_single_repository_file() -> None:
    repos = [p for p in _repo_files() if re.match(r"^repository\.(yaml|yml|json)$", p.name)]
    assert [p.relative_to(ROOT) for p in repos] == [Path("repository.yaml")]


def test_single_manifest_json() -> None:
    """hassfest treats every manifest.json as an integration."""
    manifests = [p.relative_to(ROOT) for p in _repo_files() if p.name == "manifest.json"]
    assert manifests == [Path("custom_components/homeiq/manifest.json")]


def test_manifest_is_what_hassfest_and_hacs_accept() -> None:
    manifest = json.loads((ROOT / "custom_components/homeiq/manifest.json").read_text())
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:]), "hassfest wants domain, name, then alphabetical keys"
    assert manifest["domain"] == "homeiq"
    assert manifest["config_flow"] is True
    assert "recorder" in manifest["dependencies"]
    assert manifest["integration_type"] == "service"
    assert manifest["iot_class"] == "local_polling"
    for key in ("version", "codeowners", "documentation", "issue_tracker"):
        assert manifest[key], key
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])


def test_hacs_json_has_only_known_keys() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text())
    allowed = {
        "name",
        "content_in_root",
        "country",
        "filename",
        "hacs",
        "hide_default_branch",
        "homeassistant",
        "persistent_directory",
        "render_readme",
        "zip_release",
    }
    assert "name" in hacs
    assert set(hacs) <= allowed


def test_license_is_present() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
