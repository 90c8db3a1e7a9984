#!/usr/bin/env bash
# Build wick with the `cuda` feature on a machine without a CUDA toolkit or driver
# (../shared/CUDA.md has the recipe and why each step is needed).
#
# A CUDA 13 toolchain comes from PyPI wheels into .cuda/ (a virtual environment); the driver
# library is replaced at link time by a stub holding the symbols candle uses, and the real
# libcuda.so.1 is loaded at run time on a GPU machine. Usage:
#
#   scripts/build-cuda.sh [extra cargo args]     # e.g. --release, --tests
#   CARGO_TARGET_DIR=target-cuda scripts/build-cuda.sh --release
#
# Output: the usual target folder (or $CARGO_TARGET_DIR). The binary is linked against the
# CUDA libraries, so it needs them on the loader path to start at all, even for `--device cpu`:
# on a GPU machine the driver's libcuda.so.1 and a CUDA 13 install's libraries (PyTorch's
# nvidia/cu13/lib will do); on a machine without a GPU, the wheels' libraries and the stub,
# whose every function answers CUDA_ERROR_STUB_LIBRARY, so `--device auto` runs on the CPU.
# The script prints the LD_LIBRARY_PATH for this machine at the end.
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
target=${CARGO_TARGET_DIR:-target}

# The driver stub: one function per driver symbol the compiled crates reference, each
# returning CUDA_ERROR_STUB_LIBRARY (34), so that a run that loads the stub instead of a
# driver finds no device instead of crashing; the two that name an error say what happened.
# The symbols are known once the crates are compiled: cudarc's own, and those of its generic
# code compiled into candle.
make_stub() {
    local deps named='^cuGetError(String|Name)$'
    deps=$(dirname "$(ls -t "$target"/*/deps/libcudarc-*.rlib 2>/dev/null | head -n1)")
    [ -d "$deps" ] && ls "$deps"/libcudarc-*.rlib >/dev/null 2>&1 \
        || { echo "error: cudarc was not built; cannot list driver symbols" >&2; exit 2; }
    {
        nm "$deps"/*.rlib 2>/dev/null | awk '$1 == "U" {print $2}' | grep -E '^cu[A-Z]' \
            | grep -Ev "$named" | sort -u | sed 's/.*/int &(void) { return 34; }/'
        echo 'int cuGetErrorName(int e, const char **s) { *s = "CUDA_ERROR_STUB_LIBRARY"; return 0; }'
        echo 'int cuGetErrorString(int e, const char **s) {'
        echo '    *s = "no CUDA driver: libcuda.so.1 is the stub wick was built with (scripts/build-cuda.sh)";'
        echo '    return 0;'
        echo '}'
    } > "$links/cuda_stub.c"
    echo "driver stub: $(grep -c '^int cu' "$links/cuda_stub.c") symbols"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$links/libcuda.so" "$links/cuda_stub.c"
    ln -sf libcuda.so "$links/libcuda.so.1"
}

# The first build stops at the link when there is no stub yet, or when it lacks a symbol
# that new code uses; then the stub is made again from what was compiled, and only the link
# runs again.
[ -f "$links/libcuda.so" ] \
    || echo "no driver stub yet: this first build ends in a link error (-lcuda), then the stub is made"
if ! cargo build --features cuda "$@"; then
    echo "building the driver stub from the compiled crates and linking again"
    make_stub
    cargo build --features cuda "$@"
fi

echo "built. To run the binary here (no GPU, the stub driver):"
echo "  LD_LIBRARY_PATH=$cu/lib:$links $target/<profile>/wick ..."
