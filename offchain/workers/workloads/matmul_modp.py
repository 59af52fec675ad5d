"""``matmul-modp``: an exact integer product modulo P, in Numba (CPU) and numba.cuda (GPU)."""

from collections.abc import Mapping

import numpy as np
from numba import cuda

from offchain.workers.kernels.modp import P, matmul_mod, matmul_mod_cuda
from offchain.workers.verifiers import MOD_TRIALS, check_mod, freivalds_mod, prepare_mod
from offchain.workers.workload_errors import InvalidInput
from offchain.workers.workloads.base import Tensors, Verdict, Workload
from offchain.workers.workloads.schema import Dim, Schema, TensorSpec

MAX_DIM = 8192
_DIMS = (Dim("m", 1, MAX_DIM), Dim("k", 1, MAX_DIM), Dim("n", 1, MAX_DIM))


class MatmulModP(Workload):
    """C = A @ B mod P for uint32 entries in [0, P); bit-exact on every device."""

    id = "matmul-modp"
    version = 1
    modulus = P
    input_schema = Schema(
        tensors=(TensorSpec("a", "uint32", ("m", "k")), TensorSpec("b", "uint32", ("k", "n"))),
        dims=_DIMS,
        max_elements=2 * 4096 * 4096,
    )
    output_schema = Schema(
        tensors=(TensorSpec("c", "uint32", ("m", "n")),), dims=_DIMS, max_elements=4096 * 4096
    )
    price_units = 2
    catch_statement = (
        f"Freivalds over GF({P}), {MOD_TRIALS} trials: any wrong output is rejected with "
        f"probability >= 1 - P^-{MOD_TRIALS}"
    )

    def _check_values(self, inputs: Tensors, sizes: dict[str, int]) -> None:
        """Refuse entries that are not reduced modulo P."""
        for name in ("a", "b"):
            if inputs[name].size and int(inputs[name].max()) >= P:
                raise InvalidInput(f"{name}: entries must lie in [0, {P})")

    def _validate_for_verify(self, inputs: Tensors) -> dict[str, int]:
        """Check the schema only: Freivalds' passes check the entries' range themselves."""
        return self.input_schema.check(inputs)

    def ops(self, sizes: Mapping[str, int]) -> int:
        """Return 2*m*k*n modular operations (a multiply and an add per term)."""
        return 2 * sizes["m"] * sizes["k"] * sizes["n"]

    def cuda_available(self) -> bool:
        """Return whether numba.cuda sees a device."""
        return cuda.is_available()

    def _run_cpu(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the product from float64 BLAS on exact blocks, reduced in Numba."""
        return {"c": matmul_mod(inputs["a"], inputs["b"])}

    def _run_cuda(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the product from the tiled numba.cuda kernel."""
        return {"c": matmul_mod_cuda(inputs["a"], inputs["b"])}

    def _verify(
        self, inputs: Tensors, outputs: Tensors, sizes: dict[str, int], rng: np.random.Generator
    ) -> Verdict:
        """Return Freivalds' exact verdict modulo P."""
        return freivalds_mod(inputs["a"], inputs["b"], outputs["c"], rng)

    def _prepare(self, inputs: Tensors, sizes: dict[str, int], rng: np.random.Generator) -> object:
        """Draw the secret vectors and compute ``A(Br)``: the passes over A and B."""
        return prepare_mod(inputs["a"], inputs["b"], rng)

    def _check(self, state: object, outputs: Tensors, sizes: dict[str, int]) -> Verdict:
        """Compare ``C r`` with the prepared ``A(Br)``: one pass over C."""
        return check_mod(state, outputs["c"])
