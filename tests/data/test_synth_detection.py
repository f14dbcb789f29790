"""The simulated attacks leave the physical traces real ones do, and nothing as trivial as brightness.

Simple detectors, fitted on some subjects and scored on held-out subjects (grouped 5-fold cross-validation):
a logistic regression on the binned log-magnitude spectrum must separate replay from live (moire, sub-pixel
grid), and one on multi-scale uniform-LBP histograms must separate print from live (halftone, paper).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest
from skimage.feature import local_binary_pattern
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from rft.data.schema import load_dataset_dir
from rft.data.synth import generate_benchmark


def greyscale(image) -> np.ndarray:
    return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255


@functools.cache
def spectrum_bins(size: int, radial: int, angular: int) -> np.ndarray:
    """Bin index of every (fftshifted) frequency: radius x orientation; -1 beyond the inscribed circle."""
    y, x = np.mgrid[:size, :size] - size // 2
    radius = np.sqrt(x**2 + y**2) / (size / 2)
    angle = np.mod(np.arctan2(y, x), np.pi)
    bins = np.minimum((radius * radial).astype(int), radial) * angular + np.minimum(
        (angle / np.pi * angular).astype(int), angular - 1
    )
    return np.where(radius < 1, bins, -1)


def fft_features(grey: np.ndarray, radial: int = 24, angular: int = 4) -> np.ndarray:
    """Mean log-magnitude per (radius, orientation) bin, and how far each bin's peak stands above its mean:
    moire and pixel grids are narrow spectral peaks that a bin average dilutes."""
    window = np.outer(np.hanning(grey.shape[0]), np.hanning(grey.shape[1]))
    log_magnitude = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2((grey - grey.mean()) * window)))).ravel()
    bins = spectrum_bins(grey.shape[0], radial, angular).ravel()
    keep = bins >= 0
    n_bins = radial * angular
    mean = np.bincount(bins[keep], log_magnitude[keep], n_bins) / np.maximum(
        np.bincount(bins[keep], minlength=n_bins), 1
    )
    peak = np.zeros(n_bins)
    np.maximum.at(peak, bins[keep], log_magnitude[keep])
    return np.concatenate([mean, peak - mean])


def lbp_features(grey: np.ndarray) -> np.ndarray:
    """Uniform LBP histograms at radii 1 and 2 (8 and 16 neighbours)."""
    image = np.round(grey * 255).astype(np.uint8)
    histograms = []
    for points, radius in ((8, 1), (16, 2)):
        codes = local_binary_pattern(image, points, radius, "uniform").astype(int).ravel()
        histograms.append(np.bincount(codes, minlength=points + 2) / codes.size)
    return np.concatenate(histograms)


def brightness_features(grey: np.ndarray) -> np.ndarray:
    return np.array([grey.mean()])


def held_out_auc(rows: list[tuple[str, str, np.ndarray]], attack: str, features) -> tuple[float, int]:
    """AUC of attack-vs-live scores, each image scored by a model that never saw its subject."""
    chosen = [(t, subject, grey) for t, subject, grey in rows if t in ("live", attack)]
    x = np.array([features(grey) for *_, grey in chosen])
    y = np.array([t == attack for t, *_ in chosen])
    groups = [subject for _, subject, _ in chosen]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=3000))
    scores = cross_val_predict(model, x, y, groups=groups, cv=GroupKFold(5), method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores)), int(y.sum())


def domain_rows(path, domain: str) -> list[tuple[str, str, np.ndarray]]:
    dataset = load_dataset_dir(path)
    return [
        (spoof_type, subject, greyscale(image))
        for spoof_type, subject, d, image in zip(
            dataset["spoof_type"], dataset["subject_id"], dataset["domain"], dataset["image"], strict=True
        )
        if d == domain
    ]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """500 studio images (200 live, 150 print, 150 replay) at 96 px: the attacks' physics is set in sensor
    pixels, so it does not change with the crop size, and small crops keep this test fast."""
    out = tmp_path_factory.mktemp("detect") / "studio"
    generate_benchmark(out, 500, seed=11, image_size=96, workers=2, domains=["studio"], progress=False)
    return domain_rows(out, "studio")


def test_fft_features_detect_replay(studio):
    auc, n_attacks = held_out_auc(studio, "replay", fft_features)
    assert n_attacks >= 150
    assert auc >= 0.9


def test_lbp_features_detect_print(studio):
    auc, n_attacks = held_out_auc(studio, "print", lbp_features)
    assert n_attacks >= 150
    assert auc >= 0.9


@pytest.mark.parametrize("attack", ["print", "replay"])
def test_global_brightness_alone_does_not_give_attacks_away(studio, attack):
    auc, _ = held_out_auc(studio, attack, brightness_features)
    assert abs(auc - 0.5) < 0.2


@pytest.mark.slow
def test_detectors_at_full_size_and_in_the_street_domain(tmp_path):
    out = generate_benchmark(tmp_path / "full", 1000, seed=12, image_size=224, workers=2, progress=False)
    studio_rows, street_rows = domain_rows(out, "studio"), domain_rows(out, "street")
    assert held_out_auc(studio_rows, "replay", fft_features)[0] >= 0.9
    assert held_out_auc(studio_rows, "print", lbp_features)[0] >= 0.9
    assert held_out_auc(street_rows, "replay", fft_features)[0] >= 0.85
