"""Dask clusters by name: ``local``, ``local:N`` or a scheduler's address; their workers checked against this process.

cellzoo does not run its own cluster: ``cellzoo run --dask`` hands independent pieces of work
(chunks of cells) to `dask.distributed
<https://distributed.dask.org>`_, the engine scverse uses for out-of-core AnnData. ``local[:N]``
starts a :class:`distributed.LocalCluster` of ``N`` single-threaded worker processes (default:
the CPUs this process may use) for the length of the call; an address (``tcp://host:8786`` or
``host:8786``) connects to a running scheduler, whose workers must see the same files at the same
paths and run the same versions of the packages that make the results (checked at start).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import Any

from .errors import ClusterError, ConfigError

#: the packages whose versions decide a result; a worker running other versions is refused
RESULT_PACKAGES = ("cellzoo", "numpy", "scipy", "anndata", "h5py", "onnxruntime", "onnxruntime-gpu", "torch",
                   "scikit-learn", "dask", "distributed")  # fmt: skip
_LOCAL = re.compile(r"^local(?::(\d+))?$")
#: seconds to wait for a scheduler at an address
CONNECT_TIMEOUT = 20


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(
            "--dask needs dask.distributed, which is not installed: pip install 'cellzoo[dask]' "
            "(dask[array] and distributed)"
        ) from exc
    return distributed


def package_versions(packages: Sequence[str] = RESULT_PACKAGES) -> dict[str, str | None]:
    """Python's ``major.minor`` and the installed version of each of ``packages`` (``None``: absent)."""
    versions: dict[str, str | None] = {"python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def version_mismatches(local: dict[str, str | None], workers: dict[str, dict[str, str | None]]) -> list[str]:
    """``"<worker>: <package> <theirs> (here <ours>)"`` for every package a worker has in another version."""
    lines = []
    for worker, theirs in sorted(workers.items()):
        for name, ours in local.items():
            if theirs.get(name) != ours:
                lines.append(f"{worker}: {name} {theirs.get(name) or 'not installed'} (here {ours or 'not installed'})")
    return lines


def check_workers(client: Any, packages: Sequence[str] = RESULT_PACKAGES) -> int:
    """The number of workers of ``client``'s cluster, after checking that they run this process's versions
    of ``packages``."""
    workers = client.run(package_versions, tuple(packages))
    if not workers:
        raise ClusterError(
            f"the Dask cluster at {client.scheduler.address} has no workers; start some (dask worker ADDRESS)"
        )
    wrong = version_mismatches(package_versions(tuple(packages)), workers)
    if wrong:
        raise ClusterError(
            "the Dask workers run other package versions than this process, so their results would differ: "
            + "; ".join(wrong[:8])
            + (f" (and {len(wrong) - 8} more)" if len(wrong) > 8 else "")
            + ". Install the same versions on every worker (one environment for the cluster)"
        )
    return len(workers)


def parse_scheduler(spec: str) -> tuple[str, int | None]:
    """``("local", N)`` for ``local`` / ``local:N`` (``N`` ``None``: the CPUs), else ``("address", None)``."""
    text = str(spec).strip()
    match = _LOCAL.match(text)
    if match:
        n = int(match.group(1)) if match.group(1) else None
        if n is not None and n < 1:
            raise ConfigError(f"--dask {spec}: a local cluster needs at least 1 worker (local:1, local:2, …)")
        return "local", n
    if text.startswith("local"):
        raise ConfigError(f"--dask {spec!r} is not local, local:N (N workers) or a scheduler address (tcp://host:8786)")
    if not re.match(r"^(tcp|tls|inproc|ucx|ws|wss)://", text) and not re.match(r"^[\w.\-]+:\d+$", text):
        raise ConfigError(
            f"--dask {spec!r} is neither local[:N] nor a scheduler address; give local, local:2 or tcp://host:8786"
        )
    return "address", None


def local_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextmanager
def dask_client(spec: str, packages: Sequence[str] = RESULT_PACKAGES) -> Iterator[Any]:
    """A :class:`distributed.Client` for ``spec`` (see the module), its workers' versions of ``packages``
    checked; a local cluster is closed after."""
    kind, n = parse_scheduler(spec)
    distributed = _distributed()
    if kind == "local":
        n = n or local_workers()
        # one thread per worker: the work inside a task (onnxruntime, a training run) sets its own threads
        with (
            distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            check_workers(client, packages)
            yield client
        return
    try:
        client = distributed.Client(spec, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"cannot reach a Dask scheduler at {spec} within {CONNECT_TIMEOUT} s ({exc}); start one (dask scheduler) "
            "and its workers (dask worker ADDRESS), or use --dask local:N"
        ) from exc
    with client:
        check_workers(client, packages)
        yield client
