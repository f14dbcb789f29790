"""Bad values are shown in error messages at a bounded size, without building their full repr."""

import time

from rft.errors import short_repr, short_text


def test_short_values_are_shown_whole():
    assert (
        short_repr("eight") == "'eight'"
        and short_repr(3.5) == "3.5"
        and short_repr({"a": [1]}) == "{'a': [1]}"
    )


def test_a_long_string_keeps_its_start_and_says_its_length():
    assert short_repr("x" * 1000) == repr("x" * 200) + "…(1000 chars)"
    assert short_text("y" * 300, 10) == "yyyyyyyyyy…(300 chars)"


def test_a_huge_shared_structure_is_shown_short_and_fast():
    value = ["lol"] * 9
    for _ in range(8):  # 9**9 strings, a repr of about 3 GB
        value = [value] * 9
    started = time.perf_counter()
    shown = short_repr(value)
    assert time.perf_counter() - started < 0.1 and len(shown) <= 201
