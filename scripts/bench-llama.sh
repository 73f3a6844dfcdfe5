#!/usr/bin/env bash
# Local generation tokens/s of our llama provider against llama.cpp's
# reference `llama-bench`, with the same GGUFs, threads and token counts.
#
#   scripts/bench-llama.sh
#
# What it does (everything it builds lives under target/bench-llama/, which
# is git-ignored; a second run reuses it):
#
# 1. Builds benches/llama_tokens.rs (`cargo bench --no-run`) and reads the
#    CMake cache that llama-cpp-sys-2's build script wrote for that build:
#    build type, C/C++ flags and every ggml CPU option (GGML_NATIVE, AVX*,
#    FMA, F16C, OpenMP, llamafile, repack, BUILD_SHARED_LIBS, ...).
# 2. Downloads llama-cpp-python's source distribution from PyPI (it vendors
#    the full llama.cpp, tools/llama-bench included; the llama-cpp-sys-2
#    crate leaves the tools out) and builds only the `llama-bench` target
#    with those same flags: once as CMake `Release` (the reference), and
#    once more with the build type cargo's bench profile gives llama.cpp
#    when that differs (`BENCH_LLAMA_MATCHED=0` skips it), so the cost of
#    the build type shows apart from the cost of our code.
# 3. Runs the Rust bench in plan mode: it writes its generated GGUFs under
#    target/bench-llama/models and prints the exact models and token counts.
#    llama-bench then runs on those same files and counts: `-p PP -n 0` for
#    prompt processing and `-p 0 -n TG -d PP` for generation at depth PP,
#    which is where the provider generates (after its prompt).
# 4. Runs the Rust bench for real (our provider and a raw llama-cpp-sys-2
#    decode loop, each run in a process of its own), then llama-bench once
#    more; llama-bench's two passes are pooled, so load drift hits all alike.
# 5. Prints the table of medians and ratios to llama-bench, both llama.cpp
#    versions and the machine; it is also saved as
#    target/bench-llama/results/summary.md.
#
# Environment: BENCH_GGUF (a model instead of stories260K), BENCH_THREADS
# (default: nproc), BENCH_PP (512), BENCH_TG (128), BENCH_REPS (5),
# BENCH_LARGE (1: also a generated 512x8 model), BENCH_PARALLEL (the
# provider's `parallel`, 1), BENCH_LLAMA_MATCHED (1),
# LLAMA_CPP_PYTHON_VERSION (default: the newest on PyPI, or the one already
# downloaded), BENCH_CARGO_CONFIG (one `--config` for both cargo commands,
# e.g. 'profile.release.package.llama-cpp-sys-2.debug=false', which makes
# llama-cpp-sys-2 build llama.cpp as CMake Release; cargo keeps those
# artifacts apart from the usual ones). Needs cargo, cmake, a C++ compiler,
# python3 and pip.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

work="$root/target/bench-llama"
results="$work/results"
export BENCH_THREADS="${BENCH_THREADS:-$(nproc)}"
export BENCH_PP="${BENCH_PP:-512}"
export BENCH_TG="${BENCH_TG:-128}"
export BENCH_REPS="${BENCH_REPS:-5}"
export BENCH_MODEL_DIR="${BENCH_MODEL_DIR:-$work/models}"
matched="${BENCH_LLAMA_MATCHED:-1}"
cargo_args=()
if [[ -n ${BENCH_CARGO_CONFIG:-} ]]; then
    cargo_args+=(--config "$BENCH_CARGO_CONFIG")
fi
py_pin="${LLAMA_CPP_PYTHON_VERSION:-}"

log() { printf '\n==> %s\n' "$*" >&2; }
die() {
    printf 'bench-llama: %s\n' "$*" >&2
    exit 1
}

for tool in cargo cmake python3; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
mkdir -p "$work" "$results"

# --- 1. The Rust bench, and the flags llama-cpp-sys-2 built llama.cpp with.
log "building benches/llama_tokens.rs (cargo bench --no-run)"
cargo bench "${cargo_args[@]}" --bench llama_tokens --no-run --message-format=json-render-diagnostics \
    >"$work/cargo-build.json"
sys_out=$(grep -o '"out_dir":"[^"]*/llama-cpp-sys-2-[0-9a-f]*/out"' "$work/cargo-build.json" |
    head -n1 | sed 's/^"out_dir":"//; s/"$//')
sys_manifest=$(grep -o '"manifest_path":"[^"]*/llama-cpp-sys-2-[^"/]*/Cargo.toml"' "$work/cargo-build.json" |
    head -n1 | sed 's/^"manifest_path":"//; s/"$//')
cache="$sys_out/build/CMakeCache.txt"
[[ -n $sys_out && -f $cache ]] || die "cannot find llama-cpp-sys-2's CMakeCache.txt in cargo's output"
sys_src=$(dirname "$sys_manifest")

cache_get() { sed -n "s/^$1:[A-Z]*=//p" "$cache" | head -n1; }
sys_build_type=$(cache_get CMAKE_BUILD_TYPE)
c_flags=$(cache_get CMAKE_C_FLAGS)
cxx_flags=$(cache_get CMAKE_CXX_FLAGS)
mapfile -t cpu_flags < <(
    grep -E '^(BUILD_SHARED_LIBS|GGML_(NATIVE|OPENMP|LLAMAFILE|CPU_REPACK|CPU_ALL_VARIANTS|BACKEND_DL|SSE42|AVX[A-Z0-9_]*|AMX_[A-Z0-9_]*|BMI2|FMA|F16C|BLAS|CUDA|HIP|VULKAN|METAL|OPENCL|CPU_KLEIDIAI)):BOOL=' "$cache" |
        sed -E 's/^([A-Z0-9_]+):BOOL=(.*)$/-D\1=\2/' | sort
)

# --- 2. llama-bench from llama-cpp-python's vendored llama.cpp.
shopt -s nullglob
find_sdist() {
    local version=${py_pin:-*}
    # shellcheck disable=SC2206 # $version is a glob on purpose.
    local found=("$work"/llama_cpp_python-$version.tar.gz)
    ((${#found[@]})) && printf '%s\n' "${found[@]}" | sort -V | tail -n1
    return 0
}
sdist=$(find_sdist)
if [[ -z $sdist ]]; then
    log "downloading llama-cpp-python's source distribution from PyPI"
    python3 -m pip download --no-deps --no-binary :all: \
        "llama-cpp-python${py_pin:+==$py_pin}" -d "$work" >&2
    sdist=$(find_sdist)
    [[ -n $sdist ]] || die "pip download left no llama_cpp_python-*.tar.gz in $work"
fi
py_dir=${sdist%.tar.gz}
py_version=${py_dir##*/llama_cpp_python-}
if [[ ! -f $py_dir/vendor/llama.cpp/tools/llama-bench/llama-bench.cpp ]]; then
    log "unpacking $(basename "$sdist")"
    tar -xzf "$sdist" -C "$work"
fi
src="$py_dir/vendor/llama.cpp"
[[ -f $src/tools/llama-bench/llama-bench.cpp ]] || die "$sdist vendors no tools/llama-bench"

# The sdist carries no git metadata; its changelog names the llama.cpp
# commit of each release.
py_commit=$(awk -v head="## [$py_version]" '
    $0 == head { found = 1; next }
    found && /^## \[/ { exit }
    found && match($0, /llama\.cpp@[0-9a-f]+/) { print substr($0, RSTART + 10, RLENGTH - 10); exit }
' "$py_dir/CHANGELOG.md")
py_commit=${py_commit:-unknown}
ggml_version() {
    awk '/^set\(GGML_VERSION_(MAJOR|MINOR|PATCH) / { sub(/\)/, "", $2); v = v (v == "" ? "" : ".") $2 }
         END { print v }' "$1/ggml/CMakeLists.txt"
}
py_ggml=$(ggml_version "$src")
sys_ggml=$(ggml_version "$sys_src/llama.cpp")
sys_version=$(basename "$sys_src")
sys_version=${sys_version#llama-cpp-sys-2-}
sys_vcs=$(grep -o '"sha1": *"[0-9a-f]*"' "$sys_src/.cargo_vcs_info.json" 2>/dev/null |
    grep -o '[0-9a-f]\{40\}' || echo unknown)

build_types=(Release)
if [[ $matched != 0 && $sys_build_type != Release ]]; then
    build_types+=("$sys_build_type")
fi
for build_type in "${build_types[@]}"; do
    bdir="$work/build-$build_type"
    args=(
        -DCMAKE_BUILD_TYPE="$build_type"
        -DCMAKE_C_FLAGS="$c_flags"
        -DCMAKE_CXX_FLAGS="$cxx_flags"
        "${cpu_flags[@]}"
        -DLLAMA_BUILD_TESTS=OFF
        -DLLAMA_BUILD_EXAMPLES=OFF
        -DLLAMA_BUILD_SERVER=OFF
        -DLLAMA_BUILD_APP=OFF
        -DLLAMA_BUILD_TOOLS=ON
        -DLLAMA_BUILD_COMMON=ON
        -DLLAMA_CURL=OFF
        -DLLAMA_OPENSSL=OFF
        -DLLAMA_BUILD_COMMIT="$py_commit"
        -DLLAMA_BUILD_NUMBER=0
    )
    if [[ ! -f $bdir/CMakeCache.txt || "$(cat "$bdir/bench-llama.args" 2>/dev/null)" != "${args[*]}" ]]; then
        log "configuring llama-bench ($build_type): ${args[*]}"
        # Keep CMake's git probe from reading this repository's history.
        GIT_CEILING_DIRECTORIES="$work" cmake -S "$src" -B "$bdir" "${args[@]}" >"$bdir.configure.log" 2>&1 ||
            die "cmake configure failed; see $bdir.configure.log"
        printf '%s' "${args[*]}" >"$bdir/bench-llama.args"
    fi
    log "building llama-bench ($build_type), -j$(nproc)"
    cmake --build "$bdir" --target llama-bench -j"$(nproc)" >"$bdir.build.log" 2>&1 ||
        die "llama-bench build failed; see $bdir.build.log"
    [[ -x $bdir/bin/llama-bench ]] || die "no $bdir/bin/llama-bench after the build"
done

# --- 3. The plan: models (generated ones written) and exact token counts.
log "planning (cargo bench --bench llama_tokens, BENCH_PLAN_ONLY=1)"
BENCH_PLAN_ONLY=1 cargo bench "${cargo_args[@]}" --bench llama_tokens >"$results/plan.log" 2>&1 ||
    die "planning failed; see $results/plan.log"
grep '^BENCH_JSON ' "$results/plan.log" | sed 's/^BENCH_JSON //' >"$results/plan.jsonl" ||
    die "the plan names no models; see $results/plan.log"

# llama-bench on the planned files and counts: `-p PP -n 0`, then
# `-p 0 -n TG -d PP`. It runs once before and once after the Rust bench, and
# the summary pools both passes, so that drift in the machine's load hits
# llama-bench and our variants alike.
llama_bench_pass() {
    local pass=$1 name path pp tg threads reps build_type bin out
    while IFS=$'\t' read -r name path pp tg threads reps; do
        for build_type in "${build_types[@]}"; do
            bin="$work/build-$build_type/bin/llama-bench"
            out="$results/llama-bench-$build_type-$name"
            log "llama-bench ($build_type, $pass) $name: pp$pp, tg$tg@d$pp, $threads threads, $reps reps"
            "$bin" -m "$path" -p "$pp" -n 0 -t "$threads" -r "$reps" -o json </dev/null \
                >"$out-pp-$pass.json" 2>"$out-pp-$pass.log" || die "llama-bench failed; see $out-pp-$pass.log"
            "$bin" -m "$path" -p 0 -n "$tg" -d "$pp" -t "$threads" -r "$reps" -o json </dev/null \
                >"$out-tg-$pass.json" 2>"$out-tg-$pass.log" || die "llama-bench failed; see $out-tg-$pass.log"
        done
    done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["kind"] == "model":
        print("\t".join(str(r[k]) for k in ("model", "path", "pp", "tg", "threads", "reps")))
' "$results/plan.jsonl")
}

rm -f "$results"/llama-bench-*.json "$results"/llama-bench-*.log
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
llama_bench_pass before

# --- 4. Our provider and the raw loop.
log "running cargo bench --bench llama_tokens (threads $BENCH_THREADS, pp $BENCH_PP, tg $BENCH_TG, reps $BENCH_REPS)"
cargo bench "${cargo_args[@]}" --bench llama_tokens 2>&1 | tee "$results/rust.log"
grep '^BENCH_JSON ' "$results/rust.log" | sed 's/^BENCH_JSON //' >"$results/rust.jsonl" ||
    die "the Rust bench printed no results"
cmp -s <(grep '"kind":"model"' "$results/plan.jsonl") <(grep '"kind":"model"' "$results/rust.jsonl") ||
    die "the Rust bench ran another plan than the one llama-bench ran"

llama_bench_pass after
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 5. The table.
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
export cpu_model load_before load_after py_version py_commit py_ggml sys_version sys_ggml sys_vcs sys_build_type
export cpu_flag_list="${cpu_flags[*]}" c_flags BENCH_CARGO_CONFIG="${BENCH_CARGO_CONFIG:-}"
python3 - "$results" "${build_types[@]}" <<'PY' | tee "$results/summary.md"
import json, os, statistics, sys
from pathlib import Path

results, build_types = Path(sys.argv[1]), sys.argv[2:]
env = os.environ
rows = [json.loads(l) for l in open(results / "rust.jsonl")]
models = [r for r in rows if r["kind"] == "model"]
ours = {(r["model"], r["variant"]): r for r in rows if r["kind"] == "result"}

def llama_bench(build_type, model, test):
    """Median over both passes, and each pass's median."""
    samples, passes = [], []
    for p in ("before", "after"):
        (entry,) = json.load(open(results / f"llama-bench-{build_type}-{model}-{test}-{p}.json"))
        samples += entry["samples_ts"]
        passes.append(statistics.median(entry["samples_ts"]))
    return statistics.median(samples), passes

print("## Local generation: llama provider vs llama-bench\n")
print(f"- machine: {os.cpu_count()} CPUs (nproc), {env['cpu_model']}; load average "
      f"{env['load_before']} before, {env['load_after']} after")
print(f"- llama-bench: llama-cpp-python {env['py_version']} sdist, vendored llama.cpp "
      f"{env['py_commit']} (ggml {env['py_ggml']})")
print(f"- our provider and raw loop: llama-cpp-sys-2 {env['sys_version']} (llama-cpp-rs "
      f"{env['sys_vcs'][:12]}), vendored llama.cpp with ggml {env['sys_ggml']}, built by cargo as "
      f"CMake {env['sys_build_type']}")
if env.get("BENCH_CARGO_CONFIG"):
    print(f"- cargo --config {env['BENCH_CARGO_CONFIG']}")
print(f"- CPU flags of both builds: {env['c_flags'].strip()} {env['cpu_flag_list']}")
print()
ref = build_types[0]
print("| model | variant | pp tokens | pp t/s | tg tokens | tg t/s | pp ratio | tg ratio |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
drift = []
for m in models:
    name, pp, tg = m["model"], m["pp"], m["tg"]
    ref_pp, _ = llama_bench(ref, name, "pp")
    ref_tg, _ = llama_bench(ref, name, "tg")
    lines = []
    for bt in build_types:
        b_pp, pp_passes = llama_bench(bt, name, "pp")
        b_tg, tg_passes = llama_bench(bt, name, "tg")
        lines.append((f"llama-bench ({bt})", b_pp, b_tg))
        drift.append(f"{name}, llama-bench ({bt}) before / after: pp {pp_passes[0]:.1f} / "
                     f"{pp_passes[1]:.1f}, tg {tg_passes[0]:.1f} / {tg_passes[1]:.1f} t/s")
    for variant, label in (("provider", "our provider"), ("raw", "raw llama-cpp-sys-2 loop")):
        r = ours[(name, variant)]
        lines.append((label, r["pp_tps"], r["tg_tps"]))
    for label, p_tps, t_tps in lines:
        print(f"| {name} | {label} | {pp} | {p_tps:.1f} | {tg} @ d{pp} | {t_tps:.1f} | "
              f"{p_tps / ref_pp:.3f} | {t_tps / ref_tg:.3f} |")
print()
if models:
    m = models[0]
    print(f"Ratios are to llama-bench ({ref}). Medians: our variants over {m['reps']} runs "
          f"(one process each, after a warm-up run); llama-bench over {m['reps']} reps before "
          f"and {m['reps']} after the Rust bench, pooled. {m['threads']} threads. tg counts "
          "decoding steps at depth pp (after the prompt), where the provider generates.")
for line in drift:
    print(f"- {line}")
for m in models:
    print(f"- {m['model']}: {m['path']} ({m['n_params']} parameters, n_ctx_train "
          f"{m['n_ctx_train']}, n_ctx {m['n_ctx']}), sampler {m['sampler']}, provider "
          f"parallel {m['parallel']}")
PY
