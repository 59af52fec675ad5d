"""``mlp-infer``: a seeded 64-256-256-10 multilayer perceptron, batched inference."""

from typing import ClassVar

from torch import nn

from offchain.workers.workloads.inference import SampledInference
from offchain.workers.workloads.schema import Dim, Schema, TensorSpec

IN, HIDDEN, OUT = 64, 256, 10
_DIMS = (Dim("batch", 1, 65536),)


class MlpInfer(SampledInference):
    """Logits of a fixed seeded MLP for a batch of 64-feature rows."""

    id = "mlp-infer"
    version = 1
    model_seed: ClassVar[int] = 7001
    flops_per_row: ClassVar[int] = 2 * (IN * HIDDEN + HIDDEN * HIDDEN + HIDDEN * OUT)
    input_schema = Schema((TensorSpec("x", "float32", ("batch", IN)),), _DIMS, 65536 * IN)
    output_schema = Schema((TensorSpec("y", "float32", ("batch", OUT)),), _DIMS, 65536 * OUT)
    price_units = 1
    catch_statement = (
        "re-execution of max(2, ceil(batch/64)) sampled rows: q wrong rows of n are caught "
        "with 1 - C(n-q, s)/C(n, s)"
    )

    def architecture(self) -> nn.Module:
        """Return the untrained MLP."""
        return nn.Sequential(
            nn.Linear(IN, HIDDEN),
            nn.GELU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.GELU(),
            nn.Linear(HIDDEN, OUT),
        )
