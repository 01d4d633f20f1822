#!/usr/bin/env bash
# Before/after speed check of two builds of the sharpseek CLI on the same models, alternating the builds round by
# round (this shared VM's timings move 20-30% within minutes, so only interleaved runs can be compared):
#   bench/compare/run.sh BASE_CLI NEW_CLI [ROUNDS]
# BASE_CLI/NEW_CLI: paths to `sharpseek` executables (e.g. a copy of src/SharpSeek.Cli/bin/Release/net10.0 made
# before a change). Models: the ~1B benchmark model of bench/cpu (/tmp/m1b, synthesized if missing) loaded as
# bf16, Q8_0 and Q4_K, and its GGUF conversions (Q8_0 and Q4_K_M, as bench/gguf reads them), 2 threads,
# prompt 256, 64 generated tokens. Prints a markdown table of the medians and the new/base ratio.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
base=$1; new=$2; rounds=${3:-3}
model=/tmp/m1b
[ -f "$model/model.safetensors" ] || "$new" synth --config "$root/bench/configs/v2-lite-1b.json" --out "$model" --seed 1
[ -f /tmp/m1b-q8.gguf ] || "$base" convert --model "$model" --to gguf --type q8_0 --out /tmp/m1b-q8.gguf
[ -f /tmp/m1b-q4km.gguf ] || "$base" convert --model "$model" --to gguf --type q4_k_m --out /tmp/m1b-q4km.gguf
tmp=$(mktemp -d)
cases=("bf16|$model|--dtype bf16" "q8_0|$model|--dtype q8_0" "q4_k|$model|--dtype q4_k" "gguf-q8_0|/tmp/m1b-q8.gguf|" "gguf-q4_k_m|/tmp/m1b-q4km.gguf|")
for r in $(seq 1 "$rounds"); do
  for c in "${cases[@]}"; do
    IFS='|' read -r name path args <<< "$c"
    for side in base new; do
      cli=$base; [ "$side" = new ] && cli=$new
      echo "== round $r $name $side" >&2
      # shellcheck disable=SC2086
      "$cli" bench --model "$path" $args --threads 2 --prompt-tokens 256 --gen-tokens 64 --runs 1 --skip-roofline --json \
        > "$tmp/$name.$side.$r.json" 2> "$tmp/$name.$side.$r.log"
    done
  done
done
python3 - "$tmp" "$rounds" <<'PY'
import json, os, sys, statistics
tmp, rounds = sys.argv[1], int(sys.argv[2])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Machine: {cpu}, {os.cpu_count()} cores; {rounds} alternating rounds; load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])}\n")
print("| model | base prefill tok/s | new prefill tok/s | ratio | base decode tok/s | new decode tok/s | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name in ["bf16", "q8_0", "q4_k", "gguf-q8_0", "gguf-q4_k_m"]:
    v = {}
    for side in ["base", "new"]:
        rs = [json.load(open(os.path.join(tmp, f"{name}.{side}.{r}.json"))) for r in range(1, rounds + 1)]
        v[side] = (statistics.median(x["prefill_tokens_per_s"] for x in rs), statistics.median(x["decode_tokens_per_s"] for x in rs))
    (bp, bd), (np_, nd) = v["base"], v["new"]
    print(f"| {name} | {bp:.1f} | {np_:.1f} | {np_/bp:.2f}x | {bd:.2f} | {nd:.2f} | {nd/bd:.2f}x |")
PY
