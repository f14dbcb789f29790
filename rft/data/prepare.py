"""Resolving the dataset roots a protocol needs, generating the synthetic benchmark when asked for."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from rft.config import ConfigError
from rft.data.protocols import ProtocolData, load_protocol, materialize
from rft.data.synth.generate import GENERATOR_VERSION, generate_benchmark
from rft.outputs import OutputDirError

SYNTHETIC = "synthetic"


def synthetic_dir(
    cache_dir: Path, n_per_domain: int, seed: int, attack_strength: float, image_size: int
) -> Path:
    """A cache folder named by the generation parameters and the generator's version, so a change regenerates
    and a rerun reuses."""
    key = json.dumps([n_per_domain, seed, attack_strength, image_size, GENERATOR_VERSION])
    return Path(cache_dir) / f"synthetic-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


def prepare_roots(
    *,
    datasets_needed: list[str],
    roots: dict[str, Path],
    cache_dir: Path,
    image_size: int,
    n_per_domain: int,
    seed: int,
    attack_strength: float,
    workers: int,
) -> dict[str, Path]:
    """`roots`, plus a generated synthetic benchmark when one is needed and no root was given for it."""
    resolved = dict(roots)
    if SYNTHETIC in datasets_needed and SYNTHETIC not in resolved:
        target = synthetic_dir(cache_dir, n_per_domain, seed, attack_strength, image_size)
        if not (target / "summary.json").is_file():
            try:
                generate_benchmark(target, n_per_domain, seed, image_size, workers, attack_strength)
            except OutputDirError as error:
                raise ConfigError(f"data.cache_dir: {error}") from None
        resolved[SYNTHETIC] = target
    return resolved


def prepare_protocol(
    *,
    protocol: str,
    roots: dict[str, Path],
    cache_dir: Path,
    image_size: int,
    n_per_domain: int,
    seed: int,
    attack_strength: float,
    workers: int,
) -> ProtocolData:
    """The protocol's source, dev and target datasets (`rft.data.protocols.ProtocolData`), generating the
    synthetic benchmark first when the protocol reads it and no root was given."""
    loaded = load_protocol(protocol)
    resolved = prepare_roots(
        datasets_needed=loaded.datasets,
        roots=roots,
        cache_dir=cache_dir,
        image_size=image_size,
        n_per_domain=n_per_domain,
        seed=seed,
        attack_strength=attack_strength,
        workers=workers,
    )
    return materialize(loaded, resolved, cache_dir, image_size)
