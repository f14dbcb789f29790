"""From a generated explanation to a live/spoof decision (paper 002, "Evaluation": GPT-4o-mini reads each
explanation and says whether it implies live or spoof).

- `RuleJudge` (default, offline): the verdict the text states, read as the annotation checks read captions
  (rft.annotate.verify): a reasoning explanation's "Final judgment" stage when it has the six stages, else
  the last sentence that states a verdict ("... is a spoof", "appears to be real", "not a genuine face").
- `OpenAIJudge`: an OpenAI-compatible chat endpoint asked for one word, live or spoof, as the paper does.

Both return None when the text implies neither class (no verdict, or both); the evaluation counts such an
explanation as wrong (rft.baselines.caption.predict).
"""

from __future__ import annotations

import os
import re
from typing import Literal, Protocol

import httpx

from rft.annotate.verify import caption_stages, stated_verdict
from rft.errors import RftError

Decision = Literal["live", "spoof"]
JUDGE_SYSTEM = (
    "You read a face anti-spoofing model's explanation of an image. Decide whether the explanation concludes "
    "that the face is live (bona fide, real) or spoof (a presentation attack: print, replay, mask, ...). "
    "Answer with exactly one word: live or spoof."
)


class JudgeError(RftError):
    """The judge endpoint failed or answered in an unusable way."""


class Judge(Protocol):
    def decide(self, explanation: str) -> Decision | None: ...


class RuleJudge:
    """The offline reader of the stated verdict."""

    def decide(self, explanation: str) -> Decision | None:
        stages = caption_stages(explanation)
        judged = stages["final_judgment"] if stages else explanation
        verdict = stated_verdict(judged)
        return verdict if verdict in ("live", "spoof") else None  # type: ignore[return-value]


def decision_from_answer(answer: str) -> Decision | None:
    """The judge's one-word answer as a decision: live / spoof (real, bona fide and fake accepted)."""
    words = set(re.findall(r"[a-z]+", answer.lower()))
    spoof, live = bool(words & {"spoof", "fake", "attack"}), bool(words & {"live", "real", "bona", "genuine"})
    if spoof == live:
        return None
    return "spoof" if spoof else "live"


class OpenAIJudge:
    """An OpenAI-compatible `/chat/completions` endpoint (temperature 0, a few tokens)."""

    def __init__(
        self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 60.0
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        key = os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout_s)

    def decide(self, explanation: str) -> Decision | None:
        body = {
            "model": self.model,
            "temperature": 0,
            "max_tokens": 5,
            "messages": [
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": explanation},
            ],
        }
        try:
            response = self.client.post(self.url, json=body)
            response.raise_for_status()
            answer = response.json()["choices"][0]["message"]["content"]
        except httpx.HTTPError as error:
            raise JudgeError(
                f"judge {self.url}: {error}; check caption.judge_url and that it is up"
            ) from None
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeError(f"judge {self.url}: the reply is not an OpenAI chat completion") from None
        return decision_from_answer(str(answer))

    def close(self) -> None:
        self.client.close()


def make_judge(kind: str, *, url: str | None, model: str, api_key_env: str) -> Judge:
    """The configured judge (caption.judge)."""
    if kind == "rules":
        return RuleJudge()
    if kind == "openai" and url:
        return OpenAIJudge(url, model, api_key_env)
    raise JudgeError(f"caption.judge {kind!r} needs caption.judge_url; or use judge: rules")
