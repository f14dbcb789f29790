"""Paper 002's caption-supervised VLM: a Qwen2.5-VL / InternVL3 backbone with LoRA, a linear live/spoof head on
pooled vision features, trained on 0.7 x classification + 0.3 x caption language modelling (Eq. 1).

`model` (the dual-objective model, its loss, save and reload), `data` (caption datasets and their collator),
`trainer` (transformers' Trainer with every loss term logged), `judge` (explanation -> live/spoof), `predict`
(head scores and judged explanations as per-sample score files). docs/BASELINES.md has the details.
"""
