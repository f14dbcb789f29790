"""The reward service: executes visual tool calls and scores rollouts (`python -m reward_service --help`)."""

from reward_service.client import InProcessRewards, RewardClient, RewardServiceError, ToolResult, connect

__all__ = ["InProcessRewards", "RewardClient", "RewardServiceError", "ToolResult", "connect"]
