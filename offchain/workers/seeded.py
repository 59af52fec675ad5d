"""Models whose weights come from a seed: the same bytes on every machine, nothing downloaded."""

import math

import numpy as np
import torch
from torch import nn


def seeded_init(model: nn.Module, seed: int) -> nn.Module:
    """Fill every parameter from ``seed`` (weights ~ N(0, 1/fan_in), biases ~ N(0, 0.01))."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if name.endswith("bias"):
                param.copy_(noise * 0.1)
            else:
                fan_in = int(np.prod(param.shape[1:]))
                param.copy_(noise / math.sqrt(fan_in))
    return model.eval()
