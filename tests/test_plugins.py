"""Plugin discovery: broken plugins are recorded and skipped, strict mode, blocking, clashes, types."""

from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cellzoo
from cellzoo import DatasetSpec, MetricSpec, ModelSpec, hookimpl
from cellzoo.errors import PluginError
from cellzoo.plugins import BUILTIN, ZooPluginManager, get_plugin_manager, use_plugin_manager

GOOD = """
from cellzoo import ModelSpec, hookimpl

@hookimpl
def cellzoo_models():
    return [ModelSpec("{model}", "annotate", builder="cellzoo.controls:Majority", summary="x")]
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path whose distributions are the only ones entry-point discovery sees."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))

    def entry_points(group=None, **params):
        found = [ep for dist in md.distributions(path=[str(root)]) for ep in dist.entry_points]
        return md.EntryPoints(ep for ep in found if group is None or ep.group == group)

    monkeypatch.setattr(md, "entry_points", entry_points)
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith("cz_"):
            del sys.modules[name]


def add_distribution(root: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("[cellzoo]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))


def add_module(root: Path, name: str, source: str) -> None:
    (root / f"{name}.py").write_text(textwrap.dedent(source))


# -- discovery -----------------------------------------------------------------------------------------


def test_discovered_plugin_is_listed_with_its_distribution(site):
    add_module(site, "cz_good", GOOD.format(model="good_model"))
    add_distribution(site, "cz-good", "1.2.3", {"good": "cz_good"})
    pm = ZooPluginManager(discover=True)
    with use_plugin_manager(pm):
        assert "good_model" in cellzoo.list_models()
    contribution = pm.catalog()["model"]["good_model"]
    assert (contribution.plugin, contribution.distribution, contribution.version) == ("good", "cz-good", "1.2.3")
    infos = {p.name: p for p in pm.plugins()}
    assert pm.plugins()[0].name == BUILTIN
    assert infos["good"].ok and infos["good"].contributions == {"model": ["good_model"]}
    assert infos["good"].module == "cz_good"


def test_a_plugin_that_fails_to_import_is_recorded_and_skipped(site):
    add_module(site, "cz_good", GOOD.format(model="good_model"))
    add_module(site, "cz_raises", "raise RuntimeError('boom at import')\n")
    add_distribution(site, "cz-good", "1.0", {"good": "cz_good"})
    add_distribution(site, "cz-broken", "0.1", {"missing": "cz_no_such_module", "raising": "cz_raises"})
    pm = ZooPluginManager(discover=True)
    infos = {p.name: p for p in pm.plugins()}
    assert infos["good"].ok
    assert not infos["missing"].ok and "ModuleNotFoundError" in infos["missing"].errors[0]
    assert "RuntimeError: boom at import" in infos["raising"].errors[0]
    assert (infos["raising"].distribution, infos["raising"].version) == ("cz-broken", "0.1")
    with use_plugin_manager(pm):
        assert "good_model" in cellzoo.list_models() and "majority" in cellzoo.list_models()


def test_strict_mode_re_raises_import_failures(site, monkeypatch):
    add_module(site, "cz_raises", "raise RuntimeError('boom at import')\n")
    add_distribution(site, "cz-broken", "0.1", {"raising": "cz_raises"})
    monkeypatch.setenv("CELLZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"plugin 'raising' \(cz-broken\) failed to load.*boom at import"):
        ZooPluginManager(discover=True)


def test_disabled_plugins_are_not_even_imported(site, monkeypatch):
    add_module(site, "cz_good", GOOD.format(model="good_model"))
    add_module(site, "cz_raises", "raise RuntimeError('boom at import')\n")
    add_distribution(site, "cz-mixed", "1.0", {"good": "cz_good", "raising": "cz_raises"})
    monkeypatch.setenv("CELLZOO_DISABLE_PLUGINS", " raising , good")
    pm = ZooPluginManager(discover=True)
    assert "cz_raises" not in sys.modules and "cz_good" not in sys.modules
    infos = {p.name: p for p in pm.plugins()}
    assert infos["raising"].errors == ["disabled by CELLZOO_DISABLE_PLUGINS"]
    assert "good_model" not in pm.catalog()["model"]
    monkeypatch.setenv("CELLZOO_DISABLE_PLUGINS", "raising")
    assert "good_model" in ZooPluginManager(discover=True).catalog()["model"]


def test_the_same_name_from_two_distributions_is_an_error_naming_both(site):
    add_module(site, "cz_one", GOOD.format(model="twin"))
    add_module(site, "cz_two", GOOD.format(model="twin"))
    add_distribution(site, "cz-one", "1.0", {"one": "cz_one"})
    add_distribution(site, "cz-two", "2.0", {"two": "cz_two"})
    pm = ZooPluginManager(discover=True)
    with pytest.raises(PluginError) as info:
        pm.catalog()
    message = str(info.value)
    assert "model name 'twin' is provided twice" in message
    assert "cz-one" in message and "cz-two" in message and "CELLZOO_DISABLE_PLUGINS=" in message


def test_a_plugin_may_not_shadow_a_builtin_name(zoo_pm):
    class Shadow:
        @hookimpl
        def cellzoo_metrics(self):
            return [MetricSpec("accuracy", "annotate", function=len)]

    zoo_pm.register(Shadow(), name="shadow", distribution="shadow-dist")
    with pytest.raises(PluginError, match="metric name 'accuracy' is provided twice") as info:
        zoo_pm.catalog()
    assert "(distribution cellzoo)" in str(info.value) and "(distribution shadow-dist)" in str(info.value)


# -- hooks that misbehave ----------------------------------------------------------------------------------


class Exploding:
    @hookimpl
    def cellzoo_models(self):
        raise RuntimeError("hook exploded")

    @hookimpl
    def cellzoo_metrics(self):
        return [MetricSpec("fine_metric", "annotate", function=len)]


def test_a_hook_that_raises_is_recorded_and_the_plugin_skipped(zoo_pm):
    zoo_pm.register(Exploding(), name="exploding", distribution="exploding-dist")
    catalog = zoo_pm.catalog()
    assert "fine_metric" not in catalog["metric"]  # the whole plugin is skipped, not just one hook
    assert "majority" in catalog["model"] and "accuracy" in catalog["metric"]
    info = {p.name: p for p in zoo_pm.plugins()}["exploding"]
    assert not info.ok and "RuntimeError: hook exploded" in info.errors[0]


def test_strict_mode_re_raises_hook_failures(zoo_pm, monkeypatch):
    monkeypatch.setenv("CELLZOO_STRICT_PLUGINS", "true")
    zoo_pm.register(Exploding(), name="exploding", distribution="exploding-dist")
    with pytest.raises(PluginError, match=r"plugin 'exploding' \(exploding-dist\).*hook exploded"):
        zoo_pm.catalog()


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (
            lambda: [DatasetSpec("d", ("annotate",), "x:y")],
            "cellzoo_models() returned a DatasetSpec, expected ModelSpec",
        ),
        (lambda: [{"name": "m", "task": "annotate"}], "cellzoo_models() returned a dict, expected ModelSpec"),
        (lambda: ModelSpec("m", "annotate", "x:y"), "TypeError"),
    ],
    ids=["other-spec", "dict", "not-a-list"],
)
def test_a_hook_returning_the_wrong_type_is_recorded(zoo_pm, returned, message):
    class Wrong:
        @hookimpl
        def cellzoo_models(self):
            return returned()

    zoo_pm.register(Wrong(), name="wrong", distribution="wrong-dist")
    assert "m" not in zoo_pm.catalog()["model"] and "d" not in zoo_pm.catalog()["dataset"]
    info = {p.name: p for p in zoo_pm.plugins()}["wrong"]
    assert message in info.errors[0]


def test_registering_a_name_twice_is_an_error(zoo_pm):
    zoo_pm.register(Exploding(), name="twice")
    with pytest.raises(PluginError, match="a plugin named 'twice' is already registered"):
        zoo_pm.register(Exploding(), name="twice")


def test_use_plugin_manager_restores_the_previous_one(zoo_pm):
    inner = ZooPluginManager(discover=False)
    with use_plugin_manager(inner):
        assert get_plugin_manager() is inner
    assert get_plugin_manager() is zoo_pm


# -- listing stays light -------------------------------------------------------------------------------------


def test_listing_every_installed_plugin_imports_no_torch_or_scanpy():
    code = textwrap.dedent(
        """
        import json, sys
        import cellzoo
        pm = cellzoo.get_plugin_manager()
        pm.catalog()
        cellzoo.list_models(); cellzoo.list_datasets(); cellzoo.list_metrics(); cellzoo.list_tasks()
        for name in cellzoo.list_models():
            cellzoo.model_spec(name)
        print(json.dumps({
            "heavy": [m for m in ("torch", "scanpy", "tensorflow", "jax") if m in sys.modules],
            "plugins": [p.name for p in pm.plugins()],
            "errors": {p.name: p.errors for p in pm.plugins() if p.errors},
        }))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], f"listing the zoo imported {result['heavy']} (plugins: {result['plugins']})"
    assert result["errors"] == {}, f"installed plugins failed to load: {result['errors']}"
