"""vLLM rollout server: n single-turn samples or paper 003 tool episodes per image prompt, weight sync from
the trainer, several workers behind one client (docs/ROLLOUT_SERVER.md)."""
