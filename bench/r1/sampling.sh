#!/usr/bin/env bash
# GRPO's sampling path (Generator.GenerateBatch, as eval-tasks and grpo run it): completion tokens per second with N
# completions generated together against one at a time, same problems, same model, greedy, 2 threads, weights as
# stored and as fp32 (GRPO samples from the trainer's fp32 master weights). Reports wall
# tokens/s (the generation only) and tokens per CPU-second of the whole process (robust when the machine is shared),
# with the load average.
#
#   bench/r1/sampling.sh [MODEL] [N] [MAX_TOKENS]      defaults: models/sharpseek-mini 32 128
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
model=${1:-models/sharpseek-mini}; n=${2:-32}; max=${3:-128}; dtypes=${DTYPES:-stored f32}
export DOTNET_TieredCompilation=0 # optimized code from the first call: short runs measure the kernels, not tier-0 code
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
./sharpseek tasks --out "$work" --train 0 --validation 0 --test $(( (n + 2) / 3 )) >/dev/null
echo "model $model, $n arith prompts, up to $max tokens each, threads 2; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for dtype in $dtypes; do
for batch in 1 "$n"; do
  /usr/bin/time -f "%U %S" -o "$work/time" ./sharpseek eval-tasks --model "$model" --tasks "$work/arith-test.jsonl" --limit "$n" \
    --max-tokens "$max" --threads 2 --batch "$batch" --dtype "$dtype" --json > "$work/out.json" 2>/dev/null
  python3 - "$work/out.json" "$work/time" "$batch" "$dtype" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); u, s = map(float, open(sys.argv[2]).read().split())
tokens = j["mean_completion_tokens"] * j["total"]
print(f"{sys.argv[4]:6s} batch {int(sys.argv[3]):3d}: {tokens:.0f} tokens in {j['seconds']:.1f} s = {j['tokens_per_s']:.0f} tokens/s wall, "
      f"{tokens / (u + s):.0f} tokens per CPU-second ({u + s:.1f} CPU-s incl. load)")
PY
done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
