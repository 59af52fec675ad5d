"""``cnn-infer``: a seeded two-layer convolutional network on 1x28x28 images."""

from typing import ClassVar

from torch import nn

from offchain.workers.workloads.inference import SampledInference
from offchain.workers.workloads.schema import Dim, Schema, TensorSpec

SIDE, CLASSES = 28, 10
_DIMS = (Dim("batch", 1, 8192),)
# conv1: 28*28 positions x 8 channels x 9 taps; conv2: 14*14 x 16 x 8*9; fc: 16*7*7 -> 10.
_FLOPS = 2 * (28 * 28 * 8 * 9 + 14 * 14 * 16 * 8 * 9 + 16 * 7 * 7 * CLASSES)


class CnnInfer(SampledInference):
    """Logits of a fixed seeded CNN for a batch of single-channel 28x28 images."""

    id = "cnn-infer"
    version = 1
    model_seed: ClassVar[int] = 7002
    flops_per_row: ClassVar[int] = _FLOPS
    input_schema = Schema(
        (TensorSpec("x", "float32", ("batch", 1, SIDE, SIDE)),), _DIMS, 8192 * SIDE * SIDE
    )
    output_schema = Schema((TensorSpec("y", "float32", ("batch", CLASSES)),), _DIMS, 8192 * 10)
    price_units = 1
    catch_statement = (
        "re-execution of max(2, ceil(batch/64)) sampled images: q wrong rows of n are caught "
        "with 1 - C(n-q, s)/C(n, s)"
    )

    def architecture(self) -> nn.Module:
        """Return the untrained CNN."""
        return nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 7 * 7, CLASSES),
        )
