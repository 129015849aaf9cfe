"""Every CUDA kernel compiles, in float32 and float64 and at edge sizes.

NVRTC compiles without a GPU, so the kernels' source is checked wherever its
wheel installs (Linux), not only where CUDA runs; that they compute the right
thing is for tests/test_gpu_kernels.py, on a GPU. The template instances are
named by the functions the wrappers name them by, so that a wrapper's name and
the template in the source cannot drift apart unnoticed.
"""

import re

import numpy as np
import pytest

from skmoe._backend import _kernels, _linear, _tiled

MAX_EXPERTS = _kernels.MAX_EXPERTS
# (n_features, K, k): a common size; one feature and features not a multiple
# of 4; one expert; k = K; the most experts the kernels take (whose float64
# gate tile fits only opted-into shared memory); more than one tile of the
# pair Gram; and more features than the tiled kernels take
SIZES = [
    (64, 16, 2),
    (1, 1, 1),
    (5, 3, 1),
    (33, 7, 7),
    (64, MAX_EXPERTS, 3),
    (130, 5, 3),
    (300, MAX_EXPERTS, 2),
]
# compute capabilities either side of the tensor-core plan's
COMPUTE_CAPABILITIES = [70, 80]
# shared memory a block may opt into: none beyond the default, and sm_90's
SHARED_OPTIN = [48 * 1024, 227 * 1024]


def _kernels_names(dtype):
    names = set()
    for _, n_experts, k in SIZES:
        names.add(_kernels._gate_top_k_name(dtype, n_experts, k))
        names.add(_kernels._e_step_name(dtype, n_experts, k))
        names.add(_kernels._softmax_xent_name(dtype, n_experts))
        names.add(_kernels._softmax_name(dtype, n_experts))
        names.add(_kernels._mixture_mean_name(dtype, n_experts, k))
    # k = K at the most experts, whose unrolled loops are the longest: one
    # instance, as each takes NVRTC some 15 s
    names.add(_kernels._e_step_name(dtype, MAX_EXPERTS, MAX_EXPERTS))
    return names


def _linear_names(dtype):
    names = set(_linear._pairs_names(dtype))
    for d, _, _ in SIZES:
        names.update(name for name, _, _ in _linear._pair_gram_launches(d, dtype))
    return names


def _tiled_plans(dtype):
    plans = []
    for d, n_experts, k in SIZES:
        plans += [_tiled._tensor_core_plan(d, n_experts, dtype, c) for c in COMPUTE_CAPABILITIES]
        plans += [_tiled._cuda_core_plan(d, n_experts, dtype, s) for s in SHARED_OPTIN]
        # the logistic experts' softmaxes side by side: of 3 classes in 4
        # columns, of 10 in 16 (4 experts: a launch's 64 columns); their
        # loss and their Hessian's products
        plans += [
            _tiled._cuda_core_plan(d, group * experts, dtype, s, group, classes, values)
            for group, classes, experts in [(4, 3, n_experts), (16, 10, 4)]
            for s in SHARED_OPTIN
            for values in (_tiled.CLASS_LABELS, _tiled.HESSIAN)
        ]
        # the gate's Hessian products: one softmax of K in G columns
        group = max(4, 1 << (n_experts - 1).bit_length())
        plans += [
            _tiled._cuda_core_plan(d, group, dtype, s, group, n_experts, _tiled.HESSIAN)
            for s in SHARED_OPTIN
        ]
        plans.append(_tiled._mixture_predict_plan(d, n_experts, k, dtype))
        # the gate's logits; a mixture's logits and means side by side
        plans += [_tiled._thin_product_plan(d, n, dtype) for n in (n_experts, 2 * n_experts)]
        plans += [_tiled._class_log_lik_plan(d, n_experts, c, dtype) for c in (3, 10)]
    return plans


def _tiled_names(dtype):
    names = set()
    for plan in filter(None, _tiled_plans(dtype)):
        names.update(filter(None, (plan[0], getattr(plan, "loss_name", None))))
    return names


NAMES = {"kernels": _kernels_names, "linear": _linear_names, "tiled": _tiled_names}
SOURCES = {"kernels": _kernels._SOURCE, "linear": _linear._SOURCE, "tiled": _tiled._SOURCE}


def test_sizes_reach_every_kernel():
    """The sizes above name every kernel of the sources (the tensor-core one
    in float32 only), and reach the plans' edges: a gate tile that fits only
    opted-into shared memory, and sizes left to the fallbacks."""
    kernel = r"__global__ void(?:\s+__launch_bounds__\([^)]*\))?\s+(\w+)\s*\("
    in_sources = {name for source in SOURCES.values() for name in re.findall(kernel, source)}
    for dtype in (np.float32, np.float64):
        names = set().union(*(names_of(dtype) for names_of in NAMES.values()))
        expected = in_sources - ({"skmoe_softmax_loss_grad_tf32"} if dtype == np.float64 else set())
        assert {name.split("<")[0] for name in names} == expected
        assert None in _tiled_plans(dtype)
    small, large = (_tiled._cuda_core_plan(64, MAX_EXPERTS, np.float64, s) for s in SHARED_OPTIN)
    assert small is None and large is not None


def _compile(nvrtc, source, names, arch):
    """NVRTC's result and log for ``source`` with ``names`` instantiated."""
    try:
        _, program = nvrtc.nvrtcCreateProgram(source.encode(), b"skmoe.cu", 0, [], [])
    except RuntimeError as error:  # the bindings installed, the library not found
        pytest.skip(f"NVRTC is not available: {error}")
    for name in names:
        nvrtc.nvrtcAddNameExpression(program, name.encode())
    options = [b"-std=c++14", f"--gpu-architecture={arch}".encode()]
    (result,) = nvrtc.nvrtcCompileProgram(program, len(options), options)
    _, size = nvrtc.nvrtcGetProgramLogSize(program)
    log = b" " * size
    nvrtc.nvrtcGetProgramLog(program, log)
    nvrtc.nvrtcDestroyProgram(program)
    return result, log.decode(errors="replace")


# before and after sm_80, where the tiled kernels' asynchronous copies begin
@pytest.mark.parametrize("arch", ["compute_70", "compute_80"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("module", sorted(NAMES))
def test_kernel_source_compiles(module, dtype, arch):
    nvrtc = pytest.importorskip("cuda.bindings.nvrtc")
    result, log = _compile(nvrtc, SOURCES[module], sorted(NAMES[module](dtype)), arch)
    assert result == nvrtc.nvrtcResult.NVRTC_SUCCESS, log
