import json
from pathlib import Path

import pytest
import yaml

from rft.config import ConfigError
from rft.data import protocols
from rft.data.protocols import PROTOCOL_DIR, check_roots, load_protocol, materialize
from rft.data.schema import Sample, samples_to_dataset, save_dataset

PAPER_PROTOCOLS = {
    "cefa_to_hqwmca": "001",
    "cefa_to_siwmv2": "001",
    "surf_to_hqwmca": "001",
    "surf_to_siwmv2": "001",
    "oci_to_m": "002",
    "omi_to_c": "002",
    "ocm_to_i": "002",
    "icm_to_o": "002",
    "mcio_to_siwmv2": "002",
    "one_to_eleven": "003",
    "celeba_to_mcio_wcs": "000",
}
MCIO = {"msu_mfsd", "casia_fasd", "replay_attack", "oulu_npu"}


@pytest.mark.parametrize("path", sorted(PROTOCOL_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_protocol_file_loads_and_is_named_after_its_file(path):
    assert load_protocol(path).name == path.stem


@pytest.mark.parametrize(("name", "paper"), PAPER_PROTOCOLS.items())
def test_the_papers_protocols_resolve_by_bare_name(name, paper):
    assert load_protocol(name).paper == paper


@pytest.mark.parametrize("name", ["oci_to_m", "omi_to_c", "ocm_to_i", "icm_to_o"])
def test_leave_one_out_trains_on_three_mcio_datasets_and_tests_on_the_fourth(name):
    protocol = load_protocol(name)
    sources = {s.dataset for s in protocol.source}
    (target,) = [t.dataset for t in protocol.target]
    assert len(sources) == 3 and sources | {target} == MCIO and target not in sources


def test_one_to_eleven_trains_on_celeba_spoof_and_reports_eleven_targets():
    protocol = load_protocol("one_to_eleven")
    assert [s.dataset for s in protocol.source] == ["celeba_spoof"]
    assert len(protocol.target) == 11 and len({t.label for t in protocol.target}) == 11


def test_unified_protocol_targets_mcio_and_wcs():
    protocol = load_protocol("celeba_to_mcio_wcs")
    assert {t.dataset for t in protocol.target} == MCIO | {"wmca", "cefa", "casia_surf"}


def write_protocol(tmp_path, **fields):
    body = {
        "name": "tiny",
        "source": [{"dataset": "synthetic"}],
        "target": [{"dataset": "synthetic"}],
        **fields,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_unknown_keys_are_named_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'targets': did you mean 'target'\?"):
        load_protocol(write_protocol(tmp_path, targets=[]))
    with pytest.raises(ConfigError, match=r"unknown key 'target\.0\.split'"):
        load_protocol(write_protocol(tmp_path, target=[{"dataset": "synthetic", "split": ["test"]}]))


def test_unknown_attack_types_and_repeated_target_names_are_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown attack type.*unicorn"):
        load_protocol(
            write_protocol(tmp_path, source=[{"dataset": "synthetic", "attack_types": ["unicorn"]}])
        )
    with pytest.raises(ConfigError, match="several targets are named synthetic"):
        load_protocol(write_protocol(tmp_path, target=[{"dataset": "synthetic"}, {"dataset": "synthetic"}]))


def test_an_unknown_protocol_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"'no_such_protocol' not found.*cefa_to_hqwmca"):
        load_protocol("no_such_protocol")


def test_a_dataset_without_a_root_names_the_dataset_and_the_key_to_set(tmp_path):
    protocol = load_protocol("cefa_to_hqwmca")
    with pytest.raises(ConfigError) as error:
        check_roots(protocol, {"cefa": tmp_path})
    assert str(error.value) == (
        "protocol 'cefa_to_hqwmca' needs dataset 'hqwmca': set data.roots.hqwmca to its local folder"
    )


def test_a_misspelt_root_key_is_pointed_out(tmp_path):
    with pytest.raises(ConfigError, match=r"set data\.roots\.hqwmca .*data\.roots has 'hq_wmca': a typo\?"):
        check_roots(load_protocol("cefa_to_hqwmca"), {"cefa": tmp_path, "hq_wmca": tmp_path})


def test_a_root_that_is_not_a_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.roots\.cefa = .*nowhere is not a folder"):
        check_roots(load_protocol("cefa_to_siwmv2"), {"cefa": tmp_path / "nowhere", "siw_mv2": tmp_path})


def synthetic_sample(index: int, split: str, domain: str, spoof_type: str) -> Sample:
    label = "live" if spoof_type == "live" else "spoof"
    return Sample(
        id=f"synthetic/{index}",
        image_bytes=b"jpeg",
        label=label,
        spoof_type=spoof_type,
        dataset="synthetic",
        domain=domain,
        split=split,
    )


@pytest.fixture
def synthetic_root(tmp_path):
    """A saved dataset (as `rft synth` writes one): 3 domains x 2 splits x (live, print_a4, replay)."""
    combos = [
        (s, d, t) for s in ("train", "test") for d in ("a", "b", "c") for t in ("live", "print_a4", "replay")
    ]
    samples = [synthetic_sample(i, *combo) for i, combo in enumerate(combos)]
    return save_dataset(samples_to_dataset(samples), tmp_path / "synthetic")


def test_materialize_filters_saved_datasets_by_split_domain_and_attack_type(tmp_path, synthetic_root):
    path = write_protocol(
        tmp_path,
        source=[{"dataset": "synthetic", "splits": ["train"], "domains": ["a", "b"]}],
        dev=[
            {"dataset": "synthetic", "splits": ["test"], "domains": ["a"], "attack_types": ["live", "print"]}
        ],
        target=[
            {
                "dataset": "synthetic",
                "name": "c_replay",
                "splits": ["test"],
                "domains": ["c"],
                "attack_types": ["replay"],
            },
            {"dataset": "synthetic", "name": "c_all", "splits": ["test"], "domains": ["c"]},
        ],
    )
    data = materialize(load_protocol(path), {"synthetic": synthetic_root}, tmp_path / "cache")
    assert len(data.source) == 6 and set(data.source["domain"]) == {"a", "b"}
    assert sorted(data.dev["spoof_type"]) == ["live", "print_a4"]  # `print` selects the print family
    assert list(data.targets) == ["c_replay", "c_all"]
    assert [len(d) for d in data.targets.values()] == [1, 3]
    assert not (tmp_path / "cache").exists()  # saved datasets are read in place
    assert data.roots == {"synthetic": Path(synthetic_root)}  # what the demo hands `rft annotate`


def test_a_selection_matching_nothing_names_itself_and_what_is_there(tmp_path, synthetic_root):
    path = write_protocol(tmp_path, target=[{"dataset": "synthetic", "splits": ["dev"]}])
    with pytest.raises(
        ConfigError,
        match=r"\{dataset: synthetic, splits: \[dev\]\} matches no sample.*splits there: test, train",
    ):
        materialize(load_protocol(path), {"synthetic": synthetic_root}, tmp_path / "cache")


def test_a_generated_dataset_must_already_be_saved(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"data\.roots\.synthetic = .* holds no saved dataset; generate one there with `rft synth`",
    ):
        materialize(load_protocol(write_protocol(tmp_path)), {"synthetic": tmp_path}, tmp_path / "cache")


@pytest.fixture
def folder_protocol(tmp_path, media):
    media.image(tmp_path / "rose" / "real" / "a.png")
    media.image(tmp_path / "rose" / "fake" / "replay" / "b.png")
    selection = [{"dataset": "rose_youtu"}]
    return load_protocol(write_protocol(tmp_path, source=selection, target=selection))


def test_materialize_imports_a_released_layout_once_and_reuses_the_cache(
    tmp_path, folder_protocol, monkeypatch
):
    roots, cache = {"rose_youtu": tmp_path / "rose"}, tmp_path / "cache"
    data = materialize(folder_protocol, roots, cache, image_size=64)
    assert len(data.source) == 2 and data.targets["rose_youtu"][0]["image"].size == (64, 64)
    assert json.loads((cache / "rose_youtu" / "import_summary.json").read_text())["samples"] == 2

    def no_import(*args, **kwargs):
        raise AssertionError("the cached import should have been reused")

    monkeypatch.setattr(protocols, "import_dataset", no_import)
    assert len(materialize(folder_protocol, roots, cache, image_size=64).source) == 2
    with pytest.raises(AssertionError, match="should have been reused"):  # other options: import again
        materialize(folder_protocol, roots, cache, image_size=96)


def test_a_protocol_file_with_an_alias_bomb_is_refused_in_one_line(tmp_path):
    levels = "abcdefgh"
    bomb = "".join(
        f"{level}: &{level} [{','.join([f'*{levels[i - 1]}' if i else 'lol'] * 9)}]\n"
        for i, level in enumerate(levels)
    )
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb + "name: *h\n")
    with pytest.raises(ConfigError, match="aliases") as error:
        load_protocol(path)
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


def test_a_foreign_folder_in_the_data_cache_is_a_config_error_naming_the_key(tmp_path):
    from rft.data.prepare import prepare_roots, synthetic_dir

    target = synthetic_dir(tmp_path, 20, 0, 1.0, 64)
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("keep me")
    settings = {"n_per_domain": 20, "seed": 0, "attack_strength": 1.0, "image_size": 64, "workers": 1}
    with pytest.raises(ConfigError, match=r"^data\.cache_dir: .*was not made by rft synth"):
        prepare_roots(datasets_needed=["synthetic"], roots={}, cache_dir=tmp_path, **settings)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
