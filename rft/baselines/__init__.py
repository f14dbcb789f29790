"""The baselines the papers compare reinforcement fine-tuning against, trained on the same data and protocols
and evaluated into the same report (docs/BASELINES.md)."""
