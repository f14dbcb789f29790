"""Connecting a run to its rollout source and its reward scorer: the services' clients (HTTP) or their
in-process modes, chosen by the config's `rollout` and `reward_service` sections."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rft.config import RolloutConfig
from rft.errors import RunSetupError
from rft.rollout.protocols import EpisodeSource, ToolRunner
from rft.tools.toolbox import TOOL_NAMES


def check_rollout_settings(rollout: RolloutConfig) -> None:
    """Refuse, before any data or model is loaded, a server-mode run without the weight-update token."""
    if rollout.mode == "server" and not os.environ.get(rollout.token_env):
        raise RunSetupError(
            f"rollout.mode is server but ${rollout.token_env} is empty; export the token the rollout servers "
            "were started with (--token), or set rollout.mode=inprocess"
        )


def episode_source(
    rollout: RolloutConfig,
    *,
    model_dir: Path,
    max_tool_calls: int,
    image_size: int,
    tools: ToolRunner,
    seed: int,
    tool_episodes: bool = True,
    tool_names: Sequence[str] | None = None,
) -> EpisodeSource:
    """The rollout servers (server mode; waits until they are ready and checks that they stop episodes at
    `max_tool_calls` when `tool_episodes`) or vLLM in this process. Build it on the main process only."""
    if rollout.mode == "inprocess":
        from rollout_server.inprocess import InProcessRollouts

        return InProcessRollouts(
            model_dir,
            tools=tools,
            max_model_len=rollout.max_model_len,
            max_tool_calls=max_tool_calls,
            image_size=image_size,
            seed=seed,
            gpu_memory_utilization=rollout.gpu_memory_utilization,
            tool_names=tool_names,
        )
    from rollout_server.client import RolloutClient

    check_rollout_settings(rollout)
    client = RolloutClient(
        rollout.urls,
        token=os.environ[rollout.token_env],
        timeout_s=rollout.request_timeout_s,
        prompts_per_request=rollout.prompts_per_request,
    )
    ready = client.wait_ready(timeout_s=rollout.request_timeout_s)
    if tool_episodes:
        check_tool_limit(ready, max_tool_calls)
        check_tool_set(ready, tool_names)
    return client


def check_tool_set(ready: dict[str, dict], tool_names: Sequence[str] | None) -> None:
    """The servers offer and run their own --tools while the rewards count run.tools: refuse a run where the
    two differ (a server that does not report its tools offers all six)."""
    wanted = list(tool_names) if tool_names is not None else list(TOOL_NAMES)
    for url, answer in ready.items():
        served = answer.get("tools", list(TOOL_NAMES))
        if served != wanted:
            raise RunSetupError(
                f"rollout server {url} offers the tools {', '.join(served)} but run.tools is "
                f"{', '.join(wanted)}; restart it with --tools {','.join(wanted)} or set run.tools to match"
            )


def check_tool_limit(ready: dict[str, dict], max_tool_calls: int) -> None:
    """The servers stop an episode at their own --max-tool-calls while the rewards count calls against
    grpo.max_tool_calls: refuse a run where the two differ."""
    for url, answer in ready.items():
        served = answer.get("max_tool_calls")
        if served is not None and served != max_tool_calls:
            raise RunSetupError(
                f"rollout server {url} runs --max-tool-calls {served} but grpo.max_tool_calls is "
                f"{max_tool_calls}; restart it with --max-tool-calls {max_tool_calls} or set "
                f"grpo.max_tool_calls: {served}"
            )
