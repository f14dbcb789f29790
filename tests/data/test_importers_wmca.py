import pytest

HEADER = "presentation_id,client_id,pai_type,split"


@pytest.fixture
def wmca_root(tmp_path, media):
    root = tmp_path / "HQ-WMCA"
    media.frames(root / "p001", n_frames=3)
    media.frames(root / "p002" / "color", n_frames=3)
    media.frames(root / "p003", n_frames=3)
    media.frames(root / "p004", n_frames=3)
    media.lines(
        root / "metadata.csv",
        [
            HEADER,
            "p001,c01,bonafide,test",
            "p002,c01,Rigid mask,test",
            "p003,c02,glasses,",
            "p004,c02,unicorn,test",
            "p005,c03,print,test",
            "p006,c03",
        ],
    )
    return root


@pytest.mark.parametrize("dataset", ["hqwmca", "wmca"])
def test_wmca_reads_colour_frames_with_metadata(wmca_root, run_importer, dataset):
    result = run_importer(dataset, wmca_root)
    expected = {
        "p001": ("live", "c01", "test"),
        "p002/color": ("mask_rigid", "c01", "test"),
        "p003": ("partial_paperglasses", "c02", "all"),
    }
    for source, values in expected.items():
        columns = ("spoof_type", "subject_id", "split", "dataset", "domain")
        assert result.values(source, *columns) == (*values, dataset, dataset)


def test_wmca_reports_bad_rows_and_missing_presentations_with_their_line(wmca_root, run_importer):
    result = run_importer("hqwmca", wmca_root)
    assert "unknown pai_type 'unicorn'" in result.issue("metadata.csv", 5).problem
    assert "missing file" in result.issue("metadata.csv", 6).problem
    assert "empty pai_type" in result.issue("metadata.csv", 7).problem
    assert result.summary.rejected == 3 and result.summary.samples == 6


def test_wmca_without_the_required_columns_imports_nothing_and_says_which(tmp_path, media):
    from rft.data.importers.wmca import scan_wmca

    media.lines(tmp_path / "metadata.csv", ["presentation,client,pai_type", "p001,c01,print"])
    scan = scan_wmca(tmp_path)
    assert not scan.items
    assert [(i.line, i.problem) for i in scan.issues] == [
        (1, "header lacks column(s) presentation_id, client_id; no rows imported")
    ]
