"""rft.eval.scored_samples: row validation and the video level, each error naming the offending row."""

from __future__ import annotations

import pytest

from rft.eval.scored_samples import InputError, load_samples, to_video_level


def test_video_with_two_attack_types_is_named():
    rows = [
        {"id": "1", "score": 0.1, "label": "live", "video_id": "v1"},
        {"id": "2", "score": 0.7, "label": "spoof", "attack_type": "print", "video_id": "v2"},
        {"id": "3", "score": 0.8, "label": "spoof", "attack_type": "replay", "video_id": "v2"},
    ]
    with pytest.raises(
        InputError, match="video 'v2' has frames with attack_type 'print' and 'replay'"
    ) as error:
        to_video_level(load_samples(rows))
    assert error.value.index == 2


def test_bad_rows_raise_input_error_with_the_row_index():
    rows = [{"id": "1", "score": 0.1, "label": "live"}, {"id": "2", "score": 1.5, "label": "spoof"}]
    with pytest.raises(InputError, match=r"outside \[0, 1\]") as error:
        load_samples(rows)
    assert error.value.index == 1
