"""CUDA paths: run on a GPU when there is one; the numba.cuda kernels also run in Numba's
CUDA simulator (NUMBA_ENABLE_CUDASIM=1, in a subprocess) so their logic is checked here."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from numba import cuda

from offchain.workers.kernels import modp
from offchain.workers.kernels import nbody_kernels as nbody
from offchain.workers.workloads import get_workload

NO_TORCH_GPU = "no CUDA device visible to PyTorch (this is the CPU build or a GPU-less machine)"
NO_NUMBA_GPU = "no CUDA device visible to numba.cuda on this machine"


def test_cuda_kernels__defined_without_a_gpu():
    for kernel in (modp._matmul_mod_cuda_kernel, nbody._accel_cuda_kernel):
        assert hasattr(kernel, "__getitem__"), (
            "a numba.cuda kernel is launched as kernel[grid, block]"
        )


SIMULATED = textwrap.dedent(
    """
    import numpy as np
    from offchain.workers.kernels import modp
    from offchain.workers.kernels import nbody_kernels as nbody
    rng = np.random.default_rng(0)
    for m, k, n in [(1, 1, 1), (20, 35, 18), (17, 3, 33)]:
        a = rng.integers(0, modp.P, (m, k), dtype=np.uint32)
        b = rng.integers(0, modp.P, (k, n), dtype=np.uint32)
        assert np.array_equal(modp.matmul_mod_cuda(a, b), modp.matmul_mod_blas(a, b)), (m, k, n)
    for n in (1, 5, 130):
        pos, vel = rng.uniform(-1, 1, (n, 3)), rng.normal(0, 0.1, (n, 3))
        mass = rng.uniform(0.5, 1.5, n) / n
        gpu = nbody.step_cuda(pos, vel, mass, 0.01, 1e-3)
        cpu = nbody.step_cpu(pos, vel, mass, 0.01, 1e-3)
        for g, c in zip(gpu, cpu):
            np.testing.assert_allclose(g, c, rtol=1e-12, atol=1e-15)
    print("simulated kernels agree")
    """
)


def test_cuda_kernels__in_the_numba_simulator__agree_with_cpu():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    done = subprocess.run(
        [sys.executable, "-c", SIMULATED], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "simulated kernels agree" in done.stdout


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_TORCH_GPU)
@pytest.mark.parametrize("wid", ["matmul-f32", "mlp-infer", "cnn-infer"])
def test_torch_cuda__agrees_with_cpu_and_verifies(wid):
    rng = np.random.default_rng(1)
    w = get_workload(wid)
    if wid == "matmul-f32":
        inputs = {
            "a": rng.standard_normal((300, 200)).astype(np.float32),
            "b": rng.standard_normal((200, 100)).astype(np.float32),
        }
    else:
        shape = (64,) if wid == "mlp-infer" else (1, 28, 28)
        inputs = {"x": rng.standard_normal((100, *shape)).astype(np.float32)}
    gpu = w.run(inputs, device="cuda")
    cpu = w.run(inputs, device="cpu")
    for name in gpu:
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=1e-4, atol=1e-4)
    assert w.verify(inputs, gpu, rng).accepted


@pytest.mark.skipif(not cuda.is_available(), reason=NO_NUMBA_GPU)
def test_numba_cuda__modp_bit_exact_and_nbody_close():
    rng = np.random.default_rng(2)
    w = get_workload("matmul-modp")
    inputs = {
        "a": rng.integers(0, modp.P, (513, 300), dtype=np.uint32),
        "b": rng.integers(0, modp.P, (300, 257), dtype=np.uint32),
    }
    gpu = w.run(inputs, device="cuda")
    assert np.array_equal(gpu["c"], w.run(inputs, device="cpu")["c"])
    assert w.verify(inputs, gpu, rng).accepted
    body = get_workload("nbody-step")
    n = 1000
    state = {
        "pos": rng.uniform(-1, 1, (n, 3)),
        "vel": rng.normal(0, 0.1, (n, 3)),
        "mass": np.full(n, 1.0 / n),
        "dt": np.array(0.01),
    }
    gpu = body.run(state, device="cuda")
    cpu = body.run(state, device="cpu")
    np.testing.assert_allclose(gpu["vel"], cpu["vel"], rtol=1e-10, atol=1e-13)
    assert body.verify(state, gpu, rng).accepted
