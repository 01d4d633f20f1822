#!/usr/bin/env bash
# Coverage-guided fuzzing of SharpSeek's untrusted inputs with AFL++ and SharpFuzz (issue 16): the harness
# (bench/fuzz/SharpSeek.Fuzz) is published, the SharpSeek assemblies instrumented, and afl-fuzz runs each target in
# persistent mode for N executions. Targets: gguf, safetensors, config, tokenizer, chat-template, messages (see
# bench/fuzz/SharpSeek.Fuzz/Targets.cs for what runs on each). A crash is an exception other than a refusal naming the
# file, an allocation past the GC heap limit below (an allocation sized by untrusted input), or a run past -t (hang).
# Findings are replayed through the harness for their stack traces; fix each and add a regression test.
#
#   bench/fuzz/afl.sh [executions per target (1000000)] [targets ("gguf safetensors config tokenizer chat-template messages")]
#
# Needs: apt-get install afl++ afl++-doc; dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0.
# FUZZ_JOBS=N: up to N targets at once (default 1); FUZZ_REUSE=1: keep the published copies of an earlier run.
# Output under $FUZZ_OUT (default /tmp/sharpseek-afl): bin/ (instrumented), plain/, seeds/, TARGET/ (afl-fuzz's folders).
set -euo pipefail
cd "$(dirname "$0")/../.."
EXECS=${1:-1000000}; TARGETS=${2:-"gguf safetensors config tokenizer chat-template messages"}
OUT=${FUZZ_OUT:-/tmp/sharpseek-afl}
HEAP_LIMIT=${HEAP_LIMIT:-0x10000000}   # 256 MiB of GC heap: the engine's buffers for the seed model need a few MiB
export PATH="$PATH:$HOME/.dotnet/tools"
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++ afl++-doc" >&2; exit 1; }
command -v sharpfuzz >/dev/null || { echo "sharpfuzz not found: dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0" >&2; exit 1; }

# two copies: bin/ instrumented for afl-fuzz, plain/ for seeds and replays (instrumented code needs AFL's shared memory);
# FUZZ_REUSE=1 keeps the copies of an earlier run
if [ "${FUZZ_REUSE:-0}" != 1 ] || [ ! -x "$OUT/bin/SharpSeek.Fuzz" ]; then
  rm -rf "$OUT/bin" "$OUT/plain"; mkdir -p "$OUT"
  dotnet publish bench/fuzz/SharpSeek.Fuzz -c Release -o "$OUT/plain" -v q -nologo >/dev/null
  cp -r "$OUT/plain" "$OUT/bin"
  for dll in "$OUT"/bin/SharpSeek.*.dll; do
    case $(basename "$dll") in SharpSeek.Fuzz.dll) ;; *) sharpfuzz "$dll" >/dev/null ;; esac
  done
fi
HARNESS="$OUT/bin/SharpSeek.Fuzz"; PLAIN="$OUT/plain/SharpSeek.Fuzz"
rm -rf "$OUT/seeds"
"$PLAIN" seeds "$OUT/seeds" ../shared/models/deepseek-v3-tokenizer/tokenizer_config.json \
  tests/SharpSeek.Tokenizer.Tests/Data/deepseek_v31_chat_template.jinja >/dev/null

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; .NET $(dotnet --version); $(afl-fuzz -h 2>&1 | head -1 | tr -d '\n')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $EXECS executions per target; GC heap limit $HEAP_LIMIT"
fuzz_target() { # TARGET -> afl-fuzz run, its summary line, replayed crashes; returns 1 on a finding
  local t=$1 dict start stats crashes hangs rc=0
  case $t in gguf|safetensors) dict=bench/fuzz/dict/binary.dict;; *) dict=bench/fuzz/dict/json.dict;; esac
  rm -rf "${OUT:?}/$t"
  start=$SECONDS
  AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_SKIP_BIN_CHECK=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 \
  DOTNET_GCHeapHardLimit=$HEAP_LIMIT DOTNET_TieredCompilation=0 \
    afl-fuzz -i "$OUT/seeds/$t" -o "$OUT/$t" -x "$dict" -t 10000 -m none -E "$EXECS" -V "$((EXECS / 10 + 300))" -- "$HARNESS" afl "$t" 2>&1 \
    | tail -c 1000000 > "$OUT/$t.log" || true   # the log's last MB only: a target failing at start makes afl-fuzz print without end
  [ -f "$OUT/$t/default/fuzzer_stats" ] || { echo "$t: afl-fuzz did not start, see $OUT/$t.log" >&2; tail -30 "$OUT/$t.log" >&2; return 1; }
  stats="$OUT/$t/default/fuzzer_stats"
  get() { sed -n "s/^$1 *: *//p" "$stats"; }
  echo "$t: $(get execs_done) executions in $((SECONDS - start)) s ($(get execs_per_sec) /s), corpus $(get corpus_count), edges $(get edges_found), crashes $(get saved_crashes), hangs $(get saved_hangs)"
  crashes=("$OUT/$t"/default/crashes/id:*)
  if [ -e "${crashes[0]}" ]; then
    rc=1
    DOTNET_GCHeapHardLimit=$HEAP_LIMIT "$PLAIN" replay "$t" "${crashes[@]}" | grep -A3 FINDING | head -40 || true
  fi
  hangs=("$OUT/$t"/default/hangs/id:*)
  [ -e "${hangs[0]}" ] && { rc=1; echo "  hangs: ${hangs[*]}"; }
  return $rc
}

# FUZZ_JOBS=N runs up to N targets at once (one afl-fuzz process each), e.g. one per core
status=0; pids=()
for t in $TARGETS; do
  fuzz_target "$t" & pids+=($!)
  while [ "$(jobs -rp | wc -l)" -ge "${FUZZ_JOBS:-1}" ]; do sleep 5; done
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
