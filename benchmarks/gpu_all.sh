#!/usr/bin/env bash
# Everything that checks and measures the GPU path, in one run on a CUDA
# machine: the GPU tests, then the benchmarks, whose results go to
# benchmarks/results (or the folder given). Runs from the source tree.
#
#     bash benchmarks/gpu_all.sh [OUT]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results}
status=0
python3 -m pytest -q -p no:cacheprovider tests/test_gpu_kernels.py tests/test_device.py || status=1
for args in "gpu_fit.py" "gpu_auto.py" "gpu_time_to_accuracy.py" "gpu_classifier.py" "gpu_classifier_seeds.py" "gpu_classifier_stages.py" "gpu_host_time.py" "gpu_estimators.py" "gpu_em.py --stages" "gpu_memory.py" "gpu_em.py" "gpu_em.py --large-fit"; do
    # shellcheck disable=SC2086  # the script and its options, split on purpose
    PYTHONPATH=. python3 benchmarks/$args --out "$out" || status=1
done
exit $status
