#!/usr/bin/env bash
# The checks that need a GPU, in one run: the CUDA tests, the optimizer step cost on the GPU and a
# short ENAS search there. Each part's output goes to $OUT (default ./gpu_checks) as it runs, and
# $OUT/output.md collects them in the form of benchmarks/results/<name>/output.md (copy it to
# benchmarks/results/gpu_checks/ and run `python benchmarks/write_docs.py` to put it on the page).
#
#   bash benchmarks/gpu_checks.sh [tests] [step-cost] [enas]   # all three when none is named
#
# on a machine with CUDA, torch and rlnas's runtime dependencies (the repository on PYTHONPATH).
# Each part has its own time limit, so that one slow part leaves the others their turn.
set -uo pipefail
out=${OUT:-gpu_checks}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export OMP_NUM_THREADS=2  # four test workers and their searches on the CPU side: no oversubscription
python3 -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'gpu_checks: no CUDA device here')" || exit 2
device=$(python3 -c "import torch; print(torch.cuda.get_device_name(), '(torch', torch.__version__ + ')')")
echo "$device" | tee "$out/device.txt"
parts=${*:-tests step-cost enas}
printf '`bash benchmarks/gpu_checks.sh %s`\n\n(ran %s UTC on %s)\n' "$parts" "$(date -u '+%Y-%m-%d %H:%M')" \
    "$device" > "$out/output.md"

# part NAME SECONDS COMMAND...: run it under a time limit; its output to $out/NAME.txt and, filtered
# through $keep (a grep pattern of the lines worth showing), to output.md
part() {
    local name=$1 seconds=$2
    shift 2
    [[ " $parts " == *" $name "* ]] || return 0
    timeout "$seconds" "$@" 2>&1 | tee "$out/$name.txt"
    local status=${PIPESTATUS[0]}
    printf '\n`%s` (exit %s)\n\n```\n%s\n```\n' "$*" "$status" "$(grep -E "$keep" "$out/$name.txt")" >> "$out/output.md"
}

keep='PASSED|FAILED|ERROR|SKIPPED|[0-9]+ (passed|failed|skipped)'
part tests 200 python3 -m pytest -v -n 4 -p no:cacheprovider -rs tests/test_cuda.py
keep='.'
part step-cost 120 python3 benchmarks/nos_step_cost.py --device cuda --steps 50 --repeats 3
part enas 150 python3 benchmarks/enas_gpu.py --device cuda --epochs 2 --controller-steps 10 --retrain-epochs 2
exit 0
