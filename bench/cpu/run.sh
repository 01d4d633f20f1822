#!/usr/bin/env bash
# End-to-end CPU inference benchmark of the ~1B benchmark model (bench/configs/v2-lite-1b.json):
# prefill/decode tokens/s per weight format at 1 and 2 threads, the bandwidth roofline fraction, and decode at a
# long context. Writes bench/results/cpu-inference.md. Usage: bench/cpu/run.sh [MODEL_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=${1:-/tmp/sharpseek-bench-v2-lite-1b}
cli="$root/src/SharpSeek.Cli/bin/Release/net10.0/sharpseek"
dotnet build "$root/src/SharpSeek.Cli" -c Release -v q -nologo >/dev/null
[ -f "$model/model.safetensors" ] || "$cli" synth --config "$root/bench/configs/v2-lite-1b.json" --out "$model" --seed 1
out="$root/bench/results/cpu-inference.md"
tmp=$(mktemp -d)
run() { # name, args...
  local name=$1; shift
  echo "== $name: $*" >&2
  "$cli" bench --model "$model" --json "$@" > "$tmp/$name.json" 2> "$tmp/$name.log"
}
for dt in bf16 q8_0 q4_k; do
  run "$dt-t2" --dtype "$dt" --threads 2 --prompt-tokens 512 --gen-tokens 128 --runs 3
  run "$dt-t1" --dtype "$dt" --threads 1 --prompt-tokens 512 --gen-tokens 64 --runs 2
done
run "q8_0-ctx256" --dtype q8_0 --threads 2 --prompt-tokens 256 --gen-tokens 32 --runs 2
run "q8_0-ctx8192" --dtype q8_0 --threads 2 --prompt-tokens 8192 --gen-tokens 32 --runs 1 --prefill-chunk 512 --compare-context 256
python3 - "$tmp" "$out" "$model" <<'PY'
import json, os, sys, platform, subprocess
tmp, out, model = sys.argv[1:4]
r = {f[:-5]: json.load(open(os.path.join(tmp, f))) for f in os.listdir(tmp) if f.endswith(".json")}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
load = open("/proc/loadavg").read().split()[:3]
L = ["# CPU inference benchmark", "",
     f"Model: `bench/configs/v2-lite-1b.json` synthesized with `sharpseek synth` (1.03B parameters, random bf16 weights on disk).",
     f"Machine: {cpu}, {os.cpu_count()} cores visible, {platform.platform()}; load average when it finished: {' '.join(load)}.",
     "Command: `bench/cpu/run.sh` (each row is `sharpseek bench --model M --dtype D --threads N --prompt-tokens P --gen-tokens G --json`).",
     "Decode roofline fraction = decode tok/s x weight bytes read per token / read bandwidth measured in the same process;",
     "prefill fraction = useful prefill FLOPs per second / the arithmetic peak measured in the same process",
     "(fp32 FMA for bf16, the int8 maddubs+maddwd sequence for Q8_0/Q4_K); matmul = the prefill matrix products alone",
     "(one middle layer's attention projections and MLPs at the prompt's token count, a routed expert at its share P*k/E),",
     "also against the fp32 FMA peak (from 48 tokens every format runs the fp32 GEMM over dequantized weight panels);",
     "matvec = one decoded token's matrix-vector products run alone, back to back (GB/s, and as a share of the read bandwidth);",
     "other = the share of a decode step spent outside them. Analysis by hand: `cpu-inference-notes.md`.", "",
     "| dtype | threads | prefill tok/s | decode tok/s | weight MB/token | read GB/s | roofline | matvec GB/s | matvec/read | other | prefill GFLOP/s | matmul GFLOP/s | peak G/s | prefill/peak | matmul/peak | matmul/FMA peak | TTFT ms | peak RSS MB |",
     "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for dt in ["bf16", "q8_0", "q4_k"]:
    for t in [1, 2]:
        x = r.get(f"{dt}-t{t}")
        if not x: continue
        L.append(f"| {dt} | {t} | {x['prefill_tokens_per_s']:.1f} | {x['decode_tokens_per_s']:.2f} | {x['weight_bytes_per_token']/1e6:.0f} | "
                 f"{x['read_bandwidth_bytes_per_s']/1e9:.1f} | {x['roofline_fraction']:.0%} | {x['decode_matvec_bytes_per_s']/1e9:.1f} | "
                 f"{x['decode_matvec_fraction']:.0%} | {x['decode_other_fraction']:.0%} | {x['prefill_gflops']:.1f} | {x['matmul_gflops']:.1f} | {x['peak_gflops']:.0f} | "
                 f"{x['prefill_peak_fraction']:.0%} | {x['matmul_peak_fraction']:.0%} | {x['matmul_fma_peak_fraction']:.0%} | {x['ttft_ms']:.0f} | {x['peak_rss_bytes']/1e6:.0f} |")
L += ["", "Scaling from 1 to 2 threads:", ""]
for dt in ["bf16", "q8_0", "q4_k"]:
    a, b = r.get(f"{dt}-t1"), r.get(f"{dt}-t2")
    if a and b:
        L.append(f"- {dt}: prefill {b['prefill_tokens_per_s']/a['prefill_tokens_per_s']:.2f}x, decode {b['decode_tokens_per_s']/a['decode_tokens_per_s']:.2f}x; "
                 f"the machine in the same runs: {b['peak_kind']} peak {b['peak_gflops']/a['peak_gflops']:.2f}x, "
                 f"read bandwidth {b['read_bandwidth_bytes_per_s']/a['read_bandwidth_bytes_per_s']:.2f}x")
a, b = r.get("q8_0-ctx256"), r.get("q8_0-ctx8192")
if a and b:
    L += ["", "Long context (Q8_0, 2 threads, bf16 latent cache):", "",
          f"- decode at 256 cached tokens: {a['decode_tokens_per_s']:.2f} tok/s; at 8192: {b['decode_tokens_per_s']:.2f} tok/s; "
          f"time per token ratio {a['decode_tokens_per_s']/b['decode_tokens_per_s']:.2f}x (two processes, minutes apart)",
          f"- the same in one process, 6 alternating rounds of 8 tokens at 256 and at 8,224+ cached tokens (medians): "
          f"{b['decode_tokens_per_s_short_context']:.2f} vs {b['decode_tokens_per_s_long_context']:.2f} tok/s, "
          f"time per token ratio {b['long_context_time_ratio']:.2f}x",
          f"- latent cache after 8192 + 32 tokens: {b['kv_cache_bytes']:,} bytes = (512 + 64) x 2 bytes x 12 layers x 8224 tokens = {576*2*12*8224:,}"]
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
