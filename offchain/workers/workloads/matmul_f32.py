"""``matmul-f32``: a dense float32 product, through PyTorch (the machine's BLAS, or CUDA)."""

from collections.abc import Mapping

import numpy as np
import torch

from offchain.workers.verifiers import F32_TRIALS, check_f32, freivalds_f32, prepare_f32
from offchain.workers.workload_errors import InvalidInput
from offchain.workers.workloads.base import Tensors, Verdict, Workload, check_finite
from offchain.workers.workloads.schema import Dim, Schema, TensorSpec

MAX_DIM = 8192
_DIMS = (Dim("m", 1, MAX_DIM), Dim("k", 1, MAX_DIM), Dim("n", 1, MAX_DIM))
_F32_MAX = float(np.finfo(np.float32).max)


class MatmulF32(Workload):
    """C = A @ B in float32 (IEEE accumulation; TF32 is turned off on CUDA)."""

    id = "matmul-f32"
    version = 1
    input_schema = Schema(
        tensors=(TensorSpec("a", "float32", ("m", "k")), TensorSpec("b", "float32", ("k", "n"))),
        dims=_DIMS,
        max_elements=2 * 4096 * 4096,
    )
    output_schema = Schema(
        tensors=(TensorSpec("c", "float32", ("m", "n")),), dims=_DIMS, max_elements=4096 * 4096
    )
    price_units = 1
    catch_statement = (
        "Freivalds with r_j = +-U[1,2): a row residual above the rigorous bound tau_i is "
        f"rejected; one wrong element off by more than 2 tau_i: 1.0; any row error with an "
        f"element d > 2 tau_i: >= 1 - min(1/2, 2 tau_i/|d|)^{F32_TRIALS}"
    )

    def _check_values(self, inputs: Tensors, sizes: dict[str, int]) -> None:
        """Refuse non-finite inputs and inputs whose products could overflow float32."""
        amax = check_finite("a", inputs["a"])
        bmax = check_finite("b", inputs["b"])
        if amax * bmax * sizes["k"] > _F32_MAX / 2:
            raise InvalidInput("inputs so large that the float32 product could overflow")

    def _validate_for_verify(self, inputs: Tensors) -> dict[str, int]:
        """Check the schema only: Freivalds' passes check finiteness and magnitude themselves."""
        return self.input_schema.check(inputs)

    def ops(self, sizes: Mapping[str, int]) -> int:
        """Return 2*m*k*n floating-point operations."""
        return 2 * sizes["m"] * sizes["k"] * sizes["n"]

    def cuda_available(self) -> bool:
        """Return whether PyTorch sees a CUDA device."""
        return torch.cuda.is_available()

    def _run_cpu(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the product from PyTorch's CPU BLAS."""
        a = torch.from_numpy(np.ascontiguousarray(inputs["a"]))
        b = torch.from_numpy(np.ascontiguousarray(inputs["b"]))
        with torch.inference_mode():
            return {"c": torch.matmul(a, b).numpy()}

    def _run_cuda(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the product from cuBLAS, in full float32 (no TF32, so the bound holds)."""
        torch.backends.cuda.matmul.allow_tf32 = False
        with torch.inference_mode():
            a = torch.from_numpy(np.ascontiguousarray(inputs["a"])).cuda()
            b = torch.from_numpy(np.ascontiguousarray(inputs["b"])).cuda()
            return {"c": torch.matmul(a, b).cpu().numpy()}

    def _verify(
        self, inputs: Tensors, outputs: Tensors, sizes: dict[str, int], rng: np.random.Generator
    ) -> Verdict:
        """Return Freivalds' verdict against the float32 rounding bound."""
        return freivalds_f32(inputs["a"], inputs["b"], outputs["c"], rng)

    def _prepare(self, inputs: Tensors, sizes: dict[str, int], rng: np.random.Generator) -> object:
        """Draw the secret vectors and compute ``A(Br)``: the passes over A and B."""
        return prepare_f32(inputs["a"], inputs["b"], rng)

    def _check(self, state: object, outputs: Tensors, sizes: dict[str, int]) -> Verdict:
        """Compare ``C r`` with the prepared ``A(Br)``: one pass over C."""
        return check_f32(state, outputs["c"])
