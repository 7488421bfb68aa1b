"""An onnxruntime session for an exported model: explicit providers and threads, no silent fallback.

onnxruntime lists the CUDA and TensorRT providers whenever its GPU build is installed, and when
one of them cannot start (no GPU, a driver or cuDNN mismatch) it logs an error and quietly runs
on the CPU. :class:`Session` asks ``session.get_providers()`` what is really in use and refuses
to go on if it is not what was requested, unless ``allow_cpu_fallback=True``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactError, CellzooError, ConfigError, InputError
from .metadata import ModelInfo, model_info

DEVICES = ("cpu", "cuda", "tensorrt", "auto")
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
#: batch sizes the TensorRT engine is optimised for (its profile); larger batches are split by callers
TRT_OPT_BATCH = 4096
TRT_MAX_BATCH = 16384
#: cells per onnxruntime call on the CPU when a larger batch is given (0: one call). Measured with
#: scANNA (765 genes, 2 threads): a call on 4,096 cells ran at ≈ 27k cells/s, blocks of 1,024 at
#: ≈ 36k — the activations of a block (a few MB per layer) stay in the last-level cache between
#: the graph's ops; blocks of 32–128 lose as much again to per-call overhead
CPU_BLOCK = 1024


class ProviderFallbackWarning(RuntimeWarning):
    """A GPU provider was requested, did not start, and the session runs on the CPU (accepted)."""


def default_threads() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise CellzooError(
            "onnxruntime is not installed; install the runtime with `pip install 'cellzoo[runtime]'` "
            "(onnxruntime-gpu on Linux x86_64, onnxruntime elsewhere)"
        ) from exc
    return onnxruntime


def _absolute(value: Any) -> Any:
    return str(Path(value).expanduser().resolve()) if isinstance(value, (str, os.PathLike)) else value


class Session:
    """Run an exported model with onnxruntime.

    ``device`` is ``"cpu"``, ``"cuda"``, ``"tensorrt"`` or ``"auto"`` (CUDA when it starts, else
    CPU). ``threads`` sets onnxruntime's intra-op threads (default: the CPUs this process may
    use); inter-op parallelism is off, as the graphs are chains. On the CPU a batch larger than
    ``cpu_block`` cells runs as consecutive blocks of that many (0: one call). ``genes`` /
    ``labels`` (lists or files) name the input columns and classes of an ONNX file that is not a
    cellzoo export. On a GPU the input and outputs go through IO binding.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: str = "cpu",
        threads: int | None = None,
        allow_cpu_fallback: bool = False,
        *,
        genes: str | os.PathLike[str] | Sequence[str] | None = None,
        labels: str | os.PathLike[str] | Sequence[str] | None = None,
        device_id: int = 0,
        spin: bool = True,
        cpu_block: int = CPU_BLOCK,
    ):
        ort = _onnxruntime()
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(2, "No such ONNX file", str(self.path))
        device = str(device).strip().lower()
        if device not in DEVICES:
            raise ConfigError(f"device {device!r} is not one of {', '.join(DEVICES)}")
        self.requested = device
        # how to open the same session elsewhere (a Dask worker: cellzoo.runtime.dask_chunks)
        self.settings: dict[str, Any] = {
            "device": device, "allow_cpu_fallback": bool(allow_cpu_fallback), "device_id": int(device_id),
            "spin": bool(spin), "cpu_block": int(cpu_block),
            "genes": _absolute(genes), "labels": _absolute(labels),
        }  # fmt: skip
        self.threads = int(threads) if threads else default_threads()
        if self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads!r}")
        if int(cpu_block) < 0:
            raise ConfigError(f"cpu_block must be 0 (one call per batch) or a number of cells, got {cpu_block!r}")
        self.cpu_block = int(cpu_block)

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # spinning threads keep cores busy between runs; off when another thread (a reader) needs them
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        options.log_severity_level = 3

        providers = self._providers(ort, device, device_id)
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/InvalidProtobuf types
            raise ArtifactError(f"onnxruntime cannot load {self.path}: {exc}") from exc

        self.providers: list[str] = list(self._session.get_providers())
        self.device = self._check_providers(device, allow_cpu_fallback)
        self.device_id = int(device_id)

        inputs = self._session.get_inputs()
        self.output_names = tuple(o.name for o in self._session.get_outputs())
        meta = self._session.get_modelmeta().custom_metadata_map
        generates = meta.get("cellzoo.task") == "generate"
        images = meta.get("cellzoo.task") == "upscale"
        if not generates and len(inputs) != 1:
            raise ArtifactError(
                f"{self.path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); a cellzoo model takes one "
                "cells × genes matrix"
            )
        graph_input = inputs[0]
        if images and len(graph_input.shape) != 4:
            raise ArtifactError(f"{self.path}: an up-scaler takes N × 3 × H × W images, not shape {graph_input.shape}")
        if not generates and not images and len(graph_input.shape) != 2:
            raise ArtifactError(
                f"{self.path}: the input {graph_input.name!r} has shape {graph_input.shape}, not cells × genes"
            )
        width = graph_input.shape[1] if len(graph_input.shape) == 2 else None
        self.info: ModelInfo = model_info(
            meta,
            path=str(self.path),
            input_name=graph_input.name,
            input_width=width,
            output_names=self.output_names,
            genes=genes,
            labels=labels,
        )
        if self.info.input_name != graph_input.name:
            raise ArtifactError(
                f"{self.path}: the metadata names the input {self.info.input_name!r} but the graph's input is "
                f"{graph_input.name!r}; the file was edited after export. Export it again."
            )
        if generates:
            self._check_generator_inputs(inputs)
        elif images:
            pass  # any height and width; the channels are checked by the graph
        elif isinstance(width, int) and width != len(self.info.genes):
            raise ArtifactError(
                f"{self.path}: the input takes {width} genes but the metadata lists {len(self.info.genes)}; the file "
                "was edited after export. Export it again."
            )
        missing = [n for n in self.info.output_names if n not in self.output_names]
        if missing:
            raise ArtifactError(f"{self.path}: the metadata names outputs {missing} that the graph does not have")
        self.input_name = graph_input.name
        self.input_names = tuple(i.name for i in inputs)
        self.n_genes = len(self.info.genes)
        self._binding = self.device != "cpu"

    def _check_generator_inputs(self, inputs: Sequence[Any]) -> None:
        generator = self.info.generator or {}
        names = [i.name for i in inputs]
        if names != list(generator["inputs"]):
            raise ArtifactError(
                f"{self.path}: the graph takes inputs {names} but its metadata says {generator['inputs']}; the file was "
                "edited after export. Export it again."
            )
        z = inputs[0]
        if len(z.shape) != 2 or (isinstance(z.shape[1], int) and z.shape[1] != generator["latent_dim"]):
            raise ArtifactError(
                f"{self.path}: the latent input z has shape {z.shape}, but the metadata says batch × "
                f"{generator['latent_dim']}; export the model again"
            )

    # -- providers ------------------------------------------------------------------------------
    def _providers(self, ort: Any, device: str, device_id: int) -> list[Any]:
        available = ort.get_available_providers()
        cuda = ("CUDAExecutionProvider", {"device_id": int(device_id)})
        if device == "cpu":
            return ["CPUExecutionProvider"]
        if device == "auto":
            return [cuda, "CPUExecutionProvider"] if PROVIDERS["cuda"] in available else ["CPUExecutionProvider"]
        wanted = PROVIDERS[device]
        if wanted not in available:
            raise ConfigError(
                f"--device {device} needs onnxruntime's {wanted}, which this onnxruntime build does not have "
                f"(it has {', '.join(available)}). Install onnxruntime-gpu (pip install onnxruntime-gpu, after "
                "uninstalling onnxruntime), or use --device cpu"
            )
        if device == "cuda":
            return [cuda, "CPUExecutionProvider"]
        from ..paths import home

        cache = home() / "tensorrt-engines"
        cache.mkdir(parents=True, exist_ok=True)
        # TensorRT builds an engine per input shape unless it is given the range of batch sizes up
        # front, which needs the input's name and width: read them from a CPU session first
        probe = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"]).get_inputs()

        def shapes(batch: int) -> str:
            return ",".join(f"{i.name}:{batch}" + "".join(f"x{d}" for d in i.shape[1:]) for i in probe)

        trt = {
            "device_id": int(device_id),
            "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache),
            "trt_profile_min_shapes": shapes(1),
            "trt_profile_opt_shapes": shapes(TRT_OPT_BATCH),
            "trt_profile_max_shapes": shapes(TRT_MAX_BATCH),
        }
        return [("TensorrtExecutionProvider", trt), cuda, "CPUExecutionProvider"]

    def _check_providers(self, device: str, allow_cpu_fallback: bool) -> str:
        active = self.providers[0] if self.providers else "none"
        if device in ("cpu", "auto"):
            return {v: k for k, v in PROVIDERS.items()}.get(active, "cpu")
        wanted = PROVIDERS[device]
        if active == wanted:
            return device
        message = (
            f"--device {device} was requested but onnxruntime runs {self.path.name} on {active} "
            f"(active providers: {', '.join(self.providers)}): {wanted} did not start. onnxruntime falls back "
            "silently; the reason is in its log line above (usually no visible GPU, a driver too old for this "
            "onnxruntime-gpu, or missing CUDA/cuDNN libraries). Check `nvidia-smi` and the CUDA versions "
            "onnxruntime-gpu needs, use --device cpu, or pass --allow-cpu-fallback to accept the slower device"
        )
        if not allow_cpu_fallback:
            raise ConfigError(message)
        warnings.warn(message, ProviderFallbackWarning, stacklevel=3)
        return {v: k for k, v in PROVIDERS.items()}.get(active, "cpu")

    # -- running -----------------------------------------------------------------------------------
    def run(self, x: Any, *, check: bool = True) -> dict[str, np.ndarray]:
        """Outputs by name for ``x`` (cells × the model's genes, in the graph's input state).

        ``check`` verifies the width and that every value is finite (a NaN would silently turn
        into NaN probabilities); the streaming code checks chunks itself and passes ``False``.
        A generator's graph takes latent noise instead: use :meth:`run_feeds` (or
        :func:`cellzoo.runtime.sample_cells`).
        """
        if self.info.task == "upscale":
            raise InputError(
                f"{self.path.name} up-scales images: use cellzoo.runtime.upscale_image(session, image) or "
                "`cellzoo upscale MODEL.onnx image.png --scale S -o out.png`"
            )
        if self.info.task == "generate":
            raise InputError(
                f"{self.path.name} is a generator: it takes latent noise ({', '.join(self.input_names)}), not cells; "
                "sample with cellzoo.runtime.sample_cells(session, n) or `cellzoo sample MODEL.onnx --n N -o out.h5ad`"
            )
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_genes:
            raise InputError(
                f"{self.path.name} takes a cells × {self.n_genes} matrix (the model's genes, in the order of its "
                f"metadata) but got shape {x.shape}; align the data to the model's genes first (cellzoo.runtime."
                "annotate_h5ad does this for an .h5ad)"
            )
        if check and not np.isfinite(x).all():
            rows = np.flatnonzero(~np.isfinite(x).all(axis=1))
            raise InputError(
                f"the input has NaN or infinite values in {len(rows)} cells (rows {', '.join(map(str, rows[:5]))}"
                f"{', …' if len(rows) > 5 else ''}); drop those cells or redo the preprocessing from raw counts"
            )
        return self.run_feeds({self.input_name: x})

    def run_feeds(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Outputs by name for the graph inputs ``feeds`` (every input, same number of rows), unchecked."""
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise InputError(f"{self.path.name} needs inputs {list(self.input_names)}; missing {missing}")
        feeds = {n: np.ascontiguousarray(feeds[n]) for n in self.input_names}
        rows = len(feeds[self.input_names[0]])
        if self.device == "tensorrt" and rows > TRT_MAX_BATCH:
            # the engine's profile ends at TRT_MAX_BATCH cells
            parts = [self._run_bound(_rows(feeds, i, i + TRT_MAX_BATCH)) for i in range(0, rows, TRT_MAX_BATCH)]
            return {name: np.concatenate([p[name] for p in parts]) for name in self.output_names}
        if self._binding:
            return self._run_bound(feeds)
        if self.cpu_block and rows > self.cpu_block:
            return self._run_blocked(feeds, rows)
        return dict(zip(self.output_names, self._session.run(None, feeds)))

    def _run_blocked(self, feeds: Mapping[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        # the graphs are row-wise, so blocks of cells give the same rows as one call, written into one output
        step = self.cpu_block
        first = self._session.run(None, _rows(feeds, 0, step))
        outputs = [np.empty((rows, *o.shape[1:]), dtype=o.dtype) for o in first]
        for out, part in zip(outputs, first):
            out[:step] = part
        for start in range(step, rows, step):
            for out, part in zip(outputs, self._session.run(None, _rows(feeds, start, start + step))):
                out[start : start + len(part)] = part
        return dict(zip(self.output_names, outputs))

    def _run_bound(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        # outputs stay on the device until one copy at the end; ORT would otherwise copy inside Run()
        binding = self._session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        for name in self.output_names:
            binding.bind_output(name, "cuda", self.device_id)
        self._session.run_with_iobinding(binding)
        return dict(zip(self.output_names, binding.copy_outputs_to_cpu()))

    def __call__(self, x: Any) -> dict[str, np.ndarray]:
        return self.run(x)

    def describe(self) -> str:
        if self.info.generator is not None:
            return (
                f"{self.path.name} ({self.info.architecture} generator, latent {self.info.generator['latent_dim']} → "
                f"{self.n_genes} genes, {self.info.precision}) on {', '.join(self.providers)} with {self.threads} threads"
            )
        return (
            f"{self.path.name} ({self.info.architecture}, {self.n_genes} genes, "
            f"{len(self.info.labels) if self.info.labels else '?'} classes, {self.info.precision}) on "
            f"{', '.join(self.providers)} with {self.threads} threads"
        )

    def __repr__(self) -> str:
        return f"Session({str(self.path)!r}, device={self.device!r}, threads={self.threads})"

    @property
    def metadata(self) -> Mapping[str, str]:
        return self._session.get_modelmeta().custom_metadata_map


def _rows(feeds: Mapping[str, np.ndarray], start: int, stop: int) -> dict[str, np.ndarray]:
    return {name: value[start:stop] for name, value in feeds.items()}
