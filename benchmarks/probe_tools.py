"""Do the tools matter at the demo's scale? The same small convolutional network is trained to tell live from
spoof on the raw source images and, separately, on each tool's picture of them; the held-out AUC per attack
type says which cue each view carries (issue #15, item 2).

    python benchmarks/probe_tools.py --image-size 112 --n-per-domain 400 --seeds 3 --epochs 20

Data: the synthetic cross-domain protocol, trained on the studio source split. On the studio test split
each source attack type is scored by networks trained on live against that type alone (does the view carry
its cue?); on the unseen street domain, whose attack types never appear in training, by networks trained on
live against every source attack. AUC: each attack type against the live faces of the same split. Views:
the raw image and the six tools with their default arguments (ZoomInTool on the centre half of the
image, returned at the image's size). The network: three stride-2 3x3 convolutions (16-32-64 channels),
global average pooling, a linear score; AdamW, binary cross-entropy. Prints a Markdown table of
mean +- std AUC over the seeds, and writes the rows as JSON with --out.
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

from rft.data.prepare import prepare_protocol
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


def tensors(dataset, view: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(N, 3, H, W) float images in [0, 1], (N,) labels (1 = spoof), and each sample's attack type."""
    images, labels, types = [], [], []
    for row in dataset:
        rgb = np.asarray(row["image"].convert("RGB"))
        images.append(view_of(rgb, view))
        labels.append(0.0 if row["label"] == "live" else 1.0)
        types.append(row["spoof_type"])
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0
    return batch, torch.tensor(labels), types


def small_cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 1),
    )


def train(x: torch.Tensor, y: torch.Tensor, *, seed: int, epochs: int, batch: int = 32) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = small_cnn()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), batch):
            index = order[start : start + batch]
            optimizer.zero_grad()
            loss_fn(model(x[index]).squeeze(1), y[index]).backward()
            optimizer.step()
    return model.eval()


def auc_per_attack(model: torch.nn.Module, x: torch.Tensor, types: list[str]) -> dict[str, float]:
    """Each attack type's AUC against the live samples of the same split."""
    with torch.no_grad():
        scores = model(x).squeeze(1).numpy()
    live = [i for i, kind in enumerate(types) if kind == "live"]
    result = {}
    for kind in sorted(set(types) - {"live"}):
        spoof = [i for i, t in enumerate(types) if t == kind]
        labels = [0] * len(live) + [1] * len(spoof)
        result[kind] = float(roc_auc_score(labels, scores[live + spoof]))
    return result


def subset(x: torch.Tensor, y: torch.Tensor, types: list[str], keep: set[str]) -> tuple[torch.Tensor, ...]:
    index = torch.tensor([i for i, kind in enumerate(types) if kind in keep])
    return x[index], y[index]


def probe(data, views: list[str], seeds: int, epochs: int) -> list[dict]:
    """One row per (target, attack type, view) with the AUC of every seed. On the source domain each attack
    type has its own networks (live against that type), so a row says whether the view carries that type's
    cue; the unseen domain's types never appear in training and are scored by the networks trained on live
    against every source attack."""
    studio, street = data.targets["studio_in_domain"], data.targets["street"]
    rows = []
    for view in tqdm(views, desc="views", file=sys.stderr):
        x, y, types = tensors(data.source, view)
        studio_x, _, studio_types = tensors(studio, view)
        for kind in sorted(set(types) - {"live"}):
            trained = [
                train(*subset(x, y, types, {"live", kind}), seed=seed, epochs=epochs) for seed in range(seeds)
            ]
            aucs = [auc_per_attack(model, studio_x, studio_types)[kind] for model in trained]
            rows.append({"target": "studio (source domain)", "attack": kind, "view": view, "auc": aucs})
        trained = [train(x, y, seed=seed, epochs=epochs) for seed in range(seeds)]
        street_x, _, street_types = tensors(street, view)
        per_model = [auc_per_attack(model, street_x, street_types) for model in trained]
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
    rows = probe(data, args.views, args.seeds, args.epochs)
    print(table(rows, args.views))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
