"""The rows a metrics report is computed from: `ScoredSample` (one evaluated image or video), their validation
(`load_samples`, which raises `InputError` naming the row) and the video level (`to_video_level`).

The row format is the scores CSV's (docs/METRICS.md); dict rows use the CSV's column names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rft.errors import RftError
from rft.eval import metrics

Label = Literal["live", "spoof"]
Source = Literal["rows", "dev_rows"]

CSV_COLUMNS = ("id", "score", "label", "attack_type", "video_id", "domain", "decision")


class InputError(RftError):
    """Unusable input. `source` says which rows (the evaluated ones or the dev ones), `index` which row
    (0-based, None when the problem is not one row's), so a caller can point at the file line."""

    def __init__(self, message: str, *, source: Source = "rows", index: int | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.index = index


@dataclass(frozen=True)
class ScoredSample:
    """One evaluated sample (an image, or a video after frame averaging).

    `score` is the probability of spoof in [0, 1]; a decision-only model gives `decision` instead.
    `attack_type`, `video_id` and `domain` are optional.
    """

    id: str
    label: Label
    score: float | None = None
    decision: Label | None = None
    attack_type: str | None = None
    video_id: str | None = None
    domain: str | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("id is empty; give every row a unique id")
        if self.label not in ("live", "spoof"):
            raise ValueError(f"label {self.label!r} is neither 'live' nor 'spoof'; write live or spoof")
        if self.decision is not None and self.decision not in ("live", "spoof"):
            raise ValueError(f"decision {self.decision!r} is neither 'live' nor 'spoof'; write live or spoof")
        if self.score is None and self.decision is None:
            raise ValueError("score is empty and there is no decision; give the probability of spoof")
        if self.score is not None:
            _check_probability(self.score)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ScoredSample:
        """From a CSV row or a dict with the CSV's column names; empty strings mean "not given"."""
        fields = {name: _given(record.get(name)) for name in CSV_COLUMNS}
        if fields["label"] is None:
            raise ValueError("label is empty; write live or spoof")
        return cls(
            id=str(fields["id"] or ""),
            label=str(fields["label"]),  # type: ignore[arg-type]  # checked in __post_init__
            score=None if fields["score"] is None else _parse_score(fields["score"]),
            decision=None if fields["decision"] is None else str(fields["decision"]),  # type: ignore[arg-type]
            attack_type=None if fields["attack_type"] is None else str(fields["attack_type"]),
            video_id=None if fields["video_id"] is None else str(fields["video_id"]),
            domain=None if fields["domain"] is None else str(fields["domain"]),
        )


def _given(value: Any) -> Any:
    """None for a missing or blank value, the stripped string for a string, the value otherwise."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _parse_score(value: Any) -> float:
    if not isinstance(value, bool):  # bool is an int: True would otherwise pass as the score 1.0
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise ValueError(f"score {value!r} is not a number; write the probability of spoof, e.g. 0.83")


def _check_probability(score: float) -> None:
    if math.isnan(score):
        raise ValueError("score is NaN; every row needs the probability of spoof as a number")
    if not 0.0 <= score <= 1.0:
        raise ValueError(
            f"score {score} is outside [0, 1]; scores are the probability of spoof (apply a sigmoid or "
            "softmax to logits)"
        )


# ------------------------------------------------------------------------------------ loading rows


def load_samples(
    rows: Iterable[ScoredSample | Mapping[str, Any]], source: Source = "rows"
) -> list[ScoredSample]:
    """Validate rows (ScoredSample or CSV-like dicts) into samples. Raises InputError naming the row."""
    samples = []
    for index, row in enumerate(rows):
        try:
            samples.append(row if isinstance(row, ScoredSample) else ScoredSample.from_record(row))
        except ValueError as error:
            raise InputError(str(error), source=source, index=index) from None
    if not samples:
        raise InputError("no rows: empty input, nothing to evaluate", source=source)
    _check_unique_ids(samples, source)
    _check_all_or_none(samples, source, "score", "give every row a score, or none (decision-only input)")
    _check_all_or_none(samples, source, "domain", "give every row a domain, or none")
    return samples


def _check_unique_ids(samples: Sequence[ScoredSample], source: Source) -> None:
    first_row: dict[str, int] = {}
    for index, sample in enumerate(samples):
        if sample.id in first_row:
            raise InputError(
                f"id {sample.id!r} repeats row {first_row[sample.id] + 1}; ids must be unique",
                source=source,
                index=index,
            )
        first_row[sample.id] = index


def _check_all_or_none(samples: Sequence[ScoredSample], source: Source, field: str, fix: str) -> None:
    """A field given on some rows only would silently mix two kinds of evaluation."""
    given = [getattr(sample, field) is not None for sample in samples]
    if any(given) and not all(given):
        index = given.index(not given[0])
        state, other = ("empty", "has one") if given[0] else ("given", "has none")
        raise InputError(f"{field} is {state} but row 1 {other}; {fix}", source=source, index=index)


def has_scores(samples: Sequence[ScoredSample]) -> bool:
    """Whether the (validated) samples carry scores rather than decisions only."""
    return samples[0].score is not None


def has_domains(samples: Sequence[ScoredSample]) -> bool:
    """Whether the (validated) samples carry a domain."""
    return samples[0].domain is not None


# ------------------------------------------------------------------------------------- video level


def to_video_level(samples: Sequence[ScoredSample], source: Source = "rows") -> list[ScoredSample]:
    """One sample per video with the mean frame score; label, attack type and domain must agree per video."""
    if not has_scores(samples):
        raise InputError(
            "video-level evaluation averages scores; decision-only input has none", source=source
        )
    for index, sample in enumerate(samples):
        if sample.video_id is None:
            raise InputError(
                "video_id is empty; video-level evaluation needs one on every row", source=source, index=index
            )
    video_ids = [sample.video_id for sample in samples]
    try:
        videos = metrics.average_scores_per_video(
            video_ids,  # type: ignore[arg-type]  # checked above
            [sample.score for sample in samples],
            metrics.labels_from_strings(sample.label for sample in samples),
        )
    except ValueError as error:
        raise InputError(str(error), source=source) from None
    attack_types = _one_value_per_video(samples, "attack_type", source)
    domains = _one_value_per_video(samples, "domain", source)
    return [
        ScoredSample(
            id=video,
            label="spoof" if label == metrics.SPOOF else "live",
            score=float(score),
            attack_type=attack_types[video],
            video_id=video,
            domain=domains[video],
        )
        for video, score, label in zip(videos.video_ids, videos.scores, videos.labels, strict=True)
    ]


def _one_value_per_video(
    samples: Sequence[ScoredSample], field: str, source: Source
) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for index, sample in enumerate(samples):
        value = getattr(sample, field)
        video = str(sample.video_id)
        if values.setdefault(video, value) != value:
            raise InputError(
                f"video {video!r} has frames with {field} {values[video]!r} and {value!r}; "
                f"a video has one {field}",
                source=source,
                index=index,
            )
    return values
