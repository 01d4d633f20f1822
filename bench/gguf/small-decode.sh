#!/usr/bin/env bash
# Issue 16 item 3: the 0.45B decode against the read-bandwidth roofline, Q8_0 and Q4_K_M alternating.
# One markdown table row per run: time, type, decode tok/s, the runs' roofline (best of 5 x 1 GiB passes before and
# after), the paired rounds' median and range (a decode round between two passes, `sharpseek bench`'s
# roofline_fraction_paired), the paired passes' bandwidths, the products alone, and the rest of a step.
#   bench/gguf/small-decode.sh [rounds] [dir]   (files from bench/gguf/native.sh: dir defaults to /tmp/sharpseek-gguf-bench/0.45b/gguf)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}; DIR=${2:-/tmp/sharpseek-gguf-bench/0.45b/gguf}
out=$(mktemp -d)
for r in $(seq 1 "$ROUNDS"); do
  for t in q8_0 q4_k_m; do
    ts=$(date -u +%H:%M)
    ./sharpseek bench --model "$DIR/hf-$t.gguf" --threads 2 --prompt-tokens 256 --gen-tokens 64 --runs 2 --json 2>/dev/null >"$out/$t-$r.json"
    /usr/bin/python3 - "$out/$t-$r.json" "$ts" "$t" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); ts, t = sys.argv[2], sys.argv[3]
bw, f = d['read_bandwidth_paired_rounds'], d['roofline_fraction_paired_rounds']
print('| %s | %s | %.1f | %.1f | %.0f%% | %.0f%% (%.0f-%.0f%%) | %.1f-%.1f | %.1f | %.0f%% |' % (
    ts, t, d['decode_tokens_per_s'], d['read_bandwidth_bytes_per_s'] / 1e9, 100 * d['roofline_fraction'],
    100 * d['roofline_fraction_paired'], 100 * min(f), 100 * max(f), min(bw) / 1e9, max(bw) / 1e9,
    d['decode_matvec_bytes_per_s'] / 1e9, 100 * d['decode_other_fraction']))
PY
  done
done
rm -rf "$out"
