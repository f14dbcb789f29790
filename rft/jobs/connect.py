"""Connecting a run to its rollout source and its reward scorer: the services' clients (HTTP) or their
in-process modes, chosen by the config's `rollout` and `reward_service` sections."""

from __future__ import annotations

import os
from pathlib import Path

from rft.config import RolloutConfig
from rft.errors import RunSetupError
from rft.rollout.protocols import EpisodeSource, ToolRunner


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
    return client


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
