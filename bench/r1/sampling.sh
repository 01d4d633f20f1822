#!/usr/bin/env bash
# GRPO's sampling path (Generator.GenerateBatch, as eval-tasks and grpo run it): completion tokens per second with N
# completions in flight (continuous batching: an ended completion's place goes to the next prompt) against one at a
# time, the same prompts, same model, greedy, 2 threads, weights as stored and as fp32 (GRPO samples from the trainer's
# fp32 master weights). The two alternate for ROUNDS rounds (this VM's speed drifts by 20-30%); each round prints wall
# tokens/s of the generation and tokens per CPU-second of the whole process, and the end the median ratio.
#
#   bench/r1/sampling.sh [MODEL] [N] [MAX_TOKENS] [ROUNDS]    defaults: models/sharpseek-mini 32 128 3
#   PROMPTS=P (default 8 x N: the batch is full for most of the run), DTYPES="f32 stored"
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
model=${1:-models/sharpseek-mini}; n=${2:-32}; max=${3:-128}; rounds=${4:-3}
prompts=${PROMPTS:-$((8 * n))}; dtypes=${DTYPES:-f32 stored}
export DOTNET_TieredCompilation=0 # optimized code from the first call: short runs measure the kernels, not tier-0 code
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
./sharpseek tasks --out "$work" --train 0 --validation 0 --test $(( (prompts + 2) / 3 )) >/dev/null
echo "model $model, $prompts arith prompts, up to $max tokens each, threads 2, $rounds alternating rounds; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for dtype in $dtypes; do
  : > "$work/ratios"
  for r in $(seq "$rounds"); do
    for batch in 1 "$n"; do
      /usr/bin/time -f "%U %S" -o "$work/time" ./sharpseek eval-tasks --model "$model" --tasks "$work/arith-test.jsonl" --limit "$prompts" \
        --max-tokens "$max" --threads 2 --batch "$batch" --dtype "$dtype" --json > "$work/out-$batch.json" 2>/dev/null
      cp "$work/time" "$work/time-$batch"
    done
    /usr/bin/python3 - "$work" "$n" "$dtype" "$r" >> "$work/ratios" <<'PY'
import json, sys
w, n, dtype, r = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rate = {}
for b in ("1", n):
    j = json.load(open(f"{w}/out-{b}.json")); u, s = map(float, open(f"{w}/time-{b}").read().split())
    tokens = j["mean_completion_tokens"] * j["total"]
    rate[b] = (j["tokens_per_s"], tokens / (u + s))
    print(f"# {dtype:6s} round {r} batch {int(b):3d}: {tokens:.0f} tokens in {j['seconds']:.1f} s = {j['tokens_per_s']:.0f} tokens/s wall, "
          f"{tokens / (u + s):.0f} tokens per CPU-second ({u + s:.1f} CPU-s incl. load)", file=sys.stderr)
print(rate[n][0] / rate["1"][0], rate[n][1] / rate["1"][1])
PY
  done
  /usr/bin/python3 - "$work/ratios" "$dtype" "$n" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
wall = ", ".join(f"{a:.2f}x" for a, _ in rows)
print(f"{sys.argv[2]:6s} {sys.argv[3]} in flight vs 1: wall {wall} (median {statistics.median(a for a, _ in rows):.2f}x); "
      f"per CPU-second median {statistics.median(b for _, b in rows):.2f}x")
PY
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
