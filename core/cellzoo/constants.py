"""Settings in one place: the version, environment variable names and the name patterns.

Environment variables are read at call time (never cached at import), so a process or a test
that sets one later is obeyed.
"""

from __future__ import annotations

import os
import re

__version__ = "0.1.0"

#: entry-point group of cellzoo plugins
ENTRY_POINT_GROUP = "cellzoo"

# -- environment variables -------------------------------------------------------------------
#: the folder that holds cellzoo's checkpoints by name (default: the user cache folder)
HOME_ENV = "CELLZOO_HOME"
#: folders of offline bundles (``cellzoo bundle``), separated by ``os.pathsep``
OFFLINE_DIR_ENV = "CELLZOO_OFFLINE_DIR"
#: extra folders of registry TOML files, separated by ``os.pathsep``
REGISTRY_PATH_ENV = "CELLZOO_REGISTRY_PATH"
#: re-raise a plugin's import or hook error instead of recording it
STRICT_PLUGINS_ENV = "CELLZOO_STRICT_PLUGINS"
#: entry-point names of plugins not to load, comma-separated
DISABLE_PLUGINS_ENV = "CELLZOO_DISABLE_PLUGINS"
#: huggingface_hub's own variables, which cellzoo also reads at call time
HF_ENDPOINT_ENV = "HF_ENDPOINT"
HF_OFFLINE_ENV = "HF_HUB_OFFLINE"

_TRUE = frozenset({"1", "on", "yes", "true"})

# -- name patterns ---------------------------------------------------------------------------
#: a pretrained checkpoint: ``arch.tag``
CHECKPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.[A-Za-z0-9][A-Za-z0-9_-]*$")
#: a Hub repository: ``ORG/NAME``
REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
#: a full git commit hash
COMMIT = re.compile(r"^[0-9a-f]{40}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def env_flag(name: str) -> bool:
    """Whether variable ``name`` is switched on (``1``, ``on``, ``yes``, ``true``; any case)."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def env_list(name: str, sep: str = os.pathsep) -> list[str]:
    """The non-empty, stripped items of variable ``name`` split at ``sep``."""
    return [item.strip() for item in os.environ.get(name, "").split(sep) if item.strip()]


def hub_endpoint(endpoint: str | None = None) -> str:
    """``endpoint``, else ``$HF_ENDPOINT`` as it is now, else huggingface_hub's (read at its import)."""
    from huggingface_hub import constants

    return (endpoint or os.environ.get(HF_ENDPOINT_ENV) or constants.ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    """Whether downloads are forbidden (``HF_HUB_OFFLINE`` now, or when huggingface_hub was imported)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or env_flag(HF_OFFLINE_ENV)
