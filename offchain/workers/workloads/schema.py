"""Tensor schemas: names, dtypes and symbolic shapes with bounds, checked before any work."""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from offchain.workers.workload_errors import InvalidInput

# A tensor as declared before its data is read: its dtype (a numpy dtype or its name) and shape.
Declared = tuple[np.dtype | str, tuple[int, ...]]


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
        for name, array in arrays.items():
            if not isinstance(array, np.ndarray):
                raise InvalidInput(f"{name}: expected a numpy array")
        return self.check_shapes({n: (a.dtype, a.shape) for n, a in arrays.items()}, bound)

    def check_shapes(
        self, declared: Mapping[str, Declared], bound: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        """Return the dimension sizes that tensors of these (dtype, shape) bind, or raise."""
        expected = {spec.name for spec in self.tensors}
        missing, extra = expected - set(declared), set(declared) - expected
        if missing or extra:
            raise InvalidInput(f"tensors missing {sorted(missing)}, unexpected {sorted(extra)}")
        limits = {dim.name: dim for dim in self.dims}
        sizes: dict[str, int] = dict(bound or {})
        total = 0
        for spec in self.tensors:
            dtype, shape = declared[spec.name]
            if np.dtype(dtype) != np.dtype(spec.dtype):
                raise InvalidInput(f"{spec.name}: dtype {dtype}, expected {spec.dtype}")
            if len(shape) != len(spec.shape):
                raise InvalidInput(
                    f"{spec.name}: {len(shape)} dimensions, expected {len(spec.shape)}"
                )
            for axis, (want, got) in enumerate(zip(spec.shape, shape, strict=True)):
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
            total += math.prod(shape)
        if total > self.max_elements:
            raise InvalidInput(f"{total} elements, at most {self.max_elements}")
        return sizes

    def shapes(self, sizes: Mapping[str, int]) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Return each tensor's (dtype, shape) for bound ``sizes``, or raise ``InvalidInput``."""
        limits = {dim.name: dim for dim in self.dims}
        out: dict[str, tuple[str, tuple[int, ...]]] = {}
        total = 0
        for spec in self.tensors:
            shape = []
            for want in spec.shape:
                if isinstance(want, int):
                    shape.append(want)
                    continue
                if want not in sizes:
                    raise InvalidInput(f"{spec.name}: dimension {want} is not bound")
                dim = limits[want]
                if not dim.low <= sizes[want] <= dim.high:
                    raise InvalidInput(
                        f"{spec.name}: {want} = {sizes[want]} outside [{dim.low}, {dim.high}]"
                    )
                shape.append(sizes[want])
            out[spec.name] = (spec.dtype, tuple(shape))
            total += math.prod(shape)
        if total > self.max_elements:
            raise InvalidInput(f"{total} elements, at most {self.max_elements}")
        return out
