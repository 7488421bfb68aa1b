"""``cellzoo export`` and ``cellzoo run``: a trained model to a validated ONNX file, and that file on cells.

``run`` on an ``.onnx`` file uses :mod:`cellzoo.runtime` only (onnxruntime, numpy, anndata), so
it works where torch is not installed; given a model name instead, it exports the model once
into the cellzoo cache (which needs torch) and runs that.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import click

from ._app import CliError, check_output_path, console, echo_json, gene_column_option, json_option, overwrite_option

DEVICE_CHOICES = ("cpu", "cuda", "tensorrt", "auto")


def _megabytes(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.1f} MB"


def _report_table(report: Any) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(title="export validation", title_justify="left", header_style="bold")
    for header in ("file", "check", "max |diff|", "result"):
        table.add_column(header, overflow="fold")
    for variant in report.variants:
        for i, check in enumerate(variant.checks):
            diff = f"{check.max_abs_diff:.2g}" if check.max_abs_diff is not None else ""
            result = Text("ok", style="green") if check.passed else Text(f"FAIL {check.detail}", style="red")
            table.add_row(Text(variant.file if i == 0 else ""), Text(check.name), diff, result)
    return table


@click.command("export", short_help="Export a trained model to a validated ONNX file.")
@click.argument("model_name", metavar="NAME")
@click.option(
    "--output",
    "-o",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write model.onnx and export.json into.",
)
@click.option("--opset", type=click.IntRange(7), default=None, help="ONNX opset [default: torch's exporter default].")
@click.option(
    "--fp16", is_flag=True, help="Also write model.fp16.onnx (float16 weights, for GPUs), validated on its own."
)
@click.option(
    "--from-counts",
    is_flag=True,
    help="Also write model.from_counts.onnx, which takes raw counts over the model's genes and normalises in the graph.",
)
@overwrite_option
@json_option
def export_command(
    model_name: str, out_dir: Path, opset: int | None, fp16: bool, from_counts: bool, overwrite: bool, as_json: bool
) -> None:
    """Export NAME (arch.tag or local-dir:PATH) to ONNX and validate it against torch.

    Writes DIR/model.onnx with the gene list, labels, input contract and parent hash in its
    metadata. Validation (onnx checker, onnxruntime vs torch at batch 1, 2, 7, 1024, the golden
    set) is part of the export: if a check fails, nothing is written and the command exits 1.
    """
    from rich.markup import escape

    from ..errors import IntegrityError
    from ..export import EXPORT_FILE, export_onnx

    out = console(stderr=as_json)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(17, "Directory exists and is not empty (pass --overwrite to replace it)", str(out_dir))
    with out.status(f"exporting {escape(model_name)}") as status:
        try:
            report = export_onnx(
                model_name,
                out_dir,
                opset=opset,
                fp16=fp16,
                from_counts=from_counts,
                overwrite=overwrite,
                on_step=lambda text: status.update(escape(text)),
            )
        except IntegrityError as exc:
            failed = getattr(exc, "report", None)
            if failed is None:
                raise
            out.print(_report_table(failed))
            bad = [f"{v.file}: {c.name}" for v in failed.variants for c in v.checks if not c.passed]
            raise CliError(
                f"the exported model does not reproduce {model_name} ({'; '.join(bad[:4])}); nothing was written"
            ) from exc
    if as_json:
        echo_json(report.to_json())
        return
    out.print(_report_table(report))
    files = ", ".join(f"{v.file} ({_megabytes(out_dir / v.file)})" for v in report.variants)
    out.print(
        f"[green bold]PASS[/] wrote [bold]{escape(str(out_dir))}[/]: {escape(files)}, export.json", soft_wrap=True
    )
    out.print("run it (no torch needed):", markup=False)
    if report.variants[0].input_state == "image":  # an up-scaler: one graph per scale
        first = report.variants[0].file
        out.print(f"  cellzoo upscale {out_dir / first} image.png --scale {first.split('.x')[1].split('.')[0]} -o out.png",
                  soft_wrap=True, markup=False)  # fmt: skip
    elif report.variants[0].input_state == "latent":  # a generator: its graph takes noise
        out.print(f"  cellzoo sample {out_dir / EXPORT_FILE} --n 1000 -o cells.h5ad", soft_wrap=True, markup=False)
    else:
        out.print(f"  cellzoo run {out_dir / EXPORT_FILE} data.h5ad -o annotated.h5ad", soft_wrap=True, markup=False)


# -- run ----------------------------------------------------------------------------------------


def _onnx_path(model: str, out: Any) -> Path:
    """The ONNX file ``model`` names: a file, an export directory, or a model exported into the cache."""
    from ..export import EXPORT_FILE

    path = Path(model).expanduser()
    if path.is_file():
        return path
    if path.is_dir() and (path / EXPORT_FILE).is_file():
        return path / EXPORT_FILE
    if model.endswith(".onnx"):
        raise FileNotFoundError(2, "No such ONNX file", model)
    return _cached_export(model, out)


def _cached_export(name: str, out: Any) -> Path:
    """Export a named model once into ``$CELLZOO_HOME/onnx/<arch>-<weights sha>`` (needs torch)."""
    from rich.markup import escape

    import cellzoo

    from ..export import EXPORT_FILE, export_onnx
    from ..paths import home

    model = cellzoo.load(name)
    sha = ((getattr(model, "artifact_config", None) or {}).get("files", {}).get("model.safetensors", {})).get("sha256")
    directory = home() / "onnx" / f"{model.name}-{(sha or 'unsaved')[:16]}"
    if not (directory / EXPORT_FILE).is_file():
        with out.status(f"exporting {escape(name)} to ONNX (once; cached in {escape(str(directory))})"):
            export_onnx(model, directory, overwrite=True)
    return directory / EXPORT_FILE


@click.command("run", short_help="Annotate an .h5ad with an exported ONNX model (no torch needed).")
@click.argument("model", metavar="MODEL.onnx|NAME")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Annotated .h5ad to write.",
)
@click.option(
    "--device",
    type=click.Choice(DEVICE_CHOICES),
    default="auto",
    show_default=True,
    help="onnxruntime device; cuda/tensorrt fail unless that provider really runs.",
)
@click.option(
    "--allow-cpu-fallback", is_flag=True, help="Accept running on the CPU when the GPU provider does not start."
)
@click.option(
    "--threads", type=click.IntRange(1), default=None, help="onnxruntime threads [default: the CPUs available]."
)
@click.option("--chunk-size", type=click.IntRange(1), default=None, help="Cells per chunk [default: ~32 MiB of input].")
@click.option(
    "--genes",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The model's input genes, one per line (for an ONNX file that is not a cellzoo export).",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The model's classes, one per line (for an ONNX file that is not a cellzoo export).",
)
@gene_column_option
@click.option(
    "--min-overlap",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Smallest share of the model's genes DATA must have.",
)
@click.option(
    "--attention/--no-attention", default=True, help="Write per-cell attention (cells × genes) when the model has it."
)
@click.option(
    "--dask",
    "scheduler",
    default=None,
    metavar="local[:N]|ADDRESS",
    help="Run the chunks on a Dask cluster: local (one worker per CPU), local:N, or a scheduler (tcp://host:8786).",
)
@overwrite_option
@json_option
def run_command(
    model: str,
    data: Path,
    out_path: Path,
    device: str,
    allow_cpu_fallback: bool,
    threads: int | None,
    chunk_size: int | None,
    genes: Path | None,
    labels: Path | None,
    gene_column: str | None,
    min_overlap: float | None,
    attention: bool,
    scheduler: str | None,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Annotate the cells of DATA.h5ad with MODEL; write OUT.h5ad.

    MODEL is an exported .onnx file (or its directory), or a model name (arch.tag,
    local-dir:PATH) to export first. DATA is streamed in chunks, so files larger than memory
    work; with --dask the chunks run on the workers of a Dask cluster, which must see DATA and
    MODEL at the same paths. Labels go to obs["cellzoo_<arch>_label"], probabilities and attention to
    obsm["cellzoo_<arch>_proba" / "_attention"].
    """
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..runtime import Session, annotate_h5ad
    from .tables import label_counts_table

    out = console(stderr=as_json)
    if out_path.exists() and not overwrite:
        raise FileExistsError(17, "Output exists (pass --overwrite to replace it)", str(out_path))
    check_output_path(out_path)
    path = _onnx_path(model, out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # no spinning: idle onnxruntime threads would take the cores the chunk reader needs
        # (benchmarks/throughput.py measures both)
        session = Session(path, device=device, threads=threads, allow_cpu_fallback=allow_cpu_fallback,
                          genes=genes, labels=labels, spin=False)  # fmt: skip
    for warning in caught:
        out.print(f"[yellow]warning:[/] {escape(str(warning.message))}", soft_wrap=True)
    out.print(f"model: {escape(session.describe())}", soft_wrap=True)
    outputs = [n for n in session.output_names if attention or n != "attention"]

    t0 = time.perf_counter()
    progress = Progress(
        TextColumn("annotating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=out, transient=True,
        disable=as_json or not out.is_terminal,
    )  # fmt: skip
    with progress:
        task = progress.add_task("cells", total=None)
        result = annotate_h5ad(
            session,
            data,
            out_path,
            chunk_size,
            overwrite=overwrite,
            outputs=outputs,
            min_overlap=min_overlap,
            gene_column=gene_column,
            on_chunk=lambda done, total: progress.update(task, completed=done, total=total),
            dask=scheduler,
        )
    seconds = time.perf_counter() - t0
    if as_json:
        echo_json(result.to_json())
        return
    out.print(f"genes: {result.alignment.summary()}", soft_wrap=True, markup=False)
    state = (
        result.data_state if result.data_state == result.graph_state else f"{result.data_state} → {result.graph_state}"
    )
    out.print(f"input: {escape(result.source)} ({escape(state)})", soft_wrap=True)
    out.print(
        f"annotated {result.n_cells:,} cells in {seconds:.2f} s ({result.n_cells / max(seconds, 1e-9):,.0f} cells/s; "
        f"{result.infer_seconds:.2f} s in onnxruntime, chunks of {result.chunk_size:,}"
        + (f", on {result.workers} Dask workers)" if scheduler else ")")
    )
    out.print(label_counts_table(result.labels))
    keys = [f"{attr}[{key!r}]" for what, (attr, key) in result.keys.items() if attr != "uns"]
    out.print(f"wrote [bold]{escape(os.fspath(out_path))}[/] with {escape(', '.join(keys))}", soft_wrap=True)
