#!/usr/bin/env bash
# SharpSeek against native llama.cpp (llama-bench of ../shared/tools/llama-cpp/build.sh: llama.cpp de3ff81, -march=native)
# on the same GGUF files written by SharpSeek, at three sizes, one table per size. Per round and type both engines run
# back to back, their order alternating between rounds; the table gives the median over rounds (and the spread).
#   SharpSeek: `sharpseek bench --model FILE.gguf` (memory-mapped as stored, bf16 latent cache), prefill of P tokens
#              from an empty cache, then G greedy decode steps after it; the first round also measures the read
#              bandwidth roofline (decode % of roofline = weight bytes per token x tokens/s / read bandwidth).
#   llama.cpp: `llama-bench -p P -n 0` (prefill from empty) and `llama-bench -p 0 -n G -d P` (G decode steps after a
#              context of P, as SharpSeek decodes), its defaults otherwise (f16 KV cache, flash attention auto,
#              one warm-up run, mmap).
#
#   bench/gguf/native.sh [threads] [prompt] [gen] [rounds] [sizes]
#     sizes: any of "0.45b 1b 3b" (bench/configs/v2-lite-0.45b.json, v2-lite-1b.json, v2-lite-3b.json) or "tiny"
#     (bench/configs/gguf-tiny.json, a dry run of the script). Defaults: 2 256 64 3 "0.45b 1b 3b".
#   env: LLAMA_BIN (default $HOME/.cache/llama-cpp-3.22.1/bin), WORK (models and GGUF files, default /tmp/sharpseek-gguf-bench),
#        TYPES (default "bf16 q8_0 q4_k_m"; the 3b size skips bf16 unless TYPES_3B is set)
# Dry run: bench/gguf/native.sh 2 16 8 1 tiny
set -euo pipefail
cd "$(dirname "$0")/../.."
T=${1:-2}; P=${2:-256}; G=${3:-64}; ROUNDS=${4:-3}; SIZES=${5:-"0.45b 1b 3b"}
LLAMA_BIN=${LLAMA_BIN:-$HOME/.cache/llama-cpp-3.22.1/bin}
WORK=${WORK:-/tmp/sharpseek-gguf-bench}
TYPES=${TYPES:-"bf16 q8_0 q4_k_m"}
[ -x "$LLAMA_BIN/llama-bench" ] || { echo "llama-bench not found in $LLAMA_BIN: run ../shared/tools/llama-cpp/build.sh or set LLAMA_BIN" >&2; exit 1; }
dotnet build -c Release src/SharpSeek.Cli -v q -nologo >/dev/null
dotnet build -c Release bench/gguf -v q -nologo >/dev/null
CLI="dotnet src/SharpSeek.Cli/bin/Release/net10.0/sharpseek.dll"
PREP="dotnet bench/gguf/bin/Release/net10.0/SharpSeek.GgufBench.dll"
PY=/usr/bin/python3
mkdir -p "$WORK"
raw=$WORK/results-$(date -u +%Y%m%dT%H%M%S).tsv
echo -e "size\ttype\tround\tengine\tprefill_tok_s\tdecode_tok_s\troofline_fraction\tload_before" >"$raw"

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; .NET $(dotnet --version);" \
     "llama.cpp $(git -C "$LLAMA_BIN/../src" rev-parse --short HEAD 2>/dev/null || echo '?') (native build)"
echo "threads $T, prompt $P tokens, generate $G tokens, $ROUNDS rounds; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

config_of() { case $1 in 0.45b) echo bench/configs/v2-lite-0.45b.json;; 1b) echo bench/configs/v2-lite-1b.json;;
                         3b) echo bench/configs/v2-lite-3b.json;; tiny) echo bench/configs/gguf-tiny.json;;
                         *) echo "unknown size $1" >&2; exit 2;; esac; }

sharpseek() { # file round -> prefill decode roofline
  local skip=--skip-roofline; [ "$2" = 1 ] && skip=
  $CLI bench --model "$1" --threads "$T" --prompt-tokens "$P" --gen-tokens "$G" --runs 1 --json $skip 2>/dev/null |
    $PY -c 'import json,sys; r=json.load(sys.stdin); print(r["prefill_tokens_per_s"], r["decode_tokens_per_s"], r["roofline_fraction"])'
}

llama() { # file -> prefill decode
  local pp tg
  pp=$("$LLAMA_BIN/llama-bench" -m "$1" -t "$T" -p "$P" -n 0 -r 1 -o json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["avg_ts"])')
  tg=$("$LLAMA_BIN/llama-bench" -m "$1" -t "$T" -p 0 -n "$G" -d "$P" -r 1 -o json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["avg_ts"])')
  echo "$pp $tg"
}

for size in $SIZES; do
  cfg=$(config_of "$size"); hf=$WORK/$size/hf; gg=$WORK/$size/gguf
  types=$TYPES; [ "$size" = 3b ] && types=${TYPES_3B:-"q8_0 q4_k_m"}
  [ -f "$hf/config.json" ] || $CLI synth --config "$cfg" --out "$hf" >&2
  for t in $types; do
    [ -f "$gg/hf-$t.gguf" ] || $PREP prepare --model "$hf" --out "$gg" --types "$t" >&2
  done
  for r in $(seq 1 "$ROUNDS"); do
    for t in $types; do
      f=$gg/hf-$t.gguf
      order="sharpseek llama"; [ $((r % 2)) = 0 ] && order="llama sharpseek"
      for e in $order; do
        load=$(cut -d' ' -f1 /proc/loadavg)
        if [ "$e" = sharpseek ]; then read -r pf dc rf < <(sharpseek "$f" "$r"); else read -r pf dc < <(llama "$f"); rf=; fi
        echo -e "$size\t$t\t$r\t$e\t$pf\t$dc\t$rf\t$load" >>"$raw"
      done
    done
  done
  $PY - "$raw" "$size" "$cfg" "$gg" <<'PYEOF'
import csv, json, os, statistics, sys
raw, size, cfg, gg = sys.argv[1:5]
rows = [r for r in csv.DictReader(open(raw), delimiter="\t") if r["size"] == size]
c = json.load(open(cfg))
print(f"\n### {size}: {os.path.basename(cfg)} (hidden {c['hidden_size']}, {c['num_hidden_layers']} layers, "
      f"{c['n_routed_experts']} experts of {c['moe_intermediate_size']}, top-{c['num_experts_per_tok']}, vocab {c['vocab_size']})\n")
print("| type | file MB | SharpSeek prefill tok/s | llama.cpp prefill tok/s | ratio | SharpSeek decode tok/s | llama.cpp decode tok/s | ratio | SharpSeek decode % of roofline | load avg (1 min) |")
print("|---|---|---|---|---|---|---|---|---|---|")
def med(xs):
    xs = [float(x) for x in xs]
    m = statistics.median(xs)
    return m, (f"{m:.2f}" if len(xs) == 1 else f"{m:.2f} ({min(xs):.2f}-{max(xs):.2f})")
for t in dict.fromkeys(r["type"] for r in rows):
    s = [r for r in rows if r["type"] == t and r["engine"] == "sharpseek"]
    l = [r for r in rows if r["type"] == t and r["engine"] == "llama"]
    sp, sps = med(r["prefill_tok_s"] for r in s); lp, lps = med(r["prefill_tok_s"] for r in l)
    sd, sds = med(r["decode_tok_s"] for r in s); ld, lds = med(r["decode_tok_s"] for r in l)
    roof = [float(r["roofline_fraction"]) for r in s if r["roofline_fraction"] not in ("", "0")]
    loads = [float(r["load_before"]) for r in s + l]
    mb = os.path.getsize(os.path.join(gg, f"hf-{t}.gguf")) / 1e6
    print(f"| {t} | {mb:.0f} | {sps} | {lps} | {sp / lp:.2f} | {sds} | {lds} | {sd / ld:.2f} | "
          f"{(100 * roof[0]):.0f}% | {min(loads):.2f}-{max(loads):.2f} |" if roof else
          f"| {t} | {mb:.0f} | {sps} | {lps} | {sp / lp:.2f} | {sds} | {lds} | {sd / ld:.2f} | - | {min(loads):.2f}-{max(loads):.2f} |")
PYEOF
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg); per-run values: $raw"
