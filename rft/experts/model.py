"""The expert network of paper 003, Appendix A.3 and Figure S9: a small CNN that sees one tool's output image
(never the RGB face) and predicts the probability that it shows spoof traces (Eq. 6, p_k = E_k(T_k(I))).

Figure S9 itself is a drawing this repository does not have; its caption fixes the building blocks: stacked
convolutions, "MaxPool" layers that halve the resolution, and an "MLP" of two linear layers with a ReLU
between them. We use Conv3x3-BatchNorm-ReLU-MaxPool2 blocks and flatten the last feature map into the MLP
(no global pooling), so that *where* a response sits survives: for FFTTool position is frequency, and a
moire peak means something only at its distance from the centre.
"""

from __future__ import annotations

import itertools

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn


class ExpertArchitecture(BaseModel):
    """Sizes of one expert. The defaults are small enough to train on two CPU cores in a minute or two."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_size: int = Field(112, ge=16, le=512, description="Side of the square tool picture fed to the CNN.")
    channels: tuple[int, ...] = Field(
        (8, 16, 32, 64), min_length=1, max_length=6, description="Output channels of each conv block."
    )
    hidden: int = Field(64, ge=1, le=4096, description="Width of the MLP's hidden layer.")
    dropout: float = Field(0.3, ge=0.0, lt=1.0, description="Dropout before the MLP's last layer.")

    @model_validator(mode="after")
    def _input_survives_pooling(self) -> ExpertArchitecture:
        if self.input_size % (2 ** len(self.channels)):
            raise ValueError(
                f"input_size {self.input_size} must be divisible by 2**{len(self.channels)} "
                f"(one halving per conv block)"
            )
        return self

    @property
    def feature_side(self) -> int:
        return self.input_size // 2 ** len(self.channels)


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv3x3 -> BatchNorm -> ReLU -> MaxPool(2): Figure S9's repeated unit ("MaxPool perform double
    downsampling")."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class ExpertCNN(nn.Module):
    """Tool picture (N, 1, S, S), standardised per image -> spoof logit (N,)."""

    def __init__(self, architecture: ExpertArchitecture) -> None:
        super().__init__()
        widths = (1, *architecture.channels)
        self.features = nn.Sequential(*(conv_block(a, b) for a, b in itertools.pairwise(widths)))
        flat = architecture.channels[-1] * architecture.feature_side**2
        self.mlp = nn.Sequential(  # Figure S9's "MLP": two linear layers with a ReLU
            nn.Flatten(),
            nn.Linear(flat, architecture.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(architecture.dropout),
            nn.Linear(architecture.hidden, 1),
        )

    def forward(self, pictures: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(pictures)).squeeze(1)
