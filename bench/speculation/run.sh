#!/usr/bin/env bash
# Speculative decoding against plain decoding, same process settings, modes alternating within each round:
#   plain, --speculative (adaptive: drafts where the measured costs predict a gain), --speculative --draft-always.
# Greedy, EOS ignored, one prompt; decode tok/s from `generate --stats`. Prints, per thread count, the median decode
# speed of each mode over the rounds and its ratio to plain, with the acceptance and the policy's cost ratio.
#   bench/speculation/run.sh [model dir or .gguf] [tokens] [rounds] [threads list] [drafts a step]
# Defaults: models/sharpseek-mini 200 5 "1 2" 1 (more than 1: --speculative-tokens K, the MTP module applied recursively). The issue's bar: adaptive >= 0.97x plain on every model and thread count.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-models/sharpseek-mini}; N=${2:-200}; ROUNDS=${3:-5}; THREADS=${4:-"1 2"}; K=${5:-1}
dotnet build -c Release src/SharpSeek.Cli -v q -nologo >/dev/null
CLI="dotnet src/SharpSeek.Cli/bin/Release/net10.0/sharpseek.dll"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; .NET $(dotnet --version); model $MODEL, $N tokens, $ROUNDS rounds, $K drafts a step"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
for T in $THREADS; do
  for r in $(seq 1 "$ROUNDS"); do
    for mode in plain adaptive always; do
      case $mode in plain) f=;; adaptive) f="--speculative --speculative-tokens $K";; always) f="--speculative --speculative-tokens $K --draft-always";; esac
      line=$($CLI generate --model "$MODEL" --prompt "It is a truth universally acknowledged" --max-tokens "$N" \
             --temperature 0 --ignore-eos --threads "$T" --stats $f 2>&1 >/dev/null | tail -1)
      echo -e "$T\t$mode\t$line" >>"$tmp"
    done
  done
done
/usr/bin/python3 - "$tmp" <<'PYEOF'
import re, statistics, sys
rows = [l.rstrip("\n").split("\t", 2) for l in open(sys.argv[1])]
print("\n| threads | mode | decode tok/s (median, min-max) | vs plain | drafts accepted | draft steps / plain steps | cost ratio (verify / plain step) |")
print("|---|---|---|---|---|---|---|")
for t in dict.fromkeys(r[0] for r in rows):
    speeds = {}
    for mode in ("plain", "adaptive", "always"):
        ls = [r[2] for r in rows if r[0] == t and r[1] == mode]
        s = [float(re.search(r"\(([\d.]+) tok/s\)", l).group(1)) for l in ls]
        speeds[mode] = statistics.median(s)
        acc = re.search(r"accepted (\d+/\d+ \([\d.]+%\))", ls[-1]); steps = re.search(r"(\d+) draft steps \([\d.]+ tokens each\), (\d+) plain", ls[-1])
        ratio = re.search(r"ratio ([\d.]+|NaN)", ls[-1])
        print(f"| {t} | {mode} | {speeds[mode]:.1f} ({min(s):.1f}-{max(s):.1f}) | {speeds[mode] / speeds['plain']:.2f}x | "
              f"{acc.group(1) if acc else '-'} | {steps.group(1) + ' / ' + steps.group(2) if steps else '-'} | {ratio.group(1) if ratio else '-'} |")
PYEOF
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
