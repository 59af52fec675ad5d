"""The workload interface that the compute node agent calls.

A workload is refused before any work starts when its inputs do not match its schema or its
value rules (``validate``), and a request can be refused from its declared shapes alone, before
its data is decoded (``plan``: the output shapes and bytes and the work they commit a node to).
``run`` picks CUDA when the machine has it (or when asked),
``units`` meters the work in compute units, ``verify`` checks someone else's output cheaply
and says why it accepts or rejects. An issuer that holds the inputs before the result arrives
can split ``verify`` in two: ``prepare`` when the task is issued (the matrix products do two of
their three passes there) and ``check`` when the result arrives.
"""

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit, prange

from offchain.workers.verdict import Verdict
from offchain.workers.workload_errors import DeviceUnavailable, InvalidInput
from offchain.workers.workloads.codec import encoded_size
from offchain.workers.workloads.schema import Declared, Schema

Tensors = Mapping[str, np.ndarray]
# One compute unit is 10**6 basic operations (a float multiply or add, or a modular one).
OPS_PER_UNIT = 10**6
DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Prepared:
    """What ``Workload.prepare`` keeps for ``check``: whose it is, the input sizes, its secret.

    The state holds the verifier's random choices, so it stays with the issuer, and is used for
    one result only (a node that saw several verdicts on one state could learn about it).
    """

    workload: str
    version: int
    sizes: dict[str, int]
    state: object


@dataclass(frozen=True)
class Plan:
    """What a request's declared shapes commit a node to: sizes, outputs, output bytes, work."""

    sizes: dict[str, int]
    outputs: dict[str, tuple[str, tuple[int, ...]]]
    output_bytes: int
    ops: int
    units: int


class Workload(ABC):
    """A registered kind of work: schemas, runners, metering, price and verifier."""

    id: ClassVar[str]
    version: ClassVar[int]
    input_schema: ClassVar[Schema]
    output_schema: ClassVar[Schema]
    # Price of one compute unit, in EMC base units (10**-18 EMC).
    price_units: ClassVar[int]
    # What the verifier catches, and with which probability (docs/workloads.md derives it).
    catch_statement: ClassVar[str]

    def validate(self, inputs: Tensors) -> dict[str, int]:
        """Return the bound dimension sizes of ``inputs``, or raise ``InvalidInput``."""
        sizes = self.input_schema.check(inputs)
        self._check_values(inputs, sizes)
        return sizes

    def plan(
        self,
        declared: Mapping[str, Declared],
        max_output_bytes: int | None = None,
        max_units: int | None = None,
    ) -> Plan:
        """Return the plan for inputs of declared (dtype, shape) by name, or raise ``InvalidInput``.

        Refuses inputs outside the input schema, outputs beyond the output schema's element
        budget or ``max_output_bytes`` encoded, and work beyond ``max_units``; allocates nothing
        in proportion to the declared sizes.
        """
        sizes = self.input_schema.check_shapes(declared)
        outputs = self.output_schema.shapes(sizes)
        output_bytes = encoded_size(outputs)
        if max_output_bytes is not None and output_bytes > max_output_bytes:
            raise InvalidInput(
                f"output of {output_bytes} bytes, beyond the {max_output_bytes} a response holds"
            )
        ops = self.ops(sizes)
        units = max(1, math.ceil(ops / OPS_PER_UNIT))
        if max_units is not None and units > max_units:
            raise InvalidInput(f"{units} compute units, at most {max_units} per request")
        return Plan(sizes, outputs, output_bytes, ops, units)

    def run(self, inputs: Tensors, device: str | None = None) -> dict[str, np.ndarray]:
        """Return the outputs for ``inputs``, on ``device`` (CUDA by default when present)."""
        sizes = self.validate(inputs)
        # refuse an output beyond the output schema before allocating it
        self.output_schema.shapes(sizes)
        chosen = self.select_device(device)
        if chosen == "cuda":
            return self._run_cuda(inputs, sizes)
        return self._run_cpu(inputs, sizes)

    def units(self, inputs: Tensors) -> int:
        """Return the compute units that ``inputs`` cost (at least one)."""
        sizes = self.validate(inputs)
        return max(1, math.ceil(self.ops(sizes) / OPS_PER_UNIT))

    def price(self, inputs: Tensors) -> int:
        """Return the price of ``inputs`` in EMC base units."""
        return self.units(inputs) * self.price_units

    def verify(self, inputs: Tensors, outputs: Tensors, rng: np.random.Generator) -> Verdict:
        """Return whether ``outputs`` is accepted as the result for ``inputs``."""
        sizes = self._validate_for_verify(inputs)
        try:
            self.output_schema.check(outputs, bound=sizes)
        except InvalidInput as exc:
            return Verdict(False, f"malformed output: {exc}")
        return self._verify(inputs, outputs, sizes, rng)

    def prepare(self, inputs: Tensors, rng: np.random.Generator) -> Prepared:
        """Return what ``check`` needs, computed from the inputs alone (when the task is issued).

        Raises ``InvalidInput`` for inputs that ``verify`` would refuse.
        """
        sizes = self._validate_for_verify(inputs)
        return Prepared(self.id, self.version, sizes, self._prepare(inputs, sizes, rng))

    def check(self, prepared: Prepared, outputs: Tensors) -> Verdict:
        """Return whether ``outputs`` is accepted, given ``prepare``'s state for their inputs.

        ``check(prepare(inputs, rng), outputs)`` has the same verdicts, and the same stated
        catch probability, as ``verify(inputs, outputs, rng)``.
        """
        if (prepared.workload, prepared.version) != (self.id, self.version):
            raise ValueError(
                f"prepared for {prepared.workload} v{prepared.version}, "
                f"not {self.id} v{self.version}"
            )
        try:
            self.output_schema.check(outputs, bound=prepared.sizes)
        except InvalidInput as exc:
            return Verdict(False, f"malformed output: {exc}")
        return self._check(prepared.state, outputs, prepared.sizes)

    def select_device(self, device: str | None) -> str:
        """Return the device to run on: ``device``, or CUDA when available, else CPU."""
        if device is None:
            return "cuda" if self.cuda_available() else "cpu"
        if device not in DEVICES:
            raise DeviceUnavailable(f"unknown device {device!r}; expected one of {DEVICES}")
        if device == "cuda" and not self.cuda_available():
            raise DeviceUnavailable(f"{self.id}: CUDA asked for, but no CUDA device is present")
        return device

    def _validate_for_verify(self, inputs: Tensors) -> dict[str, int]:
        """Return the input sizes for a verifier (overridden where its passes check values)."""
        return self.validate(inputs)

    def _check_values(self, inputs: Tensors, sizes: dict[str, int]) -> None:
        """Raise ``InvalidInput`` when values (not shapes) are out of range; none by default."""
        return None

    def _prepare(self, inputs: Tensors, sizes: dict[str, int], rng: np.random.Generator) -> object:
        """Return the state for ``_check``; by default the inputs, for a one-shot ``_verify``."""
        return (inputs, rng)

    def _check(self, state: object, outputs: Tensors, sizes: dict[str, int]) -> Verdict:
        """Return the verdict on well-formed ``outputs`` from ``_prepare``'s state."""
        inputs, rng = state
        return self._verify(inputs, outputs, sizes, rng)

    @abstractmethod
    def ops(self, sizes: Mapping[str, int]) -> int:
        """Return the basic operations that inputs of ``sizes`` take."""

    @abstractmethod
    def cuda_available(self) -> bool:
        """Return whether this workload's CUDA runner can run here."""

    @abstractmethod
    def _run_cpu(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the outputs computed on the CPU."""

    @abstractmethod
    def _run_cuda(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the outputs computed on the GPU."""

    @abstractmethod
    def _verify(
        self, inputs: Tensors, outputs: Tensors, sizes: dict[str, int], rng: np.random.Generator
    ) -> Verdict:
        """Return the verdict on well-formed ``outputs``."""


@njit(parallel=True, cache=True)
def _finite_absmax(flat):  # pragma: no cover - compiled
    """Return (number of non-finite values, largest finite magnitude) in one pass."""
    bad = 0
    top = 0.0
    for i in prange(flat.size):
        v = abs(np.float64(flat[i]))
        if not np.isfinite(v):
            bad += 1
        else:
            top = max(top, v)
    return bad, top


def check_finite(name: str, array: np.ndarray) -> float:
    """Return the largest magnitude in ``array``; raise ``InvalidInput`` on a NaN or infinity."""
    if array.size == 0:
        return 0.0
    bad, top = _finite_absmax(np.ascontiguousarray(array).reshape(-1))
    if bad:
        raise InvalidInput(f"{name}: values must be finite")
    return float(top)
