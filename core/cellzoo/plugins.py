"""Plugin discovery: entry points of group ``cellzoo``, each isolated from the others.

A plugin whose import or hook fails is recorded with its exception and skipped, so one broken
plugin never makes the zoo unusable; ``CELLZOO_STRICT_PLUGINS=1`` re-raises instead, and
``CELLZOO_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from . import builtin, hookspecs
from .constants import DISABLE_PLUGINS_ENV, ENTRY_POINT_GROUP, STRICT_PLUGINS_ENV, env_flag, env_list
from .errors import PluginError
from .specs import Contribution, DatasetSpec, LossWeightingSpec, MetricSpec, ModelSpec, TaskSpec

BUILTIN = "cellzoo.builtin"

#: hook name → (kind used in messages, spec type)
KINDS: dict[str, tuple[str, type]] = {
    "cellzoo_models": ("model", ModelSpec),
    "cellzoo_datasets": ("dataset", DatasetSpec),
    "cellzoo_metrics": ("metric", MetricSpec),
    "cellzoo_tasks": ("task", TaskSpec),
    "cellzoo_loss_weightings": ("loss weighting", LossWeightingSpec),
}


@dataclass
class PluginInfo:
    """What ``cellzoo plugins`` shows about one plugin."""

    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    contributions: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _strict() -> bool:
    return env_flag(STRICT_PLUGINS_ENV)


def _disabled() -> set[str]:
    return set(env_list(DISABLE_PLUGINS_ENV, ","))


class ZooPluginManager:
    """A pluggy manager plus the per-plugin bookkeeping and the catalogue of contributions."""

    def __init__(self, discover: bool = True):
        self.pm = pluggy.PluginManager("cellzoo")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self._catalog: dict[str, dict[str, Contribution]] | None = None
        self.register(builtin, name=BUILTIN, distribution="cellzoo")
        if discover:
            self.load_entry_points()

    # -- registration ------------------------------------------------------------------------
    def register(
        self,
        plugin: ModuleType | Any,
        name: str | None = None,
        distribution: str | None = None,
        version: str | None = None,
    ) -> str:
        """Register a module or object implementing cellzoo hooks (tests use this directly)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if name in self.info and self.pm.get_plugin(name) is not None:
            raise PluginError(f"a plugin named {name!r} is already registered")
        if version is None and distribution is not None:
            with contextlib.suppress(md.PackageNotFoundError):
                version = md.version(distribution)
        self.pm.register(plugin, name=name)
        self.info[name] = PluginInfo(
            name=name,
            distribution=distribution,
            version=version,
            module=getattr(plugin, "__name__", None),
        )
        self._catalog = None
        return name

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.info.pop(name, None)
        self._catalog = None

    def load_entry_points(self) -> None:
        blocked = _disabled()
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self.info:
                continue
            dist = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            if ep.name in blocked:
                self.info[ep.name] = PluginInfo(
                    ep.name, dist, version, ep.value, errors=[f"disabled by {DISABLE_PLUGINS_ENV}"]
                )
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not take the zoo down
                self._record_failure(ep.name, dist, version, ep.value, exc)
                continue
            self.register(plugin, name=ep.name, distribution=dist, version=version)

    def _record_failure(self, name, dist, version, module, exc: BaseException) -> None:
        if _strict():
            raise PluginError(f"plugin {name!r} ({dist}) failed to load: {exc!r}") from exc
        info = self.info.setdefault(name, PluginInfo(name, dist, version, module))
        info.errors.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}".strip())

    # -- the catalogue ------------------------------------------------------------------------
    def catalog(self) -> dict[str, dict[str, Contribution]]:
        """kind → name → :class:`Contribution`, built once and cached."""
        if self._catalog is not None:
            return self._catalog
        gathered: dict[str, list[tuple[str, Any]]] = {}  # plugin → [(kind, spec)]
        failed: set[str] = set()
        for hook_name, (kind, spec_type) in KINDS.items():
            for impl in reversed(getattr(self.pm.hook, hook_name).get_hookimpls()):
                name = impl.plugin_name
                if name in failed:
                    continue
                try:
                    specs = list(impl.function() or [])
                    for spec in specs:
                        if not isinstance(spec, spec_type):
                            raise TypeError(
                                f"{hook_name}() returned a {type(spec).__name__}, expected {spec_type.__name__}"
                            )
                except Exception as exc:  # skip the whole plugin, keep the zoo usable
                    info = self.info[name]
                    self._record_failure(name, info.distribution, info.version, info.module, exc)
                    failed.add(name)
                    continue
                gathered.setdefault(name, []).extend((kind, spec) for spec in specs)

        catalog: dict[str, dict[str, Contribution]] = {kind: {} for kind, _ in KINDS.values()}
        for name, items in gathered.items():
            if name in failed:
                continue
            info = self.info[name]
            info.contributions = {}
            for kind, spec in items:
                prior = catalog[kind].get(spec.name)
                if prior is not None:
                    raise PluginError(
                        f"{kind} name {spec.name!r} is provided twice: by plugin {prior.plugin!r} "
                        f"(distribution {prior.distribution}) and by plugin {name!r} "
                        f"(distribution {info.distribution}). Uninstall one of them or block it "
                        f"with CELLZOO_DISABLE_PLUGINS={name}."
                    )
                catalog[kind][spec.name] = Contribution(spec, name, info.distribution, info.version)
                info.contributions.setdefault(kind, []).append(spec.name)
        self._catalog = catalog
        return catalog

    def plugins(self) -> list[PluginInfo]:
        self.catalog()
        return sorted(self.info.values(), key=lambda i: (i.name != BUILTIN, i.name))


_current: ZooPluginManager | None = None


def get_plugin_manager() -> ZooPluginManager:
    """The process-wide manager, discovering installed plugins on first use."""
    global _current
    if _current is None:
        _current = ZooPluginManager(discover=True)
    return _current


@contextlib.contextmanager
def use_plugin_manager(manager: ZooPluginManager) -> Iterator[ZooPluginManager]:
    """Make ``manager`` the current one inside the block (tests and embedding applications)."""
    global _current
    previous, _current = _current, manager
    try:
        yield manager
    finally:
        _current = previous
