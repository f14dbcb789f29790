"""The rollout server's HTTP routes, one router per concern; rollout_server.app assembles them."""

from __future__ import annotations

from rollout_server.routes import chat, health, rollouts, weights

ROUTERS = (health.router, rollouts.router, chat.router, weights.router)
