"""Check an exported model against the golden set of the artifact it came from (``cellzoo verify``)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import ArtifactError, ConfigError, IntegrityError
from .session import Session


def weights_sha256(tensors: Mapping[str, np.ndarray]) -> str:
    """A content hash of weights: sha256 of their safetensors serialisation without metadata.

    The file hash of ``model.safetensors`` names the file; this names the numbers, and is the
    same for the same arrays whatever metadata a save wrote beside them.
    """
    from safetensors.numpy import save

    arrays = {str(k): np.ascontiguousarray(v) for k, v in sorted(tensors.items())}
    return hashlib.sha256(save(arrays)).hexdigest()


def verify_onnx(
    path: str | os.PathLike[str],
    artifact_dir: str | os.PathLike[str],
    *,
    device: str = "cpu",
    atol: float | None = None,
    rtol: float | None = None,
    strict: bool = False,
):
    """Run the artifact's golden inputs (``test/io.safetensors``) through ``path`` with onnxruntime.

    The ONNX file must name the artifact's ``model.safetensors`` sha256 as its parent (else
    :class:`~cellzoo.errors.IntegrityError`: it was exported from other weights). Tolerances
    default to the looser of the artifact's golden tolerance and the one validated at export
    (an fp16 export declares its own). Returns a :class:`cellzoo.artifacts.VerifyReport`; with
    ``strict=True`` a failure raises :class:`~cellzoo.errors.IntegrityError`.
    """
    from ..artifacts import GOLDEN_FILE, VerifyReport, check_file, compare_output, read_config, read_golden

    path, artifact_dir = Path(path).expanduser(), Path(artifact_dir).expanduser()
    session = Session(path, device=device)
    info = session.info
    if not info.is_cellzoo:
        raise ArtifactError(f"{path} is not a cellzoo export; only a file written by `cellzoo export` names its parent")
    config = read_config(artifact_dir)
    _check_parent(path, artifact_dir, info.parent, config)
    if info.input_state != info.contract_state:
        raise ConfigError(
            f"{path} takes {info.input_state} (a --from-counts export) but the golden inputs are "
            f"{info.contract_state}; verify the model.onnx exported beside it"
        )
    golden_path = artifact_dir / GOLDEN_FILE
    meta = config["files"].get(GOLDEN_FILE)
    if meta is None or not golden_path.is_file():
        raise ArtifactError(f"{artifact_dir} has no golden set ({GOLDEN_FILE}); re-save it with cellzoo.save")
    check_file(golden_path, meta, name=GOLDEN_FILE)
    inputs, expected = read_golden(golden_path)
    if info.generator is None and session.input_name not in inputs and "x" in inputs:
        inputs = {session.input_name: inputs["x"]}  # a golden set written before the graph input was renamed
    missing = [n for n in session.input_names if n not in inputs]
    if missing:
        raise ArtifactError(f"{golden_path} has no input named {missing[0]!r} (inputs: {sorted(inputs)})")
    recorded = config.get("golden") or {}
    atol = float(atol if atol is not None else max(recorded.get("atol", 1e-5), info.tolerance.get("atol", 0.0)))
    rtol = float(rtol if rtol is not None else max(recorded.get("rtol", 1e-4), info.tolerance.get("rtol", 0.0)))
    if info.upscaler is not None:  # one graph per scale: compare with that scale's golden output
        scale = int(info.upscaler["scale"])
        if f"x{scale}" not in expected:
            raise ArtifactError(f"{golden_path} has no ×{scale} output (outputs: {sorted(expected)})")
        expected = {"sr": expected[f"x{scale}"]}
        got = session.run_feeds({n: inputs[n] for n in session.input_names})
    elif info.generator is None:
        got = session.run(np.asarray(inputs[session.input_name], dtype=np.float32))
    else:
        got = session.run_feeds({n: inputs[n] for n in session.input_names})
    n_cells = len(inputs[session.input_names[0]])
    report = VerifyReport(source=f"onnx:{path}", n=n_cells, atol=atol, rtol=rtol)
    for name in sorted(set(expected) | set(got)):
        report.checks.append(compare_output(name, got.get(name), expected.get(name), atol, rtol))
    if strict and not report.passed:
        raise IntegrityError(f"{path} does not reproduce the golden outputs of {artifact_dir}.\n{report.summary()}")
    return report


def _check_parent(path: Path, artifact_dir: Path, parent: Mapping[str, object], config: Mapping[str, object]) -> None:
    """The ONNX file must come from these weights: the same file hash, or the same numbers."""
    from ..artifacts import WEIGHTS_FILE, read_safetensors

    recorded = (config["files"].get(WEIGHTS_FILE) or {}).get("sha256")
    if parent.get("sha256") and parent.get("sha256") == recorded:
        return
    weights = parent.get("weights_sha256")
    if weights and weights == weights_sha256(read_safetensors(artifact_dir / WEIGHTS_FILE)):
        return
    raise IntegrityError(
        f"{path} was exported from other weights than those in {artifact_dir} (ONNX parent sha256 "
        f"{parent.get('sha256') or 'unsaved'}, weights {weights}; artifact {recorded}): they are different models. "
        f"Export this artifact again with `cellzoo export local-dir:{artifact_dir} -o DIR`"
    )
