#!/usr/bin/env bash
# Build wick with the `cuda` feature on a machine without a CUDA toolkit or driver.
#
# A CUDA 13 toolchain comes from PyPI wheels into .cuda/ (a virtual environment); the driver
# library is replaced at link time by a stub holding the symbols candle uses, and the real
# libcuda.so.1 is loaded at run time on a GPU machine. Usage:
#
#   scripts/build-cuda.sh [extra cargo args]     # e.g. --release, --tests
#
# Output: the usual target folder (or $CARGO_TARGET_DIR). On the GPU machine, run the binary
# with LD_LIBRARY_PATH pointing at .cuda/.../nvidia/cu13/lib (or a PyTorch CUDA 13 install's).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.cuda
if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet nvidia-cuda-nvcc nvidia-cuda-runtime nvidia-cuda-crt nvidia-cuda-cccl \
    nvidia-cublas nvidia-curand nvidia-cuda-nvrtc

cu=$(ls -d "$PWD/$venv"/lib/python3*/site-packages/nvidia/cu13 | head -n1)
[ -x "$cu/bin/nvcc" ] || { echo "error: no nvcc under $cu" >&2; exit 2; }

# Unversioned names for the linker; the wheels ship only libfoo.so.13 and the like.
links="$PWD/$venv/links"
mkdir -p "$links"
for lib in cublas cublasLt curand nvrtc cudart; do
    real=$(ls "$cu"/lib/lib$lib.so.* 2>/dev/null | head -n1 || true)
    [ -n "$real" ] && ln -sf "$real" "$links/lib$lib.so"
done

export PATH="$cu/bin:$PATH" CUDA_ROOT="$cu" CUDA_PATH="$cu"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"   # H100 / H200
# cudarc 0.19 knows CUDA up to 13.4 and reads nvcc's version; the wheel's nvcc is newer.
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13000}"
export RUSTFLAGS="${RUSTFLAGS:-} -L $links"

# The driver stub: one empty function per driver symbol that cudarc references. The symbols
# are known once cudarc is compiled, so the first build may stop at the link; then the stub is
# made from cudarc's rlib and the build runs again.
target=${CARGO_TARGET_DIR:-target}
if [ ! -f "$links/libcuda.so" ]; then
    cargo build --features cuda "$@" || true
    rlib=$(ls -t "$target"/*/deps/libcudarc-*.rlib 2>/dev/null | head -n1 || true)
    [ -n "$rlib" ] || { echo "error: cudarc was not built; cannot list driver symbols" >&2; exit 2; }
    nm "$rlib" 2>/dev/null | awk '$1 == "U" {print $2}' | grep -E '^cu[A-Z]' | sort -u \
        | sed 's/.*/void &(void) {}/' > "$links/cuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$links/libcuda.so" "$links/cuda_stub.c"
fi

cargo build --features cuda "$@"
