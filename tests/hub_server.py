"""A loopback stand-in for the Hugging Face Hub, for tests that must not touch the network.

The real ``huggingface_hub`` client talks to it over real HTTP (``http.server`` in a thread on
127.0.0.1, port 0). It implements the endpoints the client uses to create a repository, upload a
folder (every file "regular", so no LFS or Xet), validate a card's YAML and download a snapshot
at a branch, a pull-request ref or a commit::

    POST /api/repos/create
    POST /api/models/<repo>/preupload/<rev>
    POST /api/models/<repo>/commit/<rev>[?create_pr=1]
    POST /api/validate-yaml
    GET  /api/models/<repo>/revision/<rev>
    GET  /api/models/<repo>/tree/<rev>[/<path>]?recursive=true
    HEAD/GET /<repo>/resolve/<rev>/<path>

Commits are immutable snapshots (path → bytes) except through :meth:`HubServer.tamper`, which
simulates a corrupted file on the server. Private repositories need ``Authorization: Bearer
<token>``; every request is logged in :attr:`HubServer.requests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
#: licence ids this server accepts in card metadata (a subset of the Hub's list)
LICENSES = {"apache-2.0", "mit", "bsd-3-clause", "bsd-2-clause", "cc-by-4.0", "cc0-1.0", "gpl-3.0", "other"}


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    repo_id: str
    private: bool = False
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    n_prs: int = 0

    def resolve(self, revision: str) -> str | None:
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


class HubServer:
    """The fake Hub: start it, point ``HF_ENDPOINT`` at :attr:`url`, stop it."""

    def __init__(self, token: str | None = None):
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.downloads: dict[str, int] = {}
        self.validated: list[str] = []
        #: seconds each file GET sleeps before answering (to make concurrent pulls overlap)
        self.download_delay = 0.0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> HubServer:
        hub = self

        class Handler(_Handler):
            server_state = hub

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "the server is not running"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- state the tests inspect or change -------------------------------------------------------
    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return dict(repo.commits[repo.resolve(revision)])

    def head(self, repo_id: str, revision: str = "main") -> str:
        return self.repos[repo_id].resolve(revision)

    def tamper(self, repo_id: str, path: str, data: bytes, revision: str = "main") -> None:
        """Replace the bytes of ``path`` in an existing commit (what a corrupted server would serve)."""
        repo = self.repos[repo_id]
        repo.commits[repo.resolve(revision)][path] = data

    def count(self, method: str, fragment: str) -> int:
        return sum(1 for m, p in self.requests if m == method and fragment in p)

    # -- the Hub's behaviour ---------------------------------------------------------------------
    def create_repo(self, repo_id: str, private: bool) -> bool:
        with self._lock:
            if repo_id in self.repos:
                return False
            repo = Repo(repo_id, private=private)
            first = self._new_commit(repo, None, {".gitattributes": GITATTRIBUTES}, "initial commit")
            repo.refs["main"] = first
            self.repos[repo_id] = repo
            return True

    def commit(self, repo: Repo, revision: str, lines: list[dict], create_pr: bool) -> tuple[str, str | None]:
        with self._lock:
            parent = repo.resolve(revision)
            if parent is None:
                raise KeyError(revision)
            tree = dict(repo.commits[parent])
            summary = ""
            for line in lines:
                key, value = line["key"], line["value"]
                if key == "header":
                    summary = value.get("summary", "")
                elif key == "file":
                    tree[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    tree.pop(value["path"], None)
                elif key == "deletedFolder":
                    tree = {p: d for p, d in tree.items() if not p.startswith(value["path"].rstrip("/") + "/")}
                else:
                    raise ValueError(f"this test server does not take {key!r} commit lines")
            oid = self._new_commit(repo, parent, tree, summary)
            pr_ref = None
            if create_pr:
                repo.n_prs += 1
                pr_ref = f"refs/pr/{repo.n_prs}"
                repo.refs[pr_ref] = oid
            else:
                repo.refs[revision if revision in repo.refs else "main"] = oid
            return oid, pr_ref

    @staticmethod
    def _new_commit(repo: Repo, parent: str | None, tree: dict[str, bytes], message: str) -> str:
        digest = hashlib.sha1()
        digest.update((parent or "").encode() + message.encode() + str(len(repo.commits)).encode())
        for path in sorted(tree):
            digest.update(path.encode() + b"\0" + hashlib.sha1(tree[path]).digest())
        oid = digest.hexdigest()
        repo.commits[oid] = tree
        return oid


def validate_card_yaml(content: str) -> list[str]:
    """What the Hub's ``/api/validate-yaml`` would object to in a model card (a useful subset)."""
    if not content.startswith("---"):
        return ["the card has no YAML front matter"]
    try:
        _, front, _ = content.split("---", 2)
        meta = yaml.safe_load(front)
    except ValueError:
        return ["the YAML front matter is not closed by '---'"]
    except yaml.YAMLError as exc:
        return [f"the YAML front matter does not parse: {exc}"]
    if not isinstance(meta, dict):
        return ["the YAML front matter must be a mapping"]
    errors = []
    license_ = meta.get("license")
    if license_ is not None and license_ not in LICENSES:
        errors.append(f'"license" must be one of the Hub licence ids, got {license_!r}')
    if license_ == "other" and not meta.get("license_name"):
        errors.append('"license_name" is required when "license" is "other"')
    for key in ("tags", "datasets"):
        if key in meta and not (isinstance(meta[key], list) and all(isinstance(t, str) for t in meta[key])):
            errors.append(f'"{key}" must be a list of strings')
    for i, model in enumerate(meta.get("model-index") or []):
        if not isinstance(model, dict) or not isinstance(model.get("name"), str):
            errors.append(f'"model-index[{i}].name" must be a string')
            continue
        for j, result in enumerate(model.get("results") or []):
            where = f"model-index[{i}].results[{j}]"
            if not isinstance(result.get("task", {}).get("type"), str):
                errors.append(f'"{where}.task.type" must be a string')
            dataset = result.get("dataset") or {}
            if not isinstance(dataset.get("name"), str) or not isinstance(dataset.get("type"), str):
                errors.append(f'"{where}.dataset" needs string "name" and "type"')
            metrics = result.get("metrics")
            if not isinstance(metrics, list) or not metrics:
                errors.append(f'"{where}.metrics" must be a non-empty list')
                continue
            for k, metric in enumerate(metrics):
                if not isinstance(metric.get("type"), str):
                    errors.append(f'"{where}.metrics[{k}].type" must be a string')
                if not isinstance(metric.get("value"), (int, float)) or isinstance(metric.get("value"), bool):
                    errors.append(f'"{where}.metrics[{k}].value" must be a number')
    return errors


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: HubServer

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _error(self, status: int, code: str, message: str, head: bool = False) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(status, body, {"Content-Type": "application/json", "X-Error-Code": code,
                                  "X-Error-Message": message}, head=head)  # fmt: skip

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorised(self, repo: Repo | None) -> bool:
        token = self.server_state.token
        if repo is not None and not repo.private:
            return True
        if token is None:
            return True
        return self.headers.get("Authorization", "") == f"Bearer {token}"

    def _repo(self, repo_id: str, head: bool = False) -> Repo | None:
        repo = self.server_state.repos.get(repo_id)
        if repo is None or not self._authorised(repo):
            # like the Hub: a private repository without the right token looks absent
            self._error(401 if repo is not None else 404, "RepoNotFound", f"Repository not found: {repo_id}", head)
            return None
        return repo

    def _split(self) -> tuple[list[str], dict[str, list[str]]]:
        parts = urlsplit(self.path)
        return [unquote(p) for p in parts.path.split("/") if p], parse_qs(parts.query)

    # -- verbs ---------------------------------------------------------------------------------
    def do_POST(self) -> None:
        hub = self.server_state
        segments, query = self._split()
        hub.requests.append(("POST", self.path))
        body = self._body()
        if segments == ["api", "repos", "create"]:
            if hub.token is not None and self.headers.get("Authorization", "") != f"Bearer {hub.token}":
                return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            payload = json.loads(body)
            repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
            url = {"url": f"{hub.url}/{repo_id}"}
            created = hub.create_repo(repo_id, private=payload.get("visibility") == "private")
            return self._json(200 if created else 409, url if created else {**url, "error": "repo exists"})
        if segments == ["api", "validate-yaml"]:
            payload = json.loads(body)
            hub.validated.append(payload.get("content", ""))
            errors = validate_card_yaml(payload.get("content", ""))
            if errors:
                return self._send(400, "\n".join(errors).encode(), {"Content-Type": "text/plain"})
            return self._json(200, {"errors": [], "warnings": []})
        if len(segments) >= 6 and segments[:2] == ["api", "models"] and segments[4] in ("preupload", "commit"):
            repo_id, action, revision = "/".join(segments[2:4]), segments[4], "/".join(segments[5:])
            if hub.token is not None and self.headers.get("Authorization", "") != f"Bearer {hub.token}":
                return self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            repo = self._repo(repo_id)
            if repo is None:
                return None
            if repo.resolve(revision) is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            if action == "preupload":
                files = json.loads(body)["files"]
                answer = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                return self._json(200, {"files": answer, "commitOid": repo.resolve(revision)})
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            create_pr = query.get("create_pr", ["0"])[0] in ("1", "true")
            oid, pr_ref = hub.commit(repo, revision, lines, create_pr)
            pr_url = f"{hub.url}/{repo_id}/discussions/{pr_ref.rsplit('/', 1)[1]}" if pr_ref else None
            return self._json(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{oid}", "commitOid": oid,
                                    "pullRequestUrl": pr_url})  # fmt: skip
        return self._error(404, "NotFound", f"this test server has no POST {self.path}")

    def do_HEAD(self) -> None:
        self._get(head=True)

    def do_GET(self) -> None:
        self._get(head=False)

    def _get(self, head: bool) -> None:
        hub = self.server_state
        segments, query = self._split()
        hub.requests.append(("HEAD" if head else "GET", self.path))
        if len(segments) >= 6 and segments[:2] == ["api", "models"] and segments[4] in ("revision", "tree"):
            repo = self._repo("/".join(segments[2:4]), head)
            if repo is None:
                return None
            revision = segments[5]
            oid = repo.resolve(revision)
            if oid is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            tree = repo.commits[oid]
            if segments[4] == "revision":
                return self._json(200, {"id": repo.repo_id, "sha": oid, "private": repo.private,
                                        "siblings": [{"rfilename": p} for p in sorted(tree)]})  # fmt: skip
            prefix = "/".join(segments[6:])
            return self._json(200, list(_tree_entries(tree, prefix, query.get("recursive", ["false"])[0] == "true")))
        if len(segments) >= 5 and segments[2] == "resolve":
            repo = self._repo("/".join(segments[:2]), head)
            if repo is None:
                return None
            revision, path = segments[3], "/".join(segments[4:])
            oid = repo.resolve(revision)
            if oid is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            data = repo.commits[oid].get(path)
            headers = {"X-Repo-Commit": oid}
            if data is None:
                self.send_response(404)
                for key, value in {**headers, "X-Error-Code": "EntryNotFound", "Content-Length": "0"}.items():
                    self.send_header(key, value)
                self.end_headers()
                return None
            if not head:
                with hub._lock:
                    hub.downloads[f"{repo.repo_id}/{path}"] = hub.downloads.get(f"{repo.repo_id}/{path}", 0) + 1
                if hub.download_delay:
                    time.sleep(hub.download_delay)
            headers.update({"ETag": f'"{git_blob_oid(data)}"', "Content-Type": "application/octet-stream"})
            return self._send(200, data, headers, head=head)
        return self._error(404, "NotFound", f"this test server has no GET {self.path}", head)


def _tree_entries(tree: dict[str, bytes], prefix: str, recursive: bool) -> Iterator[dict]:
    prefix = prefix.strip("/")
    dirs: set[str] = set()
    for path in sorted(tree):
        if prefix and not path.startswith(prefix + "/"):
            continue
        rest = path[len(prefix) + 1 :] if prefix else path
        parts = rest.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(([prefix] if prefix else []) + parts[:depth])
            if folder not in dirs and (recursive or depth == 1):
                dirs.add(folder)
                yield {"type": "directory", "path": folder, "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0}
        if recursive or len(parts) == 1:
            yield {"type": "file", "path": path, "size": len(tree[path]), "oid": git_blob_oid(tree[path])}


@pytest.fixture
def hub_server(monkeypatch, tmp_path_factory):
    """A running :class:`HubServer` with huggingface_hub pointed at it and nothing else reachable.

    ``HF_ENDPOINT`` is read by huggingface_hub once, at import, so the constants derived from it
    are patched too; the Hub's own cache goes to a temporary folder.
    """
    from huggingface_hub import constants

    server = HubServer(token="hf_test_token").start()
    hf_home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# registry entries and data for the hub, build and bundle tests
# ---------------------------------------------------------------------------------------------


def registry_toml(
    name: str = "majority.test",
    *,
    dataset: str = "data.h5ad",
    label_key: str = "cell_type",
    seed: int = 0,
    split: str = 'kind = "holdout"\ntest_fraction = 0.25\nseed = 0',
    config: str = "",
    epochs: int | None = None,
    repo_id: str | None = None,
    task: str = "annotate",
    extra: str = "",
) -> str:
    """The text of a valid registry file (unpublished) for a test checkpoint."""
    arch = name.split(".", 1)[0]
    lines = [
        "# a test checkpoint",
        "schema_version = 1",
        f'name = "{name}"',
        f'architecture = "{arch}"',
        f'task = "{task}"',
        'summary = "A test checkpoint."',
        'license = "mit"',
        'citation = "Nobody N. A test. (2026)."',
        'training_data = "a tiny synthetic dataset"',
        extra,
        "",
        "[recipe]",
        f'dataset = "{dataset}"',
        f'label_key = "{label_key}"',
        f"seed = {seed}",
    ]
    if epochs is not None:
        lines.append(f"epochs = {epochs}")
    lines += ["", "[recipe.split]", split, ""]
    if config:
        lines += ["[recipe.config]", config, ""]
    lines += ["[hub]", f'repo_id = "{repo_id or "testorg/" + name}"', ""]
    return "\n".join(lines)


def write_registry_entry(directory, name: str = "majority.test", **kwargs):
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.toml"
    path.write_text(registry_toml(name, **kwargs), encoding="utf-8")
    return path


def tiny_adata(n_cells: int = 60, n_genes: int = 12, seed: int = 0, weights=(0.5, 0.3, 0.2)):
    """Counts with three cell types of unequal size and a marker gene block per type."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    classes = np.array(["T cell", "B cell", "NK cell"])
    labels = rng.choice(len(classes), size=n_cells, p=np.asarray(weights) / np.sum(weights))
    lam = np.ones((n_cells, n_genes))
    for c in range(len(classes)):
        lam[labels == c, c * 3 : c * 3 + 3] += 6.0
    X = rng.poisson(lam).astype(np.float32)
    obs = pd.DataFrame({"cell_type": pd.Categorical(classes[labels])}, index=[f"cell{i}" for i in range(n_cells)])
    var = pd.DataFrame(index=[f"GENE{j}" for j in range(n_genes)])
    return ad.AnnData(X=X, obs=obs, var=var)


def write_tiny_h5ad(path, **kwargs):
    adata = tiny_adata(**kwargs)
    adata.write_h5ad(path)
    return path


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """An isolated zoo: empty cache, a registry folder with ``majority.test``, a tiny dataset, no plugins.

    The plugin manager has discovery blocked (the built-in controls are all these tests need);
    the shipped registry stays visible next to the test folder, as it would for a user.
    """
    from types import SimpleNamespace

    from cellzoo.plugins import ZooPluginManager, use_plugin_manager

    home, registry = tmp_path / "home", tmp_path / "registry"
    monkeypatch.setenv("CELLZOO_HOME", str(home))
    monkeypatch.setenv("CELLZOO_REGISTRY_PATH", str(registry))
    monkeypatch.delenv("CELLZOO_OFFLINE_DIR", raising=False)
    data = write_tiny_h5ad(tmp_path / "data.h5ad")
    write_registry_entry(registry, "majority.test", dataset=str(data))
    with use_plugin_manager(ZooPluginManager(discover=False)) as pm:
        yield SimpleNamespace(home=home, models=home / "models", registry=registry, data=data, tmp=tmp_path, pm=pm)
