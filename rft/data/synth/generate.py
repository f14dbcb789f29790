"""The synthetic benchmark: domains, their attack mixes, the split plan, and parallel deterministic generation.

Every image is a pure function of (seed, domain, index) plus the run's image size and attack strength: its
random generator is seeded with `SeedSequence([seed, crc32(domain), 0, index])`, and a subject's identity with
`SeedSequence([seed, crc32(domain), 1, subject])`. The PNG bytes therefore do not depend on the number of
workers or on the order in which the workers finish.

Attack types are the shared vocabulary's values (`rft.data.schema.SpoofType`) as plain strings, and the schema
is imported only where samples are written: it imports `datasets`, which would add seconds to the start of
every rendering process.
"""

from __future__ import annotations

import json
import multiprocessing
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from rft.data.synth.attacks import (
    sample_recapture_zoom,
    simulate_mask,
    simulate_partial,
    simulate_print,
    simulate_replay,
)
from rft.data.synth.capture import (
    Camera,
    CaptureConditions,
    Illumination,
    capture,
    sample_camera,
    sample_illumination,
    sensor_size,
)
from rft.data.synth.faces import (
    LFW_FACES,
    Identity,
    Pose,
    light_face,
    render_face,
    sample_identity,
    sample_pose,
)
from rft.outputs import check_output_dir, replace_output_dir

if TYPE_CHECKING:
    from rft.data.schema import Sample

GENERATOR = "rft.data.synth"
SYNTH_COMMAND = "rft synth"  # named in the marker of the folders it writes (rft.outputs)
GENERATOR_VERSION = 2  # 2: meta carries fine_spoof_type (CelebA-Spoof's 11 classes)
DATASET_NAME = "synthetic"
SPLIT_SHARES = (("train", 0.6), ("dev", 0.2), ("test", 0.2))
IMAGES_PER_SUBJECT = 8
MAX_ATTACK_STRENGTH = 4.0

# Independent random streams under one (seed, domain).
_IMAGE_STREAM, _SUBJECT_STREAM, _PLAN_STREAM, _LFW_STREAM = 0, 1, 2, 3

LIVE, PRINT, REPLAY = "live", "print", "replay"
MASK_MATERIAL_OF = {"mask_paper": "paper", "mask_rigid": "rigid", "mask_silicone": "silicone"}
PARTIAL_KIND_OF = {"partial_eye": "eye", "partial_paperglasses": "paperglasses", "partial_mouth": "mouth"}
SUPPORTED_TYPES = frozenset({LIVE, PRINT, REPLAY, *MASK_MATERIAL_OF, *PARTIAL_KIND_OF})


@dataclass(frozen=True)
class Domain:
    """A capture setting: where and with what the faces are filmed, and which attacks are presented there.

    `attack_mix` gives each attack type's (`SpoofType` value's) share of the domain's images, live included.
    """

    name: str
    description: str
    environment: str  # CelebA-Spoof-style attribute: indoor | outdoor
    attack_mix: tuple[tuple[str, float], ...]
    capture: CaptureConditions


STUDIO = Domain(
    name="studio",
    description=(
        "bright neutral studio light, good camera (full resolution, low noise, high JPEG quality); "
        "print and replay attacks"
    ),
    environment="indoor",
    attack_mix=((LIVE, 0.4), (PRINT, 0.3), (REPLAY, 0.3)),
    capture=CaptureConditions(
        intensity=(0.8, 1.3),
        cct_kelvin=(5000.0, 6500.0),
        elevation_deg=(10.0, 50.0),
        ambient=(0.3, 0.55),
        backlight_probability=0.0,
        resolution_scale=(0.9, 1.0),
        full_well=(6000.0, 12000.0),
        read_noise=(2.0, 4.0),
        optics_blur_px=(0.3, 0.6),
        jpeg_quality=(88, 97),
        wb_residual=(0.0, 0.15),
    ),
)
STREET = Domain(
    name="street",
    description=(
        "dim warm street light, sometimes backlit; noisy low-resolution phone camera with heavy JPEG; "
        "replay, mask and partial attacks"
    ),
    environment="outdoor",
    attack_mix=(
        (LIVE, 0.4),
        (REPLAY, 0.15),
        ("mask_paper", 0.1),
        ("mask_rigid", 0.08),
        ("mask_silicone", 0.07),
        ("partial_eye", 0.07),
        ("partial_paperglasses", 0.07),
        ("partial_mouth", 0.06),
    ),
    capture=CaptureConditions(
        intensity=(0.06, 0.3),
        cct_kelvin=(2300.0, 4000.0),
        elevation_deg=(20.0, 75.0),
        ambient=(0.15, 0.4),
        backlight_probability=0.15,
        resolution_scale=(0.45, 0.7),
        full_well=(2000.0, 5000.0),
        read_noise=(3.0, 8.0),
        optics_blur_px=(0.5, 1.1),
        jpeg_quality=(40, 75),
        wb_residual=(0.2, 0.5),
    ),
)
DOMAINS: dict[str, Domain] = {domain.name: domain for domain in (STUDIO, STREET)}


@dataclass(frozen=True)
class ImagePlan:
    """What one image will show; rendering it needs only this plus the run's seed, size and strength."""

    domain: str
    index: int
    split: str
    subject: int
    spoof_type: str  # a SpoofType value

    @property
    def sample_id(self) -> str:
        return f"{DATASET_NAME}-{self.domain}-{self.index:06d}"

    @property
    def subject_id(self) -> str:
        return f"{self.domain}-s{self.subject:04d}"


@dataclass(frozen=True)
class RenderedImage:
    plan: ImagePlan
    png: bytes
    meta: dict[str, Any]
    illumination: str
    camera_quality: str
    face_box: tuple[int, ...]  # x0, y0, x1, y1 in output pixels


def domain_code(name: str) -> int:
    """A stable integer for a domain name (Python's hash() is salted per process)."""
    return zlib.crc32(name.encode())


def _rng(seed: int, domain: str, stream: int, *index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, domain_code(domain), stream, *index]))


def _largest_remainder(total: int, shares: Sequence[float], minimum: int = 0) -> list[int]:
    """Integer counts proportional to `shares` that sum to `total` (Hamilton's method), each >= minimum."""
    shares_array = np.asarray(shares, dtype=np.float64) / sum(shares)
    counts = np.maximum(np.floor(shares_array * total).astype(int), minimum)
    order = np.argsort(-(shares_array * total - np.floor(shares_array * total)), kind="stable")
    position = 0
    while counts.sum() < total:
        counts[order[position % len(order)]] += 1
        position += 1
    while counts.sum() > total:
        counts[int(np.argmax(counts))] -= 1
    return counts.tolist()


def plan_domain(domain: Domain, n_images: int, seed: int) -> list[ImagePlan]:
    """Split plan for one domain: 60/20/20 train/dev/test, disjoint subjects, the attack mix in every split."""
    rng = _rng(seed, domain.name, _PLAN_STREAM)
    types = [t for t, _ in domain.attack_mix]
    shares = [s for _, s in domain.attack_mix]
    plans: list[ImagePlan] = []
    next_subject = 0
    split_sizes = _largest_remainder(n_images, [share for _, share in SPLIT_SHARES], minimum=1)
    for (split, _), size in zip(SPLIT_SHARES, split_sizes, strict=True):
        counts = _largest_remainder(size, shares)
        split_types = [t for t, count in zip(types, counts, strict=True) for _ in range(count)]
        rng.shuffle(split_types)
        n_subjects = max(1, -(-size // IMAGES_PER_SUBJECT))
        for position, spoof_type in enumerate(split_types):
            subject = next_subject + position % n_subjects
            plans.append(ImagePlan(domain.name, len(plans), split, subject, spoof_type))
        next_subject += n_subjects
    return plans


def plan_benchmark(n_per_domain: int, seed: int, domains: Sequence[str]) -> list[ImagePlan]:
    return [plan for name in domains for plan in plan_domain(DOMAINS[name], n_per_domain, seed)]


def subject_identity(seed: int, domain: str, subject: int) -> Identity:
    """The identity of a subject. LFW crops are dealt out by a per-domain permutation, so up to 100 LFW-based
    subjects of a domain (across all of its splits) never share a crop."""
    lfw_order = _rng(seed, domain, _LFW_STREAM).permutation(LFW_FACES)
    return sample_identity(
        _rng(seed, domain, _SUBJECT_STREAM, subject), lfw_index=int(lfw_order[subject % LFW_FACES])
    )


def _round_floats(value: Any) -> Any:
    """JSON-friendly copy of metadata: numpy scalars to Python, floats to 4 decimals."""
    if isinstance(value, dict):
        return {str(k): _round_floats(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round_floats(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 4)
    return value


@dataclass
class Scene:
    """What is in front of the camera: radiance on the sensor grid, and how it came about."""

    radiance: np.ndarray
    face_box: tuple[int, ...]  # sensor pixels
    pose: Pose  # of the face the camera sees (for a print or replay: the face in the photo)
    attack: dict[str, Any] = field(default_factory=dict)
    lens_blur_applied: bool = False


def _live_scene(identity: Identity, pose: Pose, illumination: Illumination, sensor: int) -> Scene:
    face = render_face(identity, pose, sensor)
    return Scene(light_face(face, illumination), face.face_box(), pose)


def _recapture_scene(
    spoof_type: str,
    identity: Identity,
    illumination: Illumination,
    camera: Camera,
    sensor: int,
    strength: float,
    rng: np.random.Generator,
) -> Scene:
    """A print or replay of a photo of the subject; the lens blurs the medium before the grid samples it."""
    zoom = sample_recapture_zoom(rng)
    # Frame the photo wider by the zoom, so the face in the recapture is as large as a live one.
    photo_pose = sample_pose(rng)
    photo_pose = replace(photo_pose, scale=photo_pose.scale / zoom)
    photo_face = render_face(identity, photo_pose, sensor)
    simulate = simulate_print if spoof_type == PRINT else simulate_replay
    radiance, box, details = simulate(
        photo_face, illumination, sensor, zoom, camera.optics_blur_px, strength, rng
    )
    return Scene(radiance, box, photo_pose, details, lens_blur_applied=True)


def _mask_scene(
    spoof_type: str,
    identity: Identity,
    pose: Pose,
    illumination: Illumination,
    sensor: int,
    strength: float,
    rng: np.random.Generator,
) -> Scene:
    """Someone else wearing a mask of the subject, in the same pose."""
    wearer_identity = sample_identity(rng, lfw_index=int(rng.integers(LFW_FACES)))
    target, wearer = render_face(identity, pose, sensor), render_face(wearer_identity, pose, sensor)
    material = MASK_MATERIAL_OF[spoof_type]
    radiance, details = simulate_mask(material, target, wearer, illumination, strength, rng)
    return Scene(radiance, target.face_box(), pose, {**details, "wearer": wearer_identity.to_meta()})


def _partial_scene(
    spoof_type: str,
    identity: Identity,
    pose: Pose,
    illumination: Illumination,
    sensor: int,
    strength: float,
    rng: np.random.Generator,
) -> Scene:
    """The subject wearing a print of part of their own face, from a photo in the same framing."""
    live = render_face(identity, pose, sensor)
    photo_pose = replace(
        sample_pose(rng), scale=pose.scale, shift=pose.shift, roll_deg=pose.roll_deg, flip=pose.flip
    )
    photo_face = render_face(identity, photo_pose, sensor)
    kind = PARTIAL_KIND_OF[spoof_type]
    radiance, details = simulate_partial(kind, live, photo_face, illumination, strength, rng)
    return Scene(radiance, live.face_box(), pose, details)


def _scene(
    spoof_type: str,
    identity: Identity,
    illumination: Illumination,
    camera: Camera,
    sensor: int,
    strength: float,
    rng: np.random.Generator,
) -> Scene:
    pose = sample_pose(rng)
    if spoof_type == LIVE:
        return _live_scene(identity, pose, illumination, sensor)
    if spoof_type in (PRINT, REPLAY):
        return _recapture_scene(spoof_type, identity, illumination, camera, sensor, strength, rng)
    if spoof_type in MASK_MATERIAL_OF:
        return _mask_scene(spoof_type, identity, pose, illumination, sensor, strength, rng)
    return _partial_scene(spoof_type, identity, pose, illumination, sensor, strength, rng)


# Replay screens by display pixels per sensor pixel: a coarse monitor is resolved (few screen pixels per
# sensor pixel), a phone's fine pitch packs more (thresholds split sample_display's range in thirds).
PAD_MIN_SCREEN_PX_PER_SENSOR_PX = 0.9
PHONE_MIN_SCREEN_PX_PER_SENSOR_PX = 1.25
FINE_MASK_TYPES = {"mask_paper": "mask_face", "mask_rigid": "mask_3d", "mask_silicone": "mask_3d"}


def fine_spoof_type(spoof_type: str, attack: dict[str, Any]) -> str:
    """The image's class among CelebA-Spoof's 11 (SpoofType values; paper 000's content question), read
    from the simulated attack: glossy photo paper is a Photo, a matte sheet held far enough that its edge
    shows (zoom < 1) A4 paper, other matte prints a Poster; replay screens by pixel pitch (PC, Pad, Phone);
    a paper mask is a 2D face mask, rigid and silicone masks are 3D masks; partial attacks cover a region."""
    if spoof_type == PRINT:
        if attack["paper_finish"] == "glossy":
            return "print_photo"
        return "print_a4" if attack["zoom"] < 1 else "print_poster"
    if spoof_type == REPLAY:
        pitch = attack["screen_px_per_sensor_px"]
        if pitch >= PHONE_MIN_SCREEN_PX_PER_SENSOR_PX:
            return "replay_phone"
        return "replay_pad" if pitch >= PAD_MIN_SCREEN_PX_PER_SENSOR_PX else "replay_pc"
    if spoof_type in FINE_MASK_TYPES:
        return FINE_MASK_TYPES[spoof_type]
    return "mask_region" if spoof_type in PARTIAL_KIND_OF else LIVE


def render_image(plan: ImagePlan, seed: int, image_size: int, attack_strength: float) -> RenderedImage:
    """Render one planned image: scene (live face or attack) -> camera -> PNG, with its full metadata."""
    rng = _rng(seed, plan.domain, _IMAGE_STREAM, plan.index)
    identity = subject_identity(seed, plan.domain, plan.subject)
    conditions = DOMAINS[plan.domain].capture
    illumination, camera = sample_illumination(conditions, rng), sample_camera(conditions, rng)
    sensor = sensor_size(image_size, camera)
    scene = _scene(plan.spoof_type, identity, illumination, camera, sensor, attack_strength, rng)
    image = capture(scene.radiance, illumination, camera, image_size, rng, scene.lens_blur_applied)
    ok, png = cv2.imencode(".png", image[..., ::-1])
    if not ok:
        raise RuntimeError(f"OpenCV failed to encode {plan.sample_id} as PNG")
    scale = image_size / sensor
    face_box = tuple(int(np.clip(round(v * scale), 0, image_size)) for v in scene.face_box)
    meta = {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "image_seed": [seed, domain_code(plan.domain), _IMAGE_STREAM, plan.index],
        "attack_strength": attack_strength,
        "face": {"subject_id": plan.subject_id, **identity.to_meta(), "pose": scene.pose.to_meta()},
        "attack": {"type": plan.spoof_type, **scene.attack},
        "fine_spoof_type": fine_spoof_type(plan.spoof_type, scene.attack),
        "capture": {"illumination": asdict(illumination), "camera": asdict(camera), "sensor_px": sensor},
    }
    return RenderedImage(
        plan, png.tobytes(), _round_floats(meta), illumination.label(), camera.label(), face_box
    )


def _render_job(job: tuple[ImagePlan, int, int, float]) -> RenderedImage:
    return render_image(*job)


def _init_worker() -> None:
    # One process per core already: OpenCV's and BLAS's own threads would only oversubscribe the cores
    # (a multi-threaded BLAS made a 752x5 @ 5x752 product 35x slower on a busy 2-core machine).
    cv2.setNumThreads(1)
    threadpool_limits(1)


def render_images(
    plans: Sequence[ImagePlan],
    seed: int,
    image_size: int,
    attack_strength: float,
    workers: int,
    progress: bool = True,
) -> Iterator[RenderedImage]:
    """Render `plans` in order, in `workers` processes (1: in this process), with a progress bar."""
    jobs = [(plan, seed, image_size, attack_strength) for plan in plans]
    bar = tqdm(total=len(jobs), desc="synth", unit="img", disable=not progress)
    with bar:
        if workers == 1:
            with threadpool_limits(1):
                for job in jobs:
                    yield _render_job(job)
                    bar.update()
            return
        chunk = max(1, min(16, len(jobs) // (workers * 8)))
        # spawn, not fork: safe in parents that run threads (torch, Arrow); results come back in plan order.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            try:
                for rendered in pool.map(_render_job, jobs, chunksize=chunk):
                    yield rendered
                    bar.update()
            except BrokenProcessPool as error:
                raise RuntimeError(
                    "synthetic benchmark worker processes died; a script that calls generate_benchmark with "
                    "workers > 1 must do so under `if __name__ == '__main__':` (or use workers=1)"
                ) from error


def to_sample(rendered: RenderedImage, environment: str) -> Sample:
    from rft.data.schema import Sample, SpoofType

    plan = rendered.plan
    return Sample(
        id=plan.sample_id,
        image_bytes=rendered.png,
        label="live" if plan.spoof_type == LIVE else "spoof",
        spoof_type=SpoofType(plan.spoof_type),
        dataset=DATASET_NAME,
        domain=plan.domain,
        split=plan.split,
        subject_id=plan.subject_id,
        illumination=rendered.illumination,
        environment=environment,
        camera_quality=rendered.camera_quality,
        face_box=rendered.face_box,
        meta=rendered.meta,
    )


def summarise(plans: Sequence[ImagePlan], parameters: dict[str, Any]) -> dict[str, Any]:
    """Counts per domain / split / attack type, subjects per split, and the domains' definitions."""
    counts: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    subjects: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for plan in plans:
        counts[plan.domain][plan.split][plan.spoof_type] += 1
        subjects[plan.domain][plan.split].add(plan.subject)
    return {
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "dataset": DATASET_NAME,
        "parameters": parameters,
        "total": len(plans),
        "counts": {
            domain: {
                split: {"total": sum(c.values()), **dict(sorted(c.items()))} for split, c in splits.items()
            }
            for domain, splits in counts.items()
        },
        "subjects": {
            domain: {split: len(s) for split, s in splits.items()} for domain, splits in subjects.items()
        },
        "domains": {
            name: {
                "description": DOMAINS[name].description,
                "environment": DOMAINS[name].environment,
                "attack_mix": dict(DOMAINS[name].attack_mix),
                "capture": asdict(DOMAINS[name].capture),
            }
            for name in parameters["domains"]
        },
    }


def _check_arguments(
    out_dir: Path,
    n_per_domain: int,
    image_size: int,
    workers: int,
    attack_strength: float,
    domains: Sequence[str],
) -> None:
    if n_per_domain < 3:
        raise ValueError(f"n_per_domain must be at least 3 (one image per split), got {n_per_domain}")
    if not 32 <= image_size <= 2048:
        raise ValueError(f"image_size must be between 32 and 2048 pixels, got {image_size}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if not 0 < attack_strength <= MAX_ATTACK_STRENGTH:
        raise ValueError(f"attack_strength must be in (0, {MAX_ATTACK_STRENGTH:g}], got {attack_strength}")
    unknown = [d for d in domains if d not in DOMAINS]
    if not domains or unknown or len(set(domains)) != len(domains):
        raise ValueError(
            f"domains must be distinct names from {', '.join(DOMAINS)}; got {', '.join(domains) or 'none'}"
        )
    check_output_dir(out_dir, SYNTH_COMMAND, legacy=_is_benchmark_folder)


def _is_benchmark_folder(path: Path) -> bool:
    """A benchmark written before output folders were marked (rft.outputs)."""
    try:
        return json.loads((path / "summary.json").read_text()).get("generator") == GENERATOR
    except (OSError, ValueError):
        return False


def generate_benchmark(
    out_dir: Path,
    n_per_domain: int,
    seed: int = 0,
    image_size: int = 224,
    workers: int = 2,
    attack_strength: float = 1.0,
    *,
    domains: Sequence[str] = tuple(DOMAINS),
    progress: bool = True,
) -> Path:
    """Generate the benchmark into `out_dir` (a Hugging Face dataset plus summary.json) and return it.

    Everything is written to a staging folder beside `out_dir` and renamed into place at the end, so an
    interrupted run leaves no half-written `out_dir`. An existing `out_dir` is replaced only if it is empty
    or an earlier output of this generator; any other is refused (OutputDirError) before any work.
    """
    from rft.data.schema import samples_to_dataset

    out_dir = Path(out_dir)
    domains = tuple(domains)
    _check_arguments(out_dir, n_per_domain, image_size, workers, attack_strength, domains)
    plans = plan_benchmark(n_per_domain, seed, domains)
    rendered = render_images(plans, seed, image_size, attack_strength, workers, progress)
    samples = [to_sample(r, DOMAINS[r.plan.domain].environment) for r in rendered]
    parameters = {
        "n_per_domain": n_per_domain,
        "seed": seed,
        "image_size": image_size,
        "attack_strength": attack_strength,
        "domains": list(domains),
    }

    def write(staging: Path) -> None:
        samples_to_dataset(samples).save_to_disk(str(staging))
        (staging / "summary.json").write_text(json.dumps(summarise(plans, parameters), indent=2) + "\n")

    replace_output_dir(out_dir, SYNTH_COMMAND, write, legacy=_is_benchmark_folder)
    return out_dir


def write_contact_sheet(dataset_dir: Path, out_png: Path, per_type: int = 6, tile: int = 160) -> Path:
    """A PNG grid with `per_type` images of every (domain, attack type), one row each, labelled."""
    from rft.data.schema import load_dataset_dir

    dataset = load_dataset_dir(Path(dataset_dir))
    rows: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    for domain, spoof_type, image in zip(
        dataset["domain"], dataset["spoof_type"], dataset["image"], strict=True
    ):
        if len(rows[(domain, spoof_type)]) < per_type:
            rows[(domain, spoof_type)].append(cv2.resize(np.asarray(image.convert("RGB")), (tile, tile)))
    lines = []
    for (domain, spoof_type), tiles in sorted(rows.items()):
        tiles = tiles + [np.zeros((tile, tile, 3), np.uint8)] * (per_type - len(tiles))
        label = np.zeros((tile, tile, 3), np.uint8)
        cv2.putText(
            label, domain, (6, tile // 2 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA
        )
        cv2.putText(
            label,
            spoof_type,
            (6, tile // 2 + 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        lines.append(np.concatenate([label, *tiles], axis=1))
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), np.concatenate(lines, axis=0)[..., ::-1])
    return out_png
