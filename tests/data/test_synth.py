"""The synthetic benchmark generator: output format, determinism, splits, protocol, arguments and the CLI."""

from __future__ import annotations

import json
from collections import Counter

import cv2
import datasets
import pytest

from rft.data.protocols import load_protocol, materialize
from rft.data.schema import SpoofType, attack_category, load_dataset_dir
from rft.data.synth import DOMAINS, SUPPORTED_TYPES, generate_benchmark, plan_benchmark
from rft.data.synth import cli as synth_cli
from rft.data.synth import generate as synth_generate

SIZE = 96
N_PER_DOMAIN = 30
SEED = 5


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "bench"
    return generate_benchmark(out, N_PER_DOMAIN, seed=SEED, image_size=SIZE, workers=2, progress=False)


def encoded(path) -> datasets.Dataset:
    return load_dataset_dir(path).cast_column("image", datasets.Image(decode=False))


def test_same_seed_gives_byte_identical_images_whatever_the_worker_count(benchmark, tmp_path):
    again = generate_benchmark(
        tmp_path / "again", N_PER_DOMAIN, seed=SEED, image_size=SIZE, workers=1, progress=False
    )
    first, second = encoded(benchmark), encoded(again)
    assert first["id"] == second["id"]
    assert [r["bytes"] for r in first["image"]] == [r["bytes"] for r in second["image"]]
    assert first["meta"] == second["meta"]


def test_another_seed_gives_other_images(benchmark, tmp_path):
    other = generate_benchmark(
        tmp_path / "other", N_PER_DOMAIN, seed=SEED + 1, image_size=SIZE, workers=1, progress=False
    )
    first, second = encoded(benchmark), encoded(other)
    assert first["id"] == second["id"]
    assert all(a["bytes"] != b["bytes"] for a, b in zip(first["image"], second["image"], strict=True))


def test_rows_are_complete_samples_with_their_recipe(benchmark):
    dataset = load_dataset_dir(benchmark)
    assert len(dataset) == N_PER_DOMAIN * len(DOMAINS)
    assert len(set(dataset["id"])) == len(dataset)
    for row in dataset:
        spoof_type = SpoofType(row["spoof_type"])
        assert spoof_type in SUPPORTED_TYPES
        assert row["label"] == (0 if spoof_type is SpoofType.LIVE else 1)  # ClassLabel(live, spoof)
        assert row["attack_category"] == attack_category(spoof_type)
        assert row["dataset"] == "synthetic" and row["domain"] in DOMAINS
        assert row["environment"] == DOMAINS[row["domain"]].environment
        assert row["illumination"] in {"strong", "normal", "dark", "back"}
        assert row["camera_quality"] in {"high", "middle", "low"}
        assert row["image"].size == (SIZE, SIZE)
        x0, y0, x1, y1 = row["face_box"]
        assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
        meta = json.loads(row["meta"])
        assert meta["attack"]["type"] == spoof_type.value
        assert meta["seed"] == SEED and meta["image_seed"][0] == SEED
        assert meta["face"]["source"] in {"lfw", "procedural", "astronaut", "grace_hopper"}
        assert meta["face"]["subject_id"] == row["subject_id"]
        assert {"illumination", "camera", "sensor_px"} <= set(meta["capture"])


def test_attack_metadata_records_the_physics_applied(benchmark):
    metas = {row["spoof_type"]: json.loads(row["meta"]) for row in load_dataset_dir(benchmark)}
    assert set(metas["print"]["attack"]["print"]["screen_angles_deg"]) == {
        "cyan",
        "magenta",
        "yellow",
        "black",
    }
    assert metas["print"]["attack"]["halftone_period_sensor_px"] > 0
    assert metas["replay"]["attack"]["screen_px_per_sensor_px"] > 0
    assert metas["replay"]["attack"]["subpixel_order"] in {"RGB", "BGR"}
    assert metas["mask_rigid"]["attack"]["material"] == "rigid"
    assert "wearer" in metas["mask_rigid"]["attack"]


def test_summary_counts_match_the_dataset(benchmark):
    summary = json.loads((benchmark / "summary.json").read_text())
    dataset = load_dataset_dir(benchmark)
    counted = Counter(zip(dataset["domain"], dataset["split"], dataset["spoof_type"], strict=True))
    from_summary = Counter(
        {
            (domain, split, spoof_type): n
            for domain, splits in summary["counts"].items()
            for split, counts in splits.items()
            for spoof_type, n in counts.items()
            if spoof_type != "total"
        }
    )
    assert counted == from_summary
    assert summary["total"] == len(dataset)
    assert summary["parameters"] == {
        "n_per_domain": N_PER_DOMAIN,
        "seed": SEED,
        "image_size": SIZE,
        "attack_strength": 1.0,
        "domains": list(DOMAINS),
    }


def test_every_generated_attack_type_is_in_the_shared_vocabulary():
    assert {t.value for t in SpoofType} >= SUPPORTED_TYPES
    assert {t for domain in DOMAINS.values() for t, _ in domain.attack_mix} == SUPPORTED_TYPES
    for domain in DOMAINS.values():
        assert sum(share for _, share in domain.attack_mix) == pytest.approx(1.0)


def test_subjects_are_disjoint_between_splits_and_every_split_has_the_attack_mix():
    plans = plan_benchmark(1000, seed=0, domains=list(DOMAINS))
    for name, domain in DOMAINS.items():
        subjects: dict[str, set[int]] = {}
        for split in ("train", "dev", "test"):
            in_split = [p for p in plans if p.domain == name and p.split == split]
            subjects[split] = {p.subject for p in in_split}
            assert {p.spoof_type for p in in_split} == {t for t, _ in domain.attack_mix}
        assert not subjects["train"] & subjects["dev"]
        assert not subjects["train"] & subjects["test"]
        assert not subjects["dev"] & subjects["test"]
        splits = Counter(p.split for p in plans if p.domain == name)
        assert splits == {"train": 600, "dev": 200, "test": 200}


def test_the_cross_domain_protocol_holds_out_attack_types(benchmark, tmp_path):
    protocol = load_protocol("synth_cross_domain")
    data = materialize(protocol, {"synthetic": benchmark}, tmp_path / "cache")
    source_types = set(data.source["spoof_type"])
    assert source_types <= {"live", "print", "replay"}
    unseen = set(data.targets["street"]["spoof_type"]) - source_types
    assert unseen and {attack_category(t) for t in unseen} <= {"mask", "partial"}
    assert set(data.source["domain"]) == {"studio"} and set(data.targets["street"]["domain"]) == {"street"}
    # The generator's definition, not just this small sample: masks and partials exist only in the target.
    studio = {t for t, _ in DOMAINS["studio"].attack_mix}
    street = {t for t, _ in DOMAINS["street"].attack_mix}
    assert {attack_category(t) for t in street - studio} == {"mask", "partial"}


def test_an_interrupted_run_writes_nothing_and_keeps_the_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "out"
    generate_benchmark(out, 3, seed=0, image_size=64, workers=1, progress=False)
    before = (out / "summary.json").read_text()
    real_render, calls = synth_generate.render_image, []

    def render_then_interrupt(*args):
        calls.append(args)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return real_render(*args)

    monkeypatch.setattr(synth_generate, "render_image", render_then_interrupt)
    for target in (out, tmp_path / "fresh"):
        calls.clear()
        with pytest.raises(KeyboardInterrupt):
            generate_benchmark(target, 5, seed=1, image_size=64, workers=1, progress=False)
    assert (out / "summary.json").read_text() == before
    assert len(load_dataset_dir(out)) == 6
    assert not (tmp_path / "fresh").exists()


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="folder exists and was not made by rft synth; choose a new folder"):
        generate_benchmark(foreign, 3, workers=1, progress=False)
    assert synth_cli.main(["--out", str(foreign), "--n-per-domain", "3", "--workers", "1", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"rft synth: error: --out {foreign}: folder exists and was not made by rft synth; choose a new folder"
    )
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_replacing_its_own_output_spares_folders_beside_it(tmp_path):
    out = tmp_path / "out"
    generate_benchmark(out, 3, seed=0, image_size=64, workers=1, progress=False)
    beside = tmp_path / ".out.staging"  # the old code used this name as its scratch folder
    beside.mkdir()
    (beside / "notes.txt").write_text("keep me")
    generate_benchmark(out, 4, seed=0, image_size=64, workers=1, progress=False)
    assert json.loads((out / "summary.json").read_text())["total"] == 8
    assert (beside / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.staging", "out"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_per_domain": 2}, "n_per_domain"),
        ({"image_size": 16}, "image_size"),
        ({"workers": 0}, "workers"),
        ({"attack_strength": 0.0}, "attack_strength"),
        ({"attack_strength": 5.0}, "attack_strength"),
        ({"domains": ["moon"]}, "domains"),
        ({"domains": ["studio", "studio"]}, "domains"),
    ],
)
def test_bad_arguments_fail_with_one_line(tmp_path, arguments, message):
    kwargs = {"n_per_domain": 3, "workers": 1, "progress": False, **arguments}
    with pytest.raises(ValueError, match=message) as raised:
        generate_benchmark(tmp_path / "out", **kwargs)
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "out").exists()


def test_cli_help_describes_the_options(capsys):
    with pytest.raises(SystemExit) as raised:
        synth_cli.main(["--help"])
    assert raised.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--n-per-domain", "--seed", "--workers", "--image-size", "--attack-strength"):
        assert option in text
    assert all(name in text for name in DOMAINS)


def test_cli_generates_and_reports_errors_in_one_line(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["--out", str(out), "--n-per-domain", "3", "--workers", "1", "--image-size", "64", "--quiet"]
    assert synth_cli.main([*argv, "--preview", str(tmp_path / "sheet.png")]) == 0
    assert json.loads((out / "summary.json").read_text())["total"] == 6
    assert cv2.imread(str(tmp_path / "sheet.png")) is not None
    assert "wrote 6 images" in capsys.readouterr().out
    assert synth_cli.main([*argv, "--attack-strength", "9"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "attack_strength" in error


CELEBA_SPOOF_CLASSES = {
    "live",
    "print_photo",
    "print_poster",
    "print_a4",
    "mask_face",
    "mask_upper_body",
    "mask_region",
    "replay_pc",
    "replay_pad",
    "replay_phone",
    "mask_3d",
}


def test_every_image_names_its_celeba_spoof_class_from_the_simulated_attack(benchmark):
    """Paper 000's content question needs CelebA-Spoof's 11 classes: each image's fine type follows from the
    parameters the generator drew (paper finish and distance, screen pitch, mask material, partial attack)."""
    for row in load_dataset_dir(benchmark):
        meta = json.loads(row["meta"])
        fine = meta["fine_spoof_type"]
        assert fine in CELEBA_SPOOF_CLASSES
        assert fine == synth_generate.fine_spoof_type(row["spoof_type"], meta["attack"])
        assert (fine == "live") == (row["spoof_type"] == "live")
        assert attack_category(fine) == attack_category(row["spoof_type"]) or row["spoof_type"].startswith(
            "partial"
        )


@pytest.mark.parametrize(
    ("spoof_type", "attack", "fine"),
    [
        ("print", {"paper_finish": "glossy", "zoom": 1.1}, "print_photo"),
        ("print", {"paper_finish": "matte", "zoom": 0.8}, "print_a4"),
        ("print", {"paper_finish": "matte", "zoom": 1.1}, "print_poster"),
        ("replay", {"screen_px_per_sensor_px": 0.6}, "replay_pc"),
        ("replay", {"screen_px_per_sensor_px": 1.0}, "replay_pad"),
        ("replay", {"screen_px_per_sensor_px": 1.5}, "replay_phone"),
        ("mask_paper", {}, "mask_face"),
        ("mask_rigid", {}, "mask_3d"),
        ("mask_silicone", {}, "mask_3d"),
        ("partial_eye", {}, "mask_region"),
        ("partial_paperglasses", {}, "mask_region"),
        ("live", {}, "live"),
    ],
)
def test_fine_spoof_type_reads_the_simulation_parameters(spoof_type, attack, fine):
    assert synth_generate.fine_spoof_type(spoof_type, attack) == fine


def test_every_image_answers_instructflips_four_questions(benchmark):
    """The synthetic benchmark gives the spoof type and the illumination / environment / camera-quality labels
    of paper 000's content and style questions for every image, so InstructFLIP trains end to end on it."""
    from rft.baselines.instructflip.questions import row_answers

    for row in load_dataset_dir(benchmark):
        answers = row_answers(row)
        assert None not in answers.values(), (row["id"], answers)
