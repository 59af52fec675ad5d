"""Tensor schemas: names, dtypes and symbolic shapes with bounds, checked before any work."""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from offchain.workers.errors import InvalidInput


@dataclass(frozen=True)
class Dim:
    """A symbolic dimension shared between tensors, with inclusive bounds."""

    name: str
    low: int
    high: int


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: its dtype and its shape as dimension names or fixed sizes."""

    name: str
    dtype: str
    shape: tuple[str | int, ...]


@dataclass(frozen=True)
class Schema:
    """A set of tensors, the bounds of their symbolic dimensions, and an element budget."""

    tensors: tuple[TensorSpec, ...]
    dims: tuple[Dim, ...]
    max_elements: int

    def check(
        self, arrays: Mapping[str, np.ndarray], bound: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        """Return the dimension sizes that ``arrays`` bind, or raise ``InvalidInput``."""
        if not isinstance(arrays, Mapping):
            raise InvalidInput(f"expected a mapping of tensors, got {type(arrays).__name__}")
        expected = {spec.name for spec in self.tensors}
        missing, extra = expected - set(arrays), set(arrays) - expected
        if missing or extra:
            raise InvalidInput(f"tensors missing {sorted(missing)}, unexpected {sorted(extra)}")
        limits = {dim.name: dim for dim in self.dims}
        sizes: dict[str, int] = dict(bound or {})
        total = 0
        for spec in self.tensors:
            array = arrays[spec.name]
            if not isinstance(array, np.ndarray):
                raise InvalidInput(f"{spec.name}: expected a numpy array")
            if array.dtype != np.dtype(spec.dtype):
                raise InvalidInput(f"{spec.name}: dtype {array.dtype}, expected {spec.dtype}")
            if array.ndim != len(spec.shape):
                raise InvalidInput(
                    f"{spec.name}: {array.ndim} dimensions, expected {len(spec.shape)}"
                )
            for axis, (want, got) in enumerate(zip(spec.shape, array.shape, strict=True)):
                if isinstance(want, int):
                    if got != want:
                        raise InvalidInput(f"{spec.name}: axis {axis} is {got}, expected {want}")
                    continue
                if want in sizes and sizes[want] != got:
                    raise InvalidInput(
                        f"{spec.name}: axis {axis} is {got}, but {want} = {sizes[want]}"
                    )
                dim = limits[want]
                if not dim.low <= got <= dim.high:
                    raise InvalidInput(
                        f"{spec.name}: {want} = {got} outside [{dim.low}, {dim.high}]"
                    )
                sizes[want] = got
            total += array.size
        if total > self.max_elements:
            raise InvalidInput(f"{total} elements, at most {self.max_elements}")
        return sizes
