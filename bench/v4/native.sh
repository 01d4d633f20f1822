#!/usr/bin/env bash
# SharpSeek against native llama.cpp (de3ff81, -march=native, ../shared/tools/llama-cpp/build.sh) on the same synthetic
# DeepSeek-V4-shaped GGUF (bench/v4/make-synthetic.py: 2.68B parameters, 0.46B active, the V4-Flash layer pattern).
# Per round both engines run back to back, their order alternating between rounds; medians over rounds.
#   SharpSeek: `sharpseek bench --model FILE --prompt-tokens P --gen-tokens G --runs 1 --indexer-precision f32` (fp32 as
#              llama.cpp computes; prefill of P tokens from an
#              empty cache, then G greedy decode steps after it).
#   llama.cpp: `llama-bench -p P -n 0` (prefill) and `llama-bench -p 0 -n G -d P` (G decode steps after a context of P).
#   bench/v4/native.sh [threads] [prompt] [gen] [rounds] [file]
#   defaults: 2 512 32 3 /tmp/v4-bench/v4-2b-q8_0.gguf (made by make-synthetic.py when missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${1:-2}; P=${2:-512}; G=${3:-32}; ROUNDS=${4:-3}; FILE=${5:-/tmp/v4-bench/v4-2b-q8_0.gguf}
LLAMA_BIN=${LLAMA_BIN:-$HOME/.cache/llama-cpp-3.22.1/bin}
PY=/usr/bin/python3
[ -x "$LLAMA_BIN/llama-bench" ] || { echo "llama-bench not found in $LLAMA_BIN: run ../shared/tools/llama-cpp/build.sh or set LLAMA_BIN" >&2; exit 1; }
if [ ! -f "$FILE" ]; then
  mkdir -p "$(dirname "$FILE")"
  PYTHONPATH=$LLAMA_BIN/../src/gguf-py $PY bench/v4/make-synthetic.py --out "$FILE" --type q8_0 >&2
fi
dotnet build -c Release src/SharpSeek.Cli -v q -nologo >/dev/null
CLI="dotnet src/SharpSeek.Cli/bin/Release/net10.0/sharpseek.dll"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; .NET $(dotnet --version); llama.cpp $(git -C "$LLAMA_BIN/../src" rev-parse --short HEAD 2>/dev/null || echo de3ff81) (native build)"
echo "file $FILE ($(du -h "$FILE" | cut -f1)); threads $T, prompt/context $P tokens, generate $G tokens, $ROUNDS rounds; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

sharpseek() {
  $CLI bench --model "$FILE" --threads "$T" --prompt-tokens "$P" --gen-tokens "$G" --runs 1 --indexer-precision f32 --json 2>/dev/null |
    $PY -c 'import json,sys; r=json.load(sys.stdin); print(r["prefill_tokens_per_s"], r["decode_tokens_per_s"])'
}
llama() {
  local pp tg
  pp=$("$LLAMA_BIN/llama-bench" -m "$FILE" -t "$T" -p "$P" -n 0 -r 1 -o json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["avg_ts"])')
  tg=$("$LLAMA_BIN/llama-bench" -m "$FILE" -t "$T" -p 0 -n "$G" -d "$P" -r 1 -o json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["avg_ts"])')
  echo "$pp $tg"
}

rows=()
for r in $(seq 1 "$ROUNDS"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  if [ $((r % 2)) = 1 ]; then s=$(sharpseek); l=$(llama); else l=$(llama); s=$(sharpseek); fi
  echo "round $r (load $load): sharpseek prefill/decode $s; llama.cpp $l" >&2
  rows+=("$s $l")
done
printf '%s\n' "${rows[@]}" | $PY -c '
import sys, statistics as st
r = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
col = lambda i: [x[i] for x in r]
sp, sd, lp, ld = (st.median(col(i)) for i in range(4))
rng = lambda i: f"{min(col(i)):.1f}-{max(col(i)):.1f}"
print("| engine | prefill tok/s | decode tok/s |")
print("|---|---:|---:|")
print(f"| SharpSeek | {sp:.1f} ({rng(0)}) | {sd:.2f} ({rng(1)}) |")
print(f"| llama.cpp | {lp:.1f} ({rng(2)}) | {ld:.2f} ({rng(3)}) |")
print(f"| SharpSeek / llama.cpp | {sp/lp:.2f}x | {sd/ld:.2f}x |")
'
