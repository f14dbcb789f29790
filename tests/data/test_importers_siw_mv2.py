import pytest


@pytest.fixture
def siw_root(tmp_path, media):
    root = tmp_path / "SiW-Mv2"
    media.video(root / "Live" / "Live_12.mov")
    media.video(root / "Spoof" / "Makeup_Co" / "Makeup_Co_3.mov")
    media.frames(root / "Spoof" / "Mask_TransparentMask" / "Mask_TransparentMask_7", n_frames=3)  # extracted
    media.video(root / "Spoof" / "Silicone" / "Silicone_5.mov")
    media.video(root / "Spoof" / "Unicorn_Costume" / "Unicorn_Costume_1.mov")
    media.video(root / "Live" / "Live_x.mov")
    return root


def test_siw_mv2_maps_short_and_long_folder_names_and_reads_frame_folders(siw_root, run_importer):
    result = run_importer("siw_mv2", siw_root)
    expected = {
        "Live/Live_12.mov": ("live", "12"),
        "Spoof/Makeup_Co/Makeup_Co_3.mov": ("makeup_cosmetic", "3"),
        "Spoof/Mask_TransparentMask/Mask_TransparentMask_7": ("mask_transparent", "7"),
        "Spoof/Silicone/Silicone_5.mov": ("mask_silicone", "5"),
    }
    for source, values in expected.items():
        assert result.values(source, "spoof_type", "subject_id", "split") == (*values, "all")
    assert len(result.by_source()["Spoof/Mask_TransparentMask/Mask_TransparentMask_7"]) == 2


def test_siw_mv2_reports_unknown_attack_folders_and_unparseable_names(siw_root, run_importer):
    result = run_importer("siw_mv2", siw_root)
    assert "unknown SiW-Mv2 attack folder 'Unicorn_Costume'" in result.issue("Unicorn_Costume").problem
    assert "cannot read the subject number from 'Live_x.mov'" in result.issue("Live_x.mov").problem
    assert result.summary.rejected == 2 and result.summary.samples == 8
