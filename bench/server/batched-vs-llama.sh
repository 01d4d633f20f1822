#!/usr/bin/env bash
# Batched decode against native llama.cpp on the same GGUF files: 16 sequences decoding together against one alone,
# in process (no HTTP), both engines alternating for ROUNDS rounds. llama.cpp: `llama-batched-bench -npp 40 -ntg 32
# -npl 1,16` (S_TG: generated tokens of all sequences per second of the generation phase); SharpSeek: `sharpseek bench
# --prompt-tokens 40 --gen-tokens 32 --batch 16` (16 sequences with their own 40-token prompts, one token of each per
# step, alternating with one alone). One markdown row per engine, file and round.
#   bench/server/batched-vs-llama.sh [ROUNDS] [FILES...]   defaults: 2, the 0.45B Q8_0 / Q4_K_M and 1B bf16 / Q4_K_M
#   files of bench/gguf/native.sh under /tmp/sharpseek-gguf-bench; LLAMA_BIN (default $HOME/.cache/llama-cpp-3.22.1/build/bin,
#   where `cmake --build $HOME/.cache/llama-cpp-3.22.1/build --target llama-batched-bench` builds it), THREADS=2
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}; shift || true
g=/tmp/sharpseek-gguf-bench
files=("$@"); [ ${#files[@]} -gt 0 ] || files=("$g/0.45b/gguf/hf-q8_0.gguf" "$g/0.45b/gguf/hf-q4_k_m.gguf" "$g/1b/gguf/hf-bf16.gguf" "$g/1b/gguf/hf-q4_k_m.gguf")
bin=${LLAMA_BIN:-$HOME/.cache/llama-cpp-3.22.1/build/bin}; threads=${THREADS:-2}
[ -x "$bin/llama-batched-bench" ] || { echo "no $bin/llama-batched-bench (cmake --build \$HOME/.cache/llama-cpp-3.22.1/build --target llama-batched-bench)" >&2; exit 1; }
dotnet build src/SharpSeek.Cli -c Release -v q -nologo >/dev/null
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, threads $threads, commit $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | time (UTC) | file | engine | 1 sequence tok/s | 16 sequences tok/s | 16 vs 1 |"
echo "|---:|---|---|---|---:|---:|---:|"
for r in $(seq "$rounds"); do
  for f in "${files[@]}"; do
    dir=$(dirname "$f"); [ "$(basename "$dir")" = gguf ] && dir=$(dirname "$dir")
    name="$(basename "$dir")/$(basename "$f")"
    out=$("$bin/llama-batched-bench" -m "$f" -c 2048 -b 2048 -ub 512 -npp 40 -ntg 32 -npl 1,16 -t "$threads" 2>/dev/null | grep -E '^\| +40 ')
    /usr/bin/python3 - "$r" "$name" "$out" <<'PY'
import sys, time
r, name, out = sys.argv[1:4]
tg = {int(c[3]): float(c[8]) for c in ([x.strip() for x in l.split('|')] for l in out.splitlines())}
print('| %s | %s | %s | llama.cpp | %.1f | %.1f | %.2fx |' % (r, time.strftime('%H:%M', time.gmtime()), name, tg[1], tg[16], tg[16] / tg[1]))
PY
    ./sharpseek bench --model "$f" --threads "$threads" --prompt-tokens 40 --gen-tokens 32 --batch 16 --runs 1 --skip-roofline --json 2>/dev/null |
      /usr/bin/python3 -c '
import json, sys, time
d = json.load(sys.stdin); r, name = sys.argv[1:3]
print("| %s | %s | %s | SharpSeek | %.1f | %.1f | %.2fx |" % (r, time.strftime("%H:%M", time.gmtime()), name, d["batch_single_decode_tokens_per_s"], d["batch_decode_tokens_per_s"], d["batch_speedup"]))' "$r" "$name"
  done
done
echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
