"""InstructFLIP (paper 000): a CLIP vision encoder, content and style Q-Former branches instruction-tuned
through a frozen FLAN-T5, content-feature-assisted query fusion, a live/spoof classifier and a cue generator.
The modules import torch and transformers lazily from here: `config` and `questions` are light."""
