"""Generate cells with an exported generator: numpy noise through onnxruntime, no torch.

The noise and class codes come from :mod:`cellzoo.data.sampling` with the same numpy generator,
in the same order, as :meth:`cellzoo.Generator.sample`, so the ONNX file and the torch model it
was exported from give the same cells for the same seed (to the export's tolerance).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..data.sampling import checked_n, class_codes, generated_cells, latent_noise, sampling_meta
from ..errors import ConfigError, ProtocolError, UnknownNameError
from .session import Session

if TYPE_CHECKING:
    import anndata


def sample_cells(session: Session, n: int, cell_type: str | None = None, seed: int | None = None) -> anndata.AnnData:
    """``n`` generated cells (of ``cell_type`` when given) from an exported generator, as an AnnData."""
    info = session.info
    generator = info.generator
    if generator is None:
        raise ProtocolError(
            f"{session.path.name} is a {info.task!r} model; sampling needs an exported generator "
            "(cellzoo list --task generate, then cellzoo export NAME -o DIR)"
        )
    n = checked_n(n)
    code = None if cell_type is None else _class_code(session, str(cell_type))
    rng = np.random.default_rng(seed)
    z = latent_noise(n, generator["latent_dim"], rng)
    feeds = {"z": z}
    if generator["conditional"]:
        feeds["y"] = class_codes(n, code, generator.get("class_counts"), rng)
    cells = session.run_feeds(feeds)[info.output_names[0]]
    if cells.shape != (n, session.n_genes):
        raise ProtocolError(f"{session.path.name} generated shape {cells.shape}; expected ({n}, {session.n_genes})")
    meta = sampling_meta(
        name=info.architecture,
        output_state=generator["output_state"],
        seed=seed,
        target_sum=generator.get("output_target_sum"),
        runtime="onnxruntime",
    )
    return generated_cells(
        cells, info.genes, name=info.architecture, cell_type=cell_type, classes=info.labels, meta=meta
    )


def _class_code(session: Session, cell_type: str) -> int:
    info, generator = session.info, session.info.generator
    name = info.architecture
    if info.labels is None:
        raise ConfigError(
            f"{name!r} was trained without labels, so it cannot sample a cell type; sample without --cell-type"
        )
    if not generator["conditional"]:
        if generator.get("samples_types"):
            raise ConfigError(
                f"{name!r} samples a cell type by classifier-guided rejection, which needs its classifier; the ONNX "
                "export holds only the decoder. Sample without --cell-type here, or use the torch model "
                f"(`cellzoo sample {name}.<tag> --cell-type …`)"
            )
        raise ConfigError(f"{name!r} is not conditional, so it cannot sample a given cell type; omit --cell-type")
    if cell_type not in info.labels:
        raise UnknownNameError(
            "cell type", cell_type, info.labels, hint=f" Model {name!r} was trained on: {', '.join(info.labels)}."
        )
    return info.labels.index(cell_type)
