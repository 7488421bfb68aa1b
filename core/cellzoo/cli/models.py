"""``cellzoo train``, ``predict`` and ``verify``: a model's life from data to annotated cells."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import click

from ..paths import looks_like_path
from ._app import check_output_path, console, echo_json, gene_column_option, json_option, overwrite_option

# -- train ---------------------------------------------------------------------------------------


def parse_settings(
    _ctx: click.Context | None, _param: click.Parameter | None, values: tuple[str, ...]
) -> dict[str, Any]:
    """``KEY=VALUE`` pairs → dict; values are JSON when they parse (``3``, ``true``, ``[1,2]``), else text."""
    settings: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. --set epochs=20)", param_hint="--set")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        settings[key] = value
    return settings


def _recorded_label_key(adata: Any) -> str | None:
    """The label column the loader recorded: the dataset spec's, or the one a file declares in ``uns``."""
    meta = adata.uns.get("cellzoo") if hasattr(adata, "uns") else None
    if isinstance(meta, dict) and meta.get("label_key"):
        return str(meta["label_key"])
    return None


def fit_model(model: Any, data: Any, label_key: str | None) -> Any:
    """Fit ``model`` as its task's dispatch says (with labels for annotate and markers, without for discover)."""
    from ..registry import task_spec
    from ..tasks import dispatch_of

    if isinstance(data, dict) and set(data) == {"train", "test"}:
        data = data["train"]  # an image set with its own split: its test images stay unseen
    return dispatch_of(task_spec(model.spec.task)).fit(model, data, label_key)


def _shape_text(data: Any) -> str:
    if isinstance(data, dict):
        return f"{len(data['train'])} training and {len(data['test'])} test images"
    if isinstance(data, list):
        return f"{len(data)} images"
    shape = getattr(data, "shape", None)
    return f"{shape[0]:,} cells × {shape[1]:,} genes" if shape is not None and len(shape) == 2 else "the data"


def _quote(path: Path | str) -> str:
    return shlex.quote(str(path))


@click.command("train", short_help="Train a model on a dataset and save it.")
@click.argument("arch")
@click.option(
    "--dataset",
    "-d",
    required=True,
    help="A registered dataset name (see `cellzoo list -k datasets`) or an .h5ad path.",
)
@click.option("--label-key", "-l", default=None, help="Column of obs with the labels [default: the dataset's].")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    callback=parse_settings,
    help="Override a config field (repeatable; values parsed as JSON, e.g. --set epochs=20 --set lr=1e-3).",
)
@click.option(
    "--output",
    "-o",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Artifact directory [default: ./ARCH-DATASET].",
)
@overwrite_option
def train_command(
    arch: str, dataset: str, label_key: str | None, settings: dict[str, Any], out_dir: Path | None, overwrite: bool
) -> None:
    """Train architecture ARCH on a dataset; save it as an artifact directory.

    If a loss turns NaN, a model that kept its last good weights (the generators) is saved to
    OUT.last-good and the command fails; OUT itself is only ever a finished run.
    """
    from rich.markup import escape

    import cellzoo

    from ..errors import TrainingError
    from ._app import CliError

    out = console()
    # build first: an unknown architecture or config key fails before any data is read
    model = cellzoo.create_model(arch, **settings)
    stem = Path(dataset).stem if looks_like_path(dataset) else dataset
    out_dir = out_dir if out_dir is not None else Path.cwd() / f"{arch}-{stem}"
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(
            f"{out_dir} exists and is not empty; pass --overwrite to replace it or choose another directory with -o"
        )

    t0 = time.perf_counter()
    data = cellzoo.get_dataset(dataset, label_key=label_key)
    label_key = label_key or _recorded_label_key(data)
    out.print(f"loaded [bold]{escape(dataset)}[/]: {_shape_text(data)} ({time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    try:
        fit_model(model, data, label_key)
    except TrainingError as exc:
        if exc.kept is None or not getattr(model, "is_fitted", False):
            raise
        # the weights of the last good stretch go beside -o, never into it: OUT is for a finished run
        kept = Path(cellzoo.save(model, out_dir.with_name(out_dir.name + ".last-good"), overwrite=True))
        raise CliError(
            f"{exc}\nsaved the weights after {exc.kept} to {kept} (local-dir:{kept}); {out_dir} is untouched"
        ) from exc
    fit_seconds = time.perf_counter() - t0
    classes = getattr(model, "classes", None)
    detail = f", {len(classes)} classes from obs[{label_key!r}]" if classes else ""
    out.print(f"trained [bold]{escape(arch)}[/] on {_shape_text(data)}{escape(detail)} in {fit_seconds:.2f} s")

    from ..data.datasets import dataset_hash, images_hash

    if isinstance(data, (dict, list)):
        images = [*data["train"], *data["test"]] if isinstance(data, dict) else data
        parts = ["train"] * len(data["train"]) + ["test"] * len(data["test"]) if isinstance(data, dict) else []
        data_hash = images_hash(images, parts or ["image"] * len(images))
    else:
        data_hash = dataset_hash(data)
    recipe = {
        "dataset": dataset,
        "label_key": label_key,
        "config_overrides": settings,
        "data_hash": data_hash,
        "fit_seconds": round(fit_seconds, 3),
        "command": "cellzoo train "
        + " ".join(
            [shlex.quote(arch), "--dataset", shlex.quote(dataset)]
            + (["--label-key", shlex.quote(label_key)] if label_key else [])
            + [f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in settings.items()]
        ),
    }
    t0 = time.perf_counter()
    saved = Path(cellzoo.save(model, out_dir, overwrite=overwrite, recipe=recipe))
    out.print(f"saved to [bold]{escape(str(saved))}[/] ({time.perf_counter() - t0:.2f} s)")
    out.print("use it:")
    if model.spec.task == "annotate":
        query = _quote(dataset) if looks_like_path(dataset) else "data.h5ad"
        out.print(
            f"  cellzoo predict local-dir:{_quote(saved)} {query} -o annotated.h5ad", soft_wrap=True, markup=False
        )
    out.print(
        f"  python -c 'import cellzoo; model = cellzoo.load(\"local-dir:{saved}\")'", soft_wrap=True, markup=False
    )


# -- predict -------------------------------------------------------------------------------------


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


#: tasks whose ``predict(adata)`` returns a result that writes itself into the AnnData
PREDICT_TASKS = ("annotate", "discover")


def _require_predictor(model: Any, source: str) -> None:
    from ..errors import ProtocolError

    task = model.spec.task
    if task not in PREDICT_TASKS or not callable(getattr(model, "predict", None)):
        raise ProtocolError(
            f"{source} is a {task!r} model; `cellzoo predict` labels cells and needs a model of task "
            f"{' or '.join(repr(t) for t in PREDICT_TASKS)} (see `cellzoo list --task annotate`)"
        )


@click.command("predict")
@click.argument("model_name", metavar="MODEL")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Annotated .h5ad to write.",
)
@overwrite_option
@click.option(
    "--min-overlap",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Smallest share of the model's genes that DATA must have, 0-1 [default: the model's own].",
)
@click.option("--chunk-size", type=click.IntRange(1), default=None, help="Cells per chunk [default: ~32 MiB of input].")
@gene_column_option
def predict_command(
    model_name: str,
    data: Path,
    out_path: Path,
    overwrite: bool,
    min_overlap: float | None,
    chunk_size: int | None,
    gene_column: str | None,
) -> None:
    """Annotate the cells of DATA.h5ad with MODEL; write OUT.h5ad.

    MODEL is a pretrained name (arch.tag) or local-dir:PATH of a trained artifact. Labels go to
    obs["cellzoo_<model>_label"], probabilities to obsm["cellzoo_<model>_proba"]; a discover
    model (N-ACT) also writes obs["cellzoo_<model>_cluster"] and its markers to uns. DATA is
    streamed in chunks and OUT is a copy of it with the results added (X is not rewritten).
    The genes are matched by var_names, or by the var column --gene-column names (as `cellzoo run`).
    """
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    import cellzoo

    from ..pipeline import predict_h5ad, predict_h5ad_whole, streams
    from .tables import label_counts_table

    out = console()
    if _same_file(data, out_path) and not overwrite:
        raise FileExistsError(
            f"the output {out_path} is the input file; choose another -o, or pass --overwrite to replace the input"
        )
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass --overwrite to replace it or choose another -o")
    check_output_path(out_path)

    model = cellzoo.load(model_name)
    _require_predictor(model, model_name)
    if min_overlap is not None:
        model.min_gene_overlap = min_overlap

    t0 = time.perf_counter()
    if streams(model):
        progress = Progress(
            TextColumn("annotating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=out,
            transient=True, disable=not out.is_terminal,
        )  # fmt: skip
        with progress:
            task = progress.add_task("cells", total=None)
            run = predict_h5ad(model, data, out_path, overwrite=overwrite, chunk_size=chunk_size,
                               gene_column=gene_column,
                               on_chunk=lambda done, total: progress.update(task, completed=done, total=total))  # fmt: skip
        labels, n_cells = run.labels, run.n_cells
        written = [f"{attr}[{key!r}]" for attr, key in run.keys.values()]
    else:  # a model with its own predict (discover models, controls): in memory, then written in place
        result, adata, keys = predict_h5ad_whole(model, data, out_path, overwrite=overwrite, gene_column=gene_column)
        labels, n_cells = result.labels, adata.n_obs
        written = [f"{attr}[{key!r}]" for attr, key in keys]
    seconds = time.perf_counter() - t0

    alignment = getattr(model, "last_alignment", None)
    if alignment is not None:
        out.print(f"genes: {alignment.report.summary()}", soft_wrap=True, markup=False)
    out.print(f"annotated {n_cells:,} cells with [bold]{escape(model_name)}[/] in {seconds:.2f} s")
    out.print(label_counts_table(labels))
    out.print(f"wrote [bold]{escape(str(out_path))}[/] with {escape(', '.join(written))}", soft_wrap=True)


# -- verify --------------------------------------------------------------------------------------


@click.command("verify")
@click.argument("model_name", metavar="MODEL")
@click.option(
    "--onnx",
    "onnx_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also run the golden inputs through this ONNX export of MODEL with onnxruntime.",
)
@click.option("--device", default="cpu", show_default=True, help="onnxruntime device for --onnx: cpu, cuda, auto.")
@json_option
def verify_command(model_name: str, onnx_path: Path | None, device: str, as_json: bool) -> None:
    """Check MODEL reproduces its stored golden outputs (PASS/FAIL).

    MODEL is a pretrained name (arch.tag) or local-dir:PATH. With --onnx the same golden set is
    run through the exported graph with onnxruntime. Exits 1 on any failure.
    """
    from rich.markup import escape

    import cellzoo

    from ._app import CliError
    from .tables import verify_table

    model = cellzoo.load(model_name)  # hashes and weights are checked on the way
    reports = {"torch": cellzoo.verify(model)}
    if onnx_path is not None:
        from ..runtime import verify_onnx

        reports["onnxruntime"] = verify_onnx(onnx_path, model.artifact_dir, device=device)
    if as_json:
        echo_json({runtime: r.to_json() for runtime, r in reports.items()} if onnx_path else reports["torch"].to_json())
    else:
        out = console()
        for runtime, r in reports.items():
            out.print(verify_table(r))
            verdict = "[green bold]PASS[/]" if r.passed else "[red bold]FAIL[/]"
            out.print(f"{escape(model_name)} ({runtime}): {verdict}", soft_wrap=True)
    for runtime, report in reports.items():
        if report.passed:
            continue
        failed = ", ".join(c.name for c in report.checks if not c.passed) or "no outputs"
        raise CliError(
            f"{model_name} does not reproduce its golden outputs ({failed}) under {runtime}; "
            "the weights, the export or the plugin changed"
        )


@click.command("sample")
@click.argument("model_name", metavar="MODEL")
@click.option("--n", "n_cells", type=int, required=True, help="Number of cells to generate.")
@click.option("--cell-type", default=None, help="Generate cells of this type (a conditional model's class).")
@click.option("--seed", type=int, default=None, help="Seed of the latent noise [default: fresh randomness].")
@click.option("--device", default="cpu", show_default=True,
              help="onnxruntime device when MODEL is an ONNX export: cpu, cuda, auto.")  # fmt: skip
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .h5ad.")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def sample_command(
    model_name: str,
    n_cells: int,
    cell_type: str | None,
    seed: int | None,
    device: str,
    out_path: Path,
    overwrite: bool,
) -> None:
    """Generate cells with the generator MODEL; write them to OUT.h5ad.

    MODEL is a pretrained name (arch.tag) or local-dir:PATH of a trained generator, or its ONNX
    export (a model.onnx file or the directory `cellzoo export` wrote), which samples with
    onnxruntime and numpy only — the same cells as the torch model for the same seed. The cells
    are over the model's training genes, in the state it declares (uns["cellzoo"]["input_state"]);
    with --cell-type, obs["cell_type"] holds the type.
    """
    from rich.markup import escape

    from ..fileio import atomic_path

    out = console()
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass --overwrite to replace it or choose another -o")
    check_output_path(out_path)
    onnx_file = _onnx_file(model_name)
    t0 = time.perf_counter()
    if onnx_file is not None:
        from ..runtime import Session, sample_cells

        session = Session(onnx_file, device=device)
        if session.info.generator is None:
            raise click.UsageError(
                f"{model_name} is a {session.info.task!r} model; `cellzoo sample` needs an exported generator"
            )
        adata = sample_cells(session, n_cells, cell_type=cell_type, seed=seed)
        via = f"onnxruntime ({session.device})"
    else:
        adata, via = _sample_torch(model_name, n_cells, cell_type, seed)
    seconds = time.perf_counter() - t0
    rate = adata.uns["cellzoo"].get("acceptance_rate")
    note = f"; acceptance rate {rate:.1%}" if rate is not None else ""
    out.print(
        f"generated {adata.n_obs:,} cells × {adata.n_vars:,} genes with [bold]{escape(model_name)}[/] through "
        f"{escape(via)} in {seconds:.2f} s{escape(note)}"
    )
    with atomic_path(out_path, suffix=".h5ad") as tmp:
        adata.write_h5ad(tmp)
    out.print(f"wrote [bold]{escape(str(out_path))}[/] ({escape(adata.uns['cellzoo']['input_state'])})")


def _onnx_file(model: str) -> Path | None:
    """The ONNX file ``model`` names (a file, or an export directory), None for a model name."""
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".onnx":
        return path
    if path.is_dir() and (path / "model.onnx").is_file():
        return path / "model.onnx"
    if model.endswith(".onnx"):
        raise FileNotFoundError(2, "No such ONNX file", model)
    return None


def _sample_torch(model_name: str, n: int, cell_type: str | None, seed: int | None) -> tuple[Any, str]:
    import cellzoo

    from ..protocols import Generator

    model = cellzoo.load(model_name)
    if not isinstance(model, Generator) or getattr(getattr(model, "spec", None), "task", None) != "generate":
        task = getattr(getattr(model, "spec", None), "task", "?")
        raise click.UsageError(
            f"{model_name} is a {task!r} model; `cellzoo sample` needs a generator (cellzoo list --task generate)"
        )
    return model.sample(n, cell_type=cell_type, seed=seed), "torch"


@click.command("upscale")
@click.argument("model_name", metavar="MODEL")
@click.argument("image_path", metavar="IMAGE", type=click.Path(path_type=Path))
@click.option("--scale", type=int, required=True, help="Up-scaling factor (one the model was trained for).")
@click.option("-o", "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output image (.png or .tif).")  # fmt: skip
@click.option("--tile", type=click.IntRange(0), default=None,
              help="Process tiles of this many input pixels, blended over their overlap (bounds memory on large "
                   "images) [default: the model's].")  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def upscale_command(
    model_name: str, image_path: Path, scale: int, out_path: Path, tile: int | None, overwrite: bool
) -> None:
    """Up-scale IMAGE by --scale with the image model MODEL; write OUT.

    MODEL is a pretrained name (arch.tag), local-dir:PATH, an interpolation control (nearest,
    bicubic), or an ONNX export (the directory `cellzoo export` wrote, or its model.x<S>.onnx),
    which runs with onnxruntime and numpy only. Grey, RGB and RGBA images, 8- or 16-bit, keep
    their layout and depth.
    """
    from rich.markup import escape

    from ..data.images import read_image, write_image

    out = console()
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass --overwrite to replace it or choose another -o")
    check_output_path(out_path)
    if out_path.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise click.UsageError(f"-o {out_path}: write a .png or .tif file")
    image = read_image(image_path)
    onnx_file = _upscaler_onnx(model_name, scale)
    t0 = time.perf_counter()
    if onnx_file is not None:
        from ..runtime import Session, upscale_image

        session = Session(onnx_file)
        if session.info.upscaler is None or int(session.info.upscaler["scale"]) != scale:
            found = session.info.upscaler["scale"] if session.info.upscaler else None
            raise click.UsageError(f"{onnx_file} is not a ×{scale} up-scaler (its scale: {found})")
        result = upscale_image(session, image, tile=tile or 0)
    else:
        result = _image_model(model_name, tile).upscale(image, scale)
    seconds = time.perf_counter() - t0
    write_image(out_path, result, overwrite=overwrite)
    megapixels = result.shape[0] * result.shape[1] / 1e6
    out.print(
        f"up-scaled {escape(str(image_path))} ({image.shape[1]}×{image.shape[0]}) ×{scale} with "
        f"[bold]{escape(model_name)}[/] in {seconds:.2f} s ({megapixels / seconds if seconds > 0 else 0:.2f} MP/s); "
        f"wrote [bold]{escape(str(out_path))}[/] ({result.shape[1]}×{result.shape[0]}, {result.dtype})"
    )


def _upscaler_onnx(model: str, scale: int) -> Path | None:
    """The ONNX graph ``model`` names for ``scale`` (a file, or an export directory), None for a model name."""
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".onnx":
        return path
    if path.is_dir():
        graph = path / f"model.x{int(scale)}.onnx"
        if not graph.is_file():
            found = ", ".join(sorted(p.name for p in path.glob("model.x*.onnx"))) or "none"
            raise FileNotFoundError(f"{path} has no ×{scale} graph ({graph.name}); graphs there: {found}")
        return graph
    if model.endswith(".onnx"):
        raise FileNotFoundError(2, "No such ONNX file", model)
    return None


def _image_model(model_name: str, tile: int | None) -> Any:
    import dataclasses

    import cellzoo

    from ..protocols import Upscaler

    if model_name in cellzoo.list_models() and cellzoo.model_spec(model_name).role == "control":
        model = cellzoo.create_model(model_name)
        model.fitted = True  # the interpolation controls learn nothing: no training images needed
    else:
        model = cellzoo.load(model_name)
    if not isinstance(model, Upscaler) or getattr(getattr(model, "spec", None), "task", None) != "upscale":
        task = getattr(getattr(model, "spec", None), "task", "?")
        raise click.UsageError(
            f"{model_name} is a {task!r} model; `cellzoo upscale` needs an image model (cellzoo list --task upscale)"
        )
    if tile is not None and dataclasses.is_dataclass(model.config) and hasattr(model.config, "tile"):
        model.config = dataclasses.replace(model.config, tile=int(tile))
    return model
