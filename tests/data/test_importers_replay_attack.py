import pytest

REAL = "train/real/client001_session01_webcam_authenticate_adverse_1.mov"
PRINTED = "train/attack/hand/attack_print_client001_session01_highdef_photo_adverse.mov"
SCREEN_VIDEO = "devel/attack/fixed/attack_highdef_client002_session01_highdef_video_controlled.mov"
PHONE_PHOTO = "test/attack/fixed/attack_mobile_client003_session01_mobile_photo_adverse.mov"


@pytest.fixture
def replay_root(tmp_path, media):
    root = tmp_path / "replayattack"
    for name in (REAL, PRINTED, SCREEN_VIDEO, PHONE_PHOTO):
        media.video(root / name)
    media.video(root / "train/attack/hand/attack_paper_client001.mov")
    return root


def test_replay_attack_tells_print_from_replay_by_the_attack_device(replay_root, run_importer):
    result = run_importer("replay_attack", replay_root)
    expected = {
        REAL: ("live", "train", "001"),
        PRINTED: ("print", "train", "001"),
        SCREEN_VIDEO: ("replay", "dev", "002"),
        PHONE_PHOTO: ("replay", "test", "003"),  # a photo shown on a phone screen is a replay attack
    }
    for source, values in expected.items():
        assert result.values(source, "spoof_type", "split", "subject_id") == values
    assert '"support": "hand"' in result.first(PRINTED)["meta"]


def test_replay_attack_rejects_unparseable_names_and_keeps_the_rest(replay_root, run_importer):
    result = run_importer("replay_attack", replay_root)
    issue = result.issue("attack_paper_client001.mov")
    assert "unexpected attack video name" in issue.problem and issue.line is None
    assert result.summary.rejected == 1 and result.summary.samples == 8
