"""Batched inference of small seeded PyTorch models, verified by sampled re-execution.

Disagreement rule: the verifier re-runs ``sample_size(batch)`` distinct rows on its own CPU
path; a row disagrees when any logit differs by more than ``RTOL * |ref| + ATOL * max(1,
max|ref row|)``; one disagreeing row rejects the output. An honest CPU or GPU run (IEEE
float32, TF32 off) differs from the reference by about 1e-6 relative, a hundred times inside
the tolerance.
"""

import math
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from offchain.workers.seeded import seeded_init
from offchain.workers.verifiers import rows_agree, sampled_rows, stated_catch_sampled
from offchain.workers.workloads.base import Tensors, Verdict, Workload, check_finite

RTOL = 1e-4
ATOL = 1e-4
SAMPLE_FRACTION = 1 / 64
MIN_SAMPLE = 2
CHUNK = 1024


class SampledInference(Workload):
    """A seeded model run in eval mode without gradients; verified by sampled re-execution."""

    model_seed: ClassVar[int]
    flops_per_row: ClassVar[int]

    def __init__(self, sample_fraction: float = SAMPLE_FRACTION, min_sample: int = MIN_SAMPLE):
        if not 0 < sample_fraction <= 1 or min_sample < 1:
            raise ValueError("sample_fraction must be in (0, 1] and min_sample at least 1")
        self.sample_fraction = sample_fraction
        self.min_sample = min_sample
        self._models: dict[str, nn.Module] = {}

    def build_model(self) -> nn.Module:
        """Return a fresh model with this workload's seeded weights."""
        return seeded_init(self.architecture(), self.model_seed)

    def architecture(self) -> nn.Module:
        """Return the untrained module (overridden by each model)."""
        raise NotImplementedError

    def sample_size(self, batch: int) -> int:
        """Return how many rows the verifier re-executes for a batch of ``batch`` rows."""
        return min(batch, max(self.min_sample, math.ceil(batch * self.sample_fraction)))

    def stated_catch(self, batch: int, wrong_rows: int) -> float:
        """Return the chance of catching ``wrong_rows`` rows out of tolerance in ``batch``."""
        return stated_catch_sampled(batch, wrong_rows, self.sample_size(batch))

    def ops(self, sizes: Mapping[str, int]) -> int:
        """Return the model's floating-point operations for the whole batch."""
        return sizes["batch"] * self.flops_per_row

    def cuda_available(self) -> bool:
        """Return whether PyTorch sees a CUDA device."""
        return torch.cuda.is_available()

    def _check_values(self, inputs: Tensors, sizes: dict[str, int]) -> None:
        """Refuse non-finite inputs."""
        check_finite("x", inputs["x"])

    def _model(self, device: str) -> nn.Module:
        """Return the cached model on ``device``."""
        if device not in self._models:
            self._models[device] = self.build_model().to(device)
        return self._models[device]

    def _infer(self, x: np.ndarray, device: str) -> np.ndarray:
        """Return the logits for ``x`` computed on ``device`` in chunks."""
        model = self._model(device)
        outs = []
        with torch.inference_mode():
            for start in range(0, len(x), CHUNK):
                chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + CHUNK]))
                outs.append(model(chunk.to(device)).float().cpu().numpy())
        return np.concatenate(outs, axis=0)

    def _run_cpu(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the logits computed on the CPU."""
        return {"y": self._infer(inputs["x"], "cpu")}

    def _run_cuda(self, inputs: Tensors, sizes: dict[str, int]) -> dict[str, np.ndarray]:
        """Return the logits computed on the GPU in IEEE float32 (TF32 off)."""
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return {"y": self._infer(inputs["x"], "cuda")}

    def _verify(
        self, inputs: Tensors, outputs: Tensors, sizes: dict[str, int], rng: np.random.Generator
    ) -> Verdict:
        """Return the verdict of re-running sampled rows on the CPU against the tolerance."""
        y = outputs["y"]
        if not np.isfinite(y).all():
            return Verdict(False, "output has a NaN or an infinity")
        rows = sampled_rows(sizes["batch"], self.sample_size(sizes["batch"]), rng)
        expected = self._infer(inputs["x"][rows], "cpu")
        bad, worst = rows_agree(expected, y[rows], RTOL, ATOL)
        if bad.size:
            return Verdict(
                False,
                f"row {int(rows[bad[0]])} disagrees with re-execution "
                f"({worst:.2e} times the tolerance)",
            )
        return Verdict(True, f"{rows.size} sampled rows agree within tolerance")
