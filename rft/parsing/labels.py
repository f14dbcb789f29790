"""The two face classes as the parsers and rewards name them, and the dataset label values they accept."""

from __future__ import annotations

import numbers
from typing import Literal

# The same values as rft.data.schema.Label, repeated so that parsing and rewards (which the reward service
# imports) do not pull in the `datasets` stack that the schema module needs.
Label = Literal["live", "spoof"]

# rft.data.schema stores labels as ClassLabel(names=["live", "spoof"]): index 0 is live, 1 is spoof.
_LABEL_BY_VALUE: dict[object, Label] = {"live": "live", "spoof": "spoof", 0: "live", 1: "spoof"}


def as_label(value: object) -> Label:
    """A dataset label ('live' / 'spoof', or the ClassLabel index 0 / 1) as a `Label`.

    A label is data, not model output: anything else is a bug upstream and raises ValueError.
    """
    # Only strings and integers: True and 1.0 compare equal to 1 and would silently read as spoof.
    is_index = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    key = int(value) if is_index else value if isinstance(value, str) else None
    if key not in _LABEL_BY_VALUE:
        raise ValueError(f"label must be 'live', 'spoof', 0 or 1, got {value!r}")
    return _LABEL_BY_VALUE[key]
