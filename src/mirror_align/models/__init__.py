"""Reference models: the AU video-text model, the EE keyframe policy and their text encoder.

Both follow the representation protocol (docs/interfaces.md): ``represent(batch) -> [B, D]`` and
``loss(batch) -> scalar``; ``forward(batch)`` returns both (and the loss terms) from one pass.
"""

from mirror_align.models.config import (
    PRESETS,
    PolicyConfig,
    TextConfig,
    VideoTextConfig,
    policy_preset,
    video_text_preset,
)
from mirror_align.models.layers import ModelOutput
from mirror_align.models.policy import LOSS_TERMS, KeyframePolicy
from mirror_align.models.video_text import (
    VideoTextModel,
    load_viclip_vision,
    viclip_vision_state_dict,
)

__all__ = [
    "LOSS_TERMS",
    "PRESETS",
    "KeyframePolicy",
    "ModelOutput",
    "PolicyConfig",
    "TextConfig",
    "VideoTextConfig",
    "VideoTextModel",
    "load_viclip_vision",
    "policy_preset",
    "video_text_preset",
    "viclip_vision_state_dict",
]
