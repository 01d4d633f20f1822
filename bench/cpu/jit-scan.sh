#!/usr/bin/env bash
# Lists SharpSeek methods whose JIT output keeps vector registers in stack slots ([rbp-..] ymm/zmm loads and stores)
# or calls the class-initialization helper (CORINFO_HELP_GET_*STATIC_BASE), next to how many vector FMA / integer-dot
# instructions they have: the signature of a hot loop the JIT spilled. Found this way (2026-12-06): Gemm.Kernel32 kept
# its twelve accumulators in memory (an edge-tile stackalloc and call in the same method), and static readonly vectors
# read inside Q6_K loops carried a helper call, because the `sharpseek` tool runs without tiered compilation (statics are
# not JIT-time constants then). Each hit is a place to look at in the disassembly, not a verdict (register pressure of
# VEX-only instructions, 16 ymm, also shows).
#   bench/cpu/jit-scan.sh [MODEL(.gguf or dir)] [extra sharpseek bench args...]
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:-models/sharpseek-mini}; shift || true
dotnet build -c Release src/SharpSeek.Cli -v q -nologo >/dev/null
OUT=$(mktemp /tmp/jit-scan-XXXX.asm)
DOTNET_JitDisasm='*' DOTNET_JitStdOutFile=$OUT dotnet src/SharpSeek.Cli/bin/Release/net10.0/sharpseek.dll bench --model "$MODEL" \
    --prompt-tokens 64 --gen-tokens 8 --runs 1 --skip-roofline "$@" >/dev/null 2>&1
/usr/bin/python3 - "$OUT" <<'PY'
import re, sys
cur, st = None, {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"; Assembly listing for method (.*)", line)
    if m:
        cur = m.group(1); st.setdefault(cur, [0, 0, 0]); continue
    if cur is None:
        continue
    if "STATIC_BASE" in line: st[cur][0] += 1
    if re.search(r"[yz]mmword ptr \[rbp", line): st[cur][1] += 1
    if re.search(r"v(fmadd|pmaddwd|pdpbusd|pmaddubsw)", line): st[cur][2] += 1
rows = [(v, k) for k, v in st.items() if "SharpSeek" in k and v[2] >= 4 and (v[0] > 0 or v[1] >= 6)]
print("static-base calls | vector stack slots | FMA/dot instructions | method")
for v, k in sorted(rows, key=lambda r: -r[0][1]):
    print(f"{v[0]:>3} | {v[1]:>4} | {v[2]:>4} | {k[:140]}")
PY
rm -f "$OUT"
