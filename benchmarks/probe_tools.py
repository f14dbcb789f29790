"""Do the tools matter at the demo's scale? The demo model's vision tower is trained to tell live from
spoof on the raw source images and, separately, on each tool's picture of them; the held-out AUC per attack
type says which cue each view carries (issue #15, item 2).

    python benchmarks/probe_tools.py --image-size 112 --n-per-domain 400 --seeds 3 --epochs 20

Data: the synthetic cross-domain protocol, trained on the studio source split. On the studio test split
each source attack type is scored by networks trained on live against that type alone (does the view carry
its cue?); on the unseen street domain, whose attack types never appear in training, by networks trained on
live against every source attack. AUC: each attack type against the live faces of the same split. Views:
the raw image and the six tools with their default arguments (ZoomInTool on the centre half of the
image, returned at the image's size). The network: the demo model's own vision tower (Qwen2.5-VL's ViT at
the `demo` preset, randomly initialised afresh for each seed, fed by the model's own image processor), the
mean of its output tokens, and a linear score; AdamW, binary cross-entropy. Prints a Markdown table of
mean +- std AUC over the seeds, and writes the rows as JSON with --out.

A ViT sees where in the picture a feature lies (its patches carry positions), which a spectrum's cue needs:
a peak means "recaptured" only off the centre. An earlier version of this probe used a small CNN with
global average pooling, which cannot tell where a bright dot is, and found no cue in FFTTool's pictures
(docs/EFFICACY.md, section 4, has both).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tqdm import tqdm
from transformers import AutoConfig, AutoProcessor
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionTransformerPretrainedModel

from rft.data.prepare import prepare_protocol
from rft.models.tiny import ensure_tiny_model
from rft.tools import TOOL_NAMES, run_tool

VIEWS = ("raw", *TOOL_NAMES)
PROTOCOL = "synth_cross_domain"


def view_of(image: np.ndarray, view: str) -> np.ndarray:
    """The picture the network sees for `view`: the image itself or a tool's output (default arguments)."""
    if view == "raw":
        return image
    if view == "ZoomInTool":
        return run_tool(
            view, image, {"bbox": [0.25, 0.25, 0.75, 0.75], "coordinates": "normalized"}, image.shape[0]
        )
    return run_tool(view, image, {})


class Views:
    """The pixels the vision tower takes for a dataset's pictures under one view, with labels and types."""

    def __init__(self, dataset, view: str, image_processor) -> None:
        pictures, labels, self.types = [], [], []
        for row in dataset:
            pictures.append(view_of(np.asarray(row["image"].convert("RGB")), view))
            labels.append(0.0 if row["label"] == "live" else 1.0)
            self.types.append(row["spoof_type"])
        processed = image_processor(images=pictures, return_tensors="pt")
        grid = processed["image_grid_thw"]
        self.patches = list(processed["pixel_values"].split(grid.prod(dim=1).tolist()))
        self.grid = grid
        self.labels = torch.tensor(labels)

    def batch(self, index: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.cat([self.patches[i] for i in index]), self.grid[index]

    def keep(self, kinds: set[str]) -> list[int]:
        return [i for i, kind in enumerate(self.types) if kind in kinds]


class TowerProbe(torch.nn.Module):
    """A fresh vision tower of the demo model's shape, the mean of its output tokens, a linear score."""

    def __init__(self, vision_config) -> None:
        super().__init__()
        self.tower = Qwen2_5_VisionTransformerPretrainedModel._from_config(vision_config)
        self.score = torch.nn.Linear(vision_config.out_hidden_size, 1)

    def forward(self, patches: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        tokens = self.tower(patches, grid_thw=grid).pooler_output
        merge = self.tower.spatial_merge_size**2
        per_image = tokens.split((grid.prod(dim=1) // merge).tolist())
        return self.score(torch.stack([t.mean(dim=0) for t in per_image])).squeeze(1)


def train(
    views: Views, index: list[int], vision_config, *, seed: int, epochs: int, batch: int = 32
) -> TowerProbe:
    torch.manual_seed(seed)
    model = TowerProbe(vision_config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        order = torch.randperm(len(index)).tolist()
        for start in range(0, len(order), batch):
            chosen = [index[i] for i in order[start : start + batch]]
            optimizer.zero_grad()
            loss_fn(model(*views.batch(chosen)), views.labels[chosen]).backward()
            optimizer.step()
    return model.eval()


def auc_per_attack(model: TowerProbe, views: Views) -> dict[str, float]:
    """Each attack type's AUC against the live samples of the same split."""
    with torch.no_grad():
        everything = list(range(len(views.types)))
        scores = torch.cat(
            [model(*views.batch(everything[i : i + 64])) for i in range(0, len(everything), 64)]
        )
    scores = scores.numpy()
    live = views.keep({"live"})
    result = {}
    for kind in sorted(set(views.types) - {"live"}):
        spoof = views.keep({kind})
        labels = [0] * len(live) + [1] * len(spoof)
        result[kind] = float(roc_auc_score(labels, scores[live + spoof]))
    return result


def probe(data, views: list[str], seeds: int, epochs: int, model_dir: Path) -> list[dict]:
    """One row per (target, attack type, view) with the AUC of every seed. On the source domain each attack
    type has its own networks (live against that type), so a row says whether the view carries that type's
    cue; the unseen domain's types never appear in training and are scored by the networks trained on live
    against every source attack."""
    processor = AutoProcessor.from_pretrained(model_dir, local_files_only=True).image_processor
    vision_config = AutoConfig.from_pretrained(model_dir, local_files_only=True).vision_config
    studio, street = data.targets["studio_in_domain"], data.targets["street"]
    rows = []
    for view in tqdm(views, desc="views", file=sys.stderr):
        source, studio_views = Views(data.source, view, processor), Views(studio, view, processor)
        for kind in sorted(set(source.types) - {"live"}):
            index = source.keep({"live", kind})
            trained = [train(source, index, vision_config, seed=s, epochs=epochs) for s in range(seeds)]
            aucs = [auc_per_attack(model, studio_views)[kind] for model in trained]
            rows.append({"target": "studio (source domain)", "attack": kind, "view": view, "auc": aucs})
        everything = list(range(len(source.types)))
        trained = [train(source, everything, vision_config, seed=s, epochs=epochs) for s in range(seeds)]
        street_views = Views(street, view, processor)
        per_model = [auc_per_attack(model, street_views) for model in trained]
        for kind in per_model[0]:
            aucs = [scores[kind] for scores in per_model]
            rows.append({"target": "street (unseen)", "attack": kind, "view": view, "auc": aucs})
    return rows


def table(rows: list[dict], views: list[str]) -> str:
    keys = list(dict.fromkeys((r["target"], r["attack"]) for r in rows))
    cell = {(r["target"], r["attack"], r["view"]): r["auc"] for r in rows}
    lines = ["| target | attack | " + " | ".join(views) + " |", "|---|---|" + "---|" * len(views)]
    for target, attack in keys:
        cells = []
        for view in views:
            aucs = cell[(target, attack, view)]
            spread = statistics.stdev(aucs) if len(aucs) > 1 else 0.0
            cells.append(f"{statistics.mean(aucs):.2f} ± {spread:.2f}")
        lines.append(f"| {target} | {attack} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--image-size", type=int, default=112, help="side of the generated images (the demo's)"
    )
    parser.add_argument("--n-per-domain", type=int, default=400, help="synthetic samples per capture domain")
    parser.add_argument("--attack-strength", type=float, default=1.0, help="synthetic attack cue strength")
    parser.add_argument("--seeds", type=int, default=3, help="networks trained per view")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--views", nargs="+", default=list(VIEWS), choices=VIEWS)
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(".cache/data"), help="where the benchmark is kept"
    )
    parser.add_argument(
        "--model-cache", type=Path, default=Path(".cache/models"), help="where the demo's tiny model is kept"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = prepare_protocol(
        protocol=PROTOCOL,
        roots={},
        cache_dir=args.cache_dir,
        image_size=args.image_size,
        n_per_domain=args.n_per_domain,
        seed=0,
        attack_strength=args.attack_strength,
        workers=1,
    )
    model_dir = ensure_tiny_model(args.model_cache, "qwen2_5_vl", "demo", image_size=args.image_size)
    rows = probe(data, args.views, args.seeds, args.epochs, model_dir)
    print(table(rows, args.views))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
