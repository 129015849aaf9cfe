"""Every CUDA kernel compiles, in float32 and float64 and at edge sizes.

NVRTC compiles without a GPU, so the kernels' source is checked wherever its
wheel installs (Linux), not only where CUDA runs; that they compute the right
thing is for tests/test_gpu_kernels.py, on a GPU.
"""

import pytest

from skmoe._backend import _kernels, _linear, _tiled

nvrtc = pytest.importorskip("cuda.bindings.nvrtc")

# template instances as the wrappers name them: (T, K, TOPK ...), odd sizes
# included (K=1, k=K, K=64, features not a multiple of 4)
INSTANCES = {
    "kernels": (
        _kernels._SOURCE,
        [
            "skmoe_gate_top_k<{T}, 16, 2>",
            "skmoe_gate_top_k<{T}, 1, 1>",
            "skmoe_e_step<{T}, 16, 2, true>",
            "skmoe_e_step<{T}, 64, 64, false>",
            "skmoe_softmax_xent<{T}, 5>",
            "skmoe_mixture_mean<{T}, 7, 6>",
        ],
    ),
    "linear": (
        _linear._SOURCE,
        [
            "skmoe_count_pairs<{T}>",
            "skmoe_list_pairs<{T}>",
            "skmoe_pair_gram<{T}, true>",
            "skmoe_pair_gram<{T}, false>",
        ],
    ),
    "tiled": (
        _tiled._SOURCE,
        [
            "skmoe_gate_loss_grad<{T}, 16, 16, 64, 64>",
            "skmoe_gate_loss_grad<{T}, 64, 64, 33, 32>",
            "skmoe_gate_loss_grad<{T}, 5, 8, 13, 32>",
            "skmoe_gate_loss_grad<{T}, 1, 4, 1, 64>",
            "skmoe_gate_loss_grad_tf32<16, 16, 64>",
            "skmoe_gate_loss_grad_tf32<5, 8, 13>",
            "skmoe_gate_loss_grad_tf32<32, 32, 64>",
            "skmoe_thin_product<{T}, 16, 64, 64>",
            "skmoe_thin_product<{T}, 1, 3, 32>",
            "skmoe_mixture_predict<{T}, 16, 2, 64, 64>",
            "skmoe_mixture_predict<{T}, 1, 1, 5, 128>",
        ],
    ),
}


def _compile(source, names, arch):
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
@pytest.mark.parametrize("T", ["float", "double"])
@pytest.mark.parametrize("module", sorted(INSTANCES))
def test_kernel_source_compiles(module, T, arch):
    source, names = INSTANCES[module]
    result, log = _compile(source, [name.format(T=T) for name in names], arch)
    assert result == nvrtc.nvrtcResult.NVRTC_SUCCESS, log
