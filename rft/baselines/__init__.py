"""The papers' baselines, trained and evaluated on the same protocols and metrics as the GRPO methods."""
