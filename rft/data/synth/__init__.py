"""Physically simulated face anti-spoofing benchmark (`rft synth`): real and procedural faces, print / replay /
mask / partial attacks rendered from first principles, captured by a simulated camera in several domains.

See docs/SYNTHETIC.md.
"""

from rft.data.synth.generate import (
    DATASET_NAME,
    DOMAINS,
    SUPPORTED_TYPES,
    Domain,
    ImagePlan,
    RenderedImage,
    generate_benchmark,
    plan_benchmark,
    render_image,
    write_contact_sheet,
)

__all__ = [
    "DATASET_NAME",
    "DOMAINS",
    "SUPPORTED_TYPES",
    "Domain",
    "ImagePlan",
    "RenderedImage",
    "generate_benchmark",
    "plan_benchmark",
    "render_image",
    "write_contact_sheet",
]
