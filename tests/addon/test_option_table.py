"""One declaration per option: config.yaml, translations, DOCS.md, environment and flags follow it.

The table is :data:`homeiq_addon.settings.OPTIONS`; each test here fails when one of the places
an option shows up drifts from it (a range, a default, a choice, a missing entry).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeiq_addon.__main__ import build_parser
from homeiq_addon.settings import OPTIONS, Option, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
ADDON_OPTIONS = [spec for spec in OPTIONS.values() if spec.in_addon]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    return data


def test_config_yaml_schema_is_the_table(config: dict[str, Any]) -> None:
    expected = {spec.name: spec.schema_element for spec in ADDON_OPTIONS}
    assert config["schema"] == expected


def test_config_yaml_defaults_are_the_table(config: dict[str, Any]) -> None:
    expected = {spec.name: spec.default for spec in ADDON_OPTIONS if not spec.optional}
    assert config["options"] == expected
    # Types too: 0.9 vs 1 or "0" vs 0 would compare unequal above only for some values.
    assert {k: type(v) for k, v in config["options"].items()} == {k: type(v) for k, v in expected.items()}


def test_translations_name_and_describe_every_addon_option_and_nothing_else() -> None:
    translations = yaml.safe_load((ROOT / "translations/en.yaml").read_text(encoding="utf-8"))
    configuration = translations["configuration"]
    assert set(configuration) == {spec.name for spec in ADDON_OPTIONS}
    for name, entry in configuration.items():
        assert entry.get("name") and entry.get("description"), name


def test_docs_table_gives_every_addon_option_with_its_default() -> None:
    """DOCS.md's options table: rows like "| `threads` | `0` | ..." or several options with
    their defaults in the same order ("| `max_texts`, `max_chars` | 256, 2000 | ...")."""
    docs = (ROOT / "DOCS.md").read_text(encoding="utf-8")
    defaults: dict[str, str] = {}
    for row in re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \| ([^|]+) \|", docs, flags=re.M):
        names = re.findall(r"`([a-z_]+)`", row[0])
        values = [v.strip().strip("`") for v in row[1].split(",")]
        if len(values) != len(names):  # one text for all ("see above")
            values = [row[1].strip()] * len(names)
        defaults |= dict(zip(names, values, strict=True))
    for spec in ADDON_OPTIONS:
        assert spec.name in defaults, f"DOCS.md's options table has no row for {spec.name}"
        shown = defaults[spec.name]
        if shown == "see above":  # the model ids, named in "How it works"
            assert f"`{spec.default}`" in docs, spec.name
        else:
            assert shown == json.dumps(spec.default).strip('"'), (spec.name, shown)


def _other_value(spec: Option, tmp_path: Path) -> Any:
    """A valid value that is not the default, as options.json would hold it."""
    if spec.choices:
        return next(choice for choice in spec.choices if choice != spec.default)
    if spec.kind is bool:
        return not spec.default
    if spec.kind in (int, float):
        assert spec.maximum is not None and spec.maximum != spec.default, spec.name
        return spec.maximum
    if spec.kind is Path:
        return str(tmp_path / "elsewhere")
    return "x" * int(spec.minimum or 1) if spec.name == "token" else f"owner/{spec.name}"


def _read_back(settings: Settings, spec: Option) -> Any:
    holder = getattr(settings, spec.section) if spec.section else settings
    value = getattr(holder, spec.name)
    assert isinstance(value, Path) == (spec.kind is Path), (spec.name, value)
    return str(value) if isinstance(value, Path) else value


@pytest.mark.parametrize("name", list(OPTIONS))
def test_every_option_reaches_settings_from_each_source(name: str, tmp_path: Path) -> None:
    spec = OPTIONS[name]
    value = _other_value(spec, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    base = {} if name == "data_dir" else {"data_dir": str(data)}

    environ = {spec.env: str(value).lower() if spec.kind is bool else str(value)}
    assert spec.env == "HOMEIQ_" + name.upper()
    assert _read_back(load_settings(base, environ=environ), spec) == value

    flag = [spec.flag] if spec.kind is bool else [spec.flag, str(value)]
    args = vars(build_parser().parse_args(["info", *flag]))
    cli = {k: v for k, v in args.items() if k not in {"command", "roles", "timeout"}}
    assert _read_back(load_settings({**cli, **base}, environ={}), spec) == value

    if name != "data_dir":  # the data dir decides where options.json is read from
        (data / "options.json").write_text(json.dumps({name: value}))
        assert _read_back(load_settings(base, environ={}), spec) == value


NUMBERS = [spec.name for spec in OPTIONS.values() if spec.kind in (int, float)]


@pytest.mark.parametrize("name", NUMBERS)
def test_numbers_outside_the_declared_range_are_refused_by_every_source(name: str, tmp_path: Path) -> None:
    spec = OPTIONS[name]
    assert spec.minimum is not None and spec.maximum is not None, "every number needs a range"
    step = 1 if spec.kind is int else 0.01
    for bad in (spec.minimum - step, spec.maximum + step):
        with pytest.raises(SettingsError, match=name):
            load_settings({"data_dir": str(tmp_path), name: bad}, environ={})
        with pytest.raises(SettingsError, match=name):
            load_settings({"data_dir": str(tmp_path)}, environ={spec.env: str(bad)})
        (tmp_path / "options.json").write_text(json.dumps({name: bad}))
        with pytest.raises(SettingsError, match=name):
            load_settings({"data_dir": str(tmp_path)}, environ={})
        (tmp_path / "options.json").unlink()
    for good in (spec.minimum, spec.maximum):
        load_settings({"data_dir": str(tmp_path), name: good}, environ={})


def test_schema_elements_use_the_supervisor_syntax() -> None:
    assert OPTIONS["threads"].schema_element == "int(0,64)"
    assert OPTIONS["max_chars"].schema_element == "int(100,20000)"
    assert OPTIONS["dedupe_threshold"].schema_element == "float(0.5,1.0)?"
    assert OPTIONS["profile"].schema_element == "list(full|lite)"
    assert OPTIONS["prefetch"].schema_element == "bool"
    assert OPTIONS["embedding_model"].schema_element == "str"
