#!/usr/bin/env bash
# Long fuzz runs of the untrusted-input targets (tests/SharpSeek.Gguf.Tests/Fuzz): GGUF files, safetensors checkpoints,
# config.json, tokenizer.json. Each case mutates a valid seed made from a small synthetic model and must be accepted
# or refused with InvalidDataException/NotSupportedException naming the file: no other exception, no case past 20 s,
# no allocation beyond 64 MB + 32x the input. Findings are written to $ARTIFACTS (input files named by target, seed and
# case); reproduce one with SHARPSEEK_FUZZ_SEED=<seed> and the case count, then add a test to FuzzRegressionTests.
#
#   bench/fuzz/run.sh [cases per target] [seeds ("1 2 3")] [targets ("gguf safetensors config tokenizer")]
#
# The test suite runs 300 cases per target with seed 1 (SHARPSEEK_FUZZ_CASES, SHARPSEEK_FUZZ_SEED).
set -euo pipefail
cd "$(dirname "$0")/../.."
CASES=${1:-100000}; SEEDS=${2:-"1 2 3 4"}; TARGETS=${3:-"gguf safetensors config tokenizer"}
ARTIFACTS=${ARTIFACTS:-/tmp/sharpseek-fuzz-findings}
dotnet build -c Release tests/SharpSeek.Gguf.Tests -v q -nologo >/dev/null
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; .NET $(dotnet --version); load $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
for seed in $SEEDS; do
  for t in $TARGETS; do
    log=$(mktemp)
    if SHARPSEEK_FUZZ_CASES=$CASES SHARPSEEK_FUZZ_SEED=$seed SHARPSEEK_FUZZ_ARTIFACTS=$ARTIFACTS \
       dotnet test tests/SharpSeek.Gguf.Tests -c Release --no-build --filter "FullyQualifiedName~FuzzTests&DisplayName~name: \\\"$t\\\"" \
       --logger "console;verbosity=detailed" >"$log" 2>&1; then r=ok; else r=FINDINGS; status=1; fi
    summary=$(grep -m1 -E "^ $t: [0-9]+ cases" "$log" | sed 's/^ //' || true)
    [ -n "$summary" ] || { r="NO RUN"; status=1; summary="no test ran (target '$t'?)"; }
    echo "seed $seed $r: $summary"
    [ $r = ok ] || grep -E "^ finding in" "$log" | sed 's/^ /  /'
    rm -f "$log"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
