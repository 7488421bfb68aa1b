"""Side-by-side crops of the held-out sr_images at ×4: LR, bicubic, SRCNN, SRVAE, HR.

The learned models are the registry checkpoints ``srcnn.sr_images`` and ``srvae.sr_images``
(loaded from the cache, or built from their recipes: the same training as seed 0 of
``benchmarks/upscale.toml``). Each test image is MATLAB-bicubic down-sampled by the scale and
up-scaled by every model; the picture shows one crop per image (the LR crop enlarged with
nearest-neighbour so its pixels show) with each crop's PSNR-Y over the whole image, and the
numbers go to ``crops.json`` beside it.

    python benchmarks/upscale_crops.py                       # benchmarks/results/upscale/crops_x4.png
    python benchmarks/upscale_crops.py --scale 2 --out /tmp/crops
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import cellzoo
from cellzoo.data.images import as_float_image, downsample, modcrop
from cellzoo.imagemetrics import psnr_y, ssim_y

#: (image, top, left, side in HR pixels): one detailed region of each held-out picture
CROPS = (("astronaut", 40, 150, 128), ("camera", 64, 200, 128), ("chelsea", 60, 130, 128), ("coffee", 40, 300, 128), ("brick", 192, 192, 128))  # fmt: skip
MODELS = ("bicubic", "srcnn.sr_images", "srvae.sr_images")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "upscale")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cellzoo_srvae.datasets import TEST, sr_images

    test = dict(zip(TEST, sr_images()["test"]))
    models = {
        name: cellzoo.load(name) if "." in name else cellzoo.create_model(name).fit(list(test.values()))
        for name in MODELS
    }
    s = args.scale
    rows, numbers = [], {}
    for image, top, left, side in CROPS:
        hr = modcrop(as_float_image(test[image])[0], s)
        lr = downsample(hr, s)
        out = {"LR (nearest)": np.repeat(np.repeat(lr, s, axis=0), s, axis=1)}
        numbers[image] = {}
        for name, model in models.items():
            sr = model.upscale(lr, s)
            numbers[image][name] = {"psnr_y": psnr_y(hr, sr, crop=s), "ssim_y": ssim_y(hr, sr, crop=s)}
            out[name] = sr
        out["HR"] = hr
        rows.append((image, {k: v[top : top + side, left : left + side] for k, v in out.items()}))
    fig, axes = plt.subplots(len(rows), len(rows[0][1]), figsize=(2.2 * len(rows[0][1]), 2.3 * len(rows)))
    for r, (image, crops) in enumerate(rows):
        for c, (name, crop) in enumerate(crops.items()):
            ax = axes[r, c]
            ax.imshow(np.clip(crop, 0, 1).squeeze(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            label = name.split(".")[0]
            if name in numbers[image]:
                label += f"\n{numbers[image][name]['psnr_y']:.2f} dB"
            ax.set_title(label if r == 0 or name in numbers[image] else "", fontsize=8)
            if c == 0:
                ax.set_ylabel(image, fontsize=8)
    fig.suptitle(f"×{s} on the held-out sr_images (PSNR-Y of the whole image)", fontsize=9)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / f"crops_x{s}.png", dpi=80)
    (args.out / f"crops_x{s}.json").write_text(json.dumps(numbers, indent=2) + "\n", encoding="utf-8")
    for image, by_model in numbers.items():
        print(image, "  ".join(f"{m.split('.')[0]} {v['psnr_y']:.2f}" for m, v in by_model.items()))
    print(f"wrote {args.out / f'crops_x{s}.png'}")


if __name__ == "__main__":
    main()
