#!/usr/bin/env python3
"""Writes a synthetic, random-weight DeepSeek-V4-shaped model (~2.7B parameters) as a GGUF for llama.cpp's
`deepseek4` architecture, for decode/prefill speed comparisons between SharpSeek and native llama.cpp.

    PYTHONPATH=$HOME/.cache/llama-cpp-3.22.1/src/gguf-py /usr/bin/python3 bench/v4/make-synthetic.py \
        [--out /tmp/v4-bench/v4-2b-q8_0.gguf] [--type q8_0|f32|bf16] [--seed 1234]

V4-Flash's structure scaled down (see bench/v4/README.md for the shape table and parameter counts): 12 main layers
(no MTP layer), compress_ratios [0, 0, 4, 128, 4, 128, 4, 128, 4, 128, 4, 0], 3 hash-routed layers, 64 routed experts
(top 6) + 1 shared expert, hyper-connections hc 4. Key/tensor layout follows llama.cpp's converter
(conversion/deepseek.py, DeepseekV4Model) and tests/fixtures/llama-cpp/deepseek4/make.py.

Types (--type q8_0, the default): every 2-D linear weight (attention projections, compressor/indexer projections,
router ffn_gate_inp, routed and shared experts, token_embd, output) is Q8_0; norms, hc_* (fn/base/scale), attn_sinks,
compressor ape and exp_probs_b stay F32 (as llama.cpp's converter keeps them); ffn_gate_tid2eid is I32.
--type bf16: the same with BF16 instead of Q8_0. --type f32: every float tensor F32.

Weights are generated one tensor at a time (the routed experts one expert at a time), quantized and appended to the
file, so peak memory stays well under 1 GiB. Deterministic: tensor i is drawn from numpy default_rng([seed, i]).
Random scales as in the fixture: linear weights N(0, 1/sqrt(fan_in)), token_embd N(0, 1), norms 1 + N(0, 0.1),
attn_sinks N(0, 1), hc base N(0, 0.5), hc scale U(0.5, 1.5), compressor ape N(0, 0.5), exp_probs_b N(0, 0.1); the hc
fn matrices are N(0, 0.8/sqrt(hc*n_embd)) so the mixing pre-activations have the fixture's spread (0.05 at its
hc*n_embd = 256).
"""
import argparse
import os
import sys
import time

import numpy as np
import gguf
from gguf.quants import quantize, quant_shape_to_byte_shape

# ---- the configuration (V4-Flash structure, scaled down) ----
VOCAB = 32000
N_EMBD = 1024
N_MAIN = 12
COMPRESS = [0, 0, 4, 128, 4, 128, 4, 128, 4, 128, 4, 0]
N_HASH = 3
N_HEAD = 16
HEAD_DIM = 512                            # key_length = value_length; one KV head (MQA)
N_ROT = 64                                # qk_rope_head_dim
Q_LORA = 512
O_GROUPS = 4
O_LORA = 512
WINDOW = 128
N_EXPERT = 64
N_USED = 6
N_FF_EXP = 1024
N_SHARED = 1
ROUTED_SCALE = 1.5
SWIGLU_CLAMP_EXP = 10.0
SWIGLU_CLAMP_SHEXP = 0.0                  # llama.cpp: no clamp at limit <= 1e-6 (DeepSeek's reference: shared unclamped)
IDX_HEADS = 16
IDX_DIM = 128
IDX_TOPK = 512
HC = 4
HC_ITERS = 20
HC_EPS = 1e-6
RMS_EPS = 1e-6
ROPE_THETA = 10000.0
COMPRESS_ROPE_THETA = 160000.0
YARN_FACTOR = 16.0
YARN_ORIG_CTX = 65536
YARN_BETA_FAST = 32.0
YARN_BETA_SLOW = 1.0
N_CTX = 65536

HC_DIM = HC * N_EMBD
HC_MIX = (2 + HC) * HC
HC_FN_STD = 0.8 / np.sqrt(HC_DIM)

assert len(COMPRESS) == N_MAIN

QTYPES = {
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "bf16": (gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
}


class Spec:
    """One tensor: numpy shape ([out, in], experts leading), how to draw it, and its kind: 'lin' (a 2-D/3-D linear
    weight: the chosen --type), 'f32' (kept F32), 'i32' (tid2eid)."""

    def __init__(self, name, shape, init, kind, **kw):
        self.name, self.shape, self.init, self.kind, self.kw = name, tuple(shape), init, kind, kw

    @property
    def n(self):
        return int(np.prod(self.shape))


def specs():
    out = []

    def lin(name, o, i, lead=()):
        out.append(Spec(name, (*lead, o, i), "linear", "lin"))

    def norm(name, n):
        out.append(Spec(name, (n,), "norm", "f32"))

    def normal(name, shape, std, kind="f32"):
        out.append(Spec(name, shape, "normal", kind, std=std))

    def uniform(name, shape, lo, hi):
        out.append(Spec(name, shape, "uniform", "f32", lo=lo, hi=hi))

    normal("token_embd.weight", (VOCAB, N_EMBD), 1.0, kind="lin")
    for il in range(N_MAIN):
        b = f"blk.{il}."
        ratio = COMPRESS[il]
        norm(b + "attn_norm.weight", N_EMBD)
        normal(b + "attn_sinks.weight", (N_HEAD,), 1.0)
        lin(b + "attn_q_a.weight", Q_LORA, N_EMBD)
        norm(b + "attn_q_a_norm.weight", Q_LORA)
        lin(b + "attn_q_b.weight", N_HEAD * HEAD_DIM, Q_LORA)
        lin(b + "attn_kv.weight", HEAD_DIM, N_EMBD)
        norm(b + "attn_kv_a_norm.weight", HEAD_DIM)
        # wo_a as the converter writes it: [o_groups * o_lora_rank, n_head * head_dim / o_groups]
        lin(b + "attn_output_a.weight", O_GROUPS * O_LORA, N_HEAD * HEAD_DIM // O_GROUPS)
        lin(b + "attn_output_b.weight", N_EMBD, O_GROUPS * O_LORA)
        for hc in ("attn", "ffn"):
            normal(b + f"hc_{hc}_fn.weight", (HC_MIX, HC_DIM), HC_FN_STD)
            normal(b + f"hc_{hc}_base.weight", (HC_MIX,), 0.5)
            uniform(b + f"hc_{hc}_scale.weight", (3,), 0.5, 1.5)
        if ratio:
            coff = 2 if ratio == 4 else 1   # ratio 4 compresses overlapping windows: two halves
            lin(b + "attn_compressor_kv.weight", coff * HEAD_DIM, N_EMBD)
            lin(b + "attn_compressor_gate.weight", coff * HEAD_DIM, N_EMBD)
            normal(b + "attn_compressor_ape.weight", (ratio, coff * HEAD_DIM), 0.5)
            norm(b + "attn_compressor_norm.weight", HEAD_DIM)
            if ratio == 4:
                lin(b + "indexer.proj.weight", IDX_HEADS, N_EMBD)
                lin(b + "indexer.attn_q_b.weight", IDX_HEADS * IDX_DIM, Q_LORA)
                lin(b + "indexer_compressor_kv.weight", 2 * IDX_DIM, N_EMBD)
                lin(b + "indexer_compressor_gate.weight", 2 * IDX_DIM, N_EMBD)
                normal(b + "indexer_compressor_ape.weight", (ratio, 2 * IDX_DIM), 0.5)
                norm(b + "indexer_compressor_norm.weight", IDX_DIM)
        lin(b + "ffn_gate_inp.weight", N_EXPERT, N_EMBD)
        if il < N_HASH:
            out.append(Spec(b + "ffn_gate_tid2eid.weight", (VOCAB, N_USED), "tid2eid", "i32"))  # [vocab, n_used]
        else:
            normal(b + "exp_probs_b.bias", (N_EXPERT,), 0.1)
        norm(b + "ffn_norm.weight", N_EMBD)
        lin(b + "ffn_gate_exps.weight", N_FF_EXP, N_EMBD, lead=(N_EXPERT,))
        lin(b + "ffn_down_exps.weight", N_EMBD, N_FF_EXP, lead=(N_EXPERT,))
        lin(b + "ffn_up_exps.weight", N_FF_EXP, N_EMBD, lead=(N_EXPERT,))
        lin(b + "ffn_gate_shexp.weight", N_FF_EXP * N_SHARED, N_EMBD)
        lin(b + "ffn_down_shexp.weight", N_EMBD, N_FF_EXP * N_SHARED)
        lin(b + "ffn_up_shexp.weight", N_FF_EXP * N_SHARED, N_EMBD)
    normal("output_hc_fn.weight", (HC, HC_DIM), HC_FN_STD)
    normal("output_hc_base.weight", (HC,), 0.5)
    uniform("output_hc_scale.weight", (1,), 0.5, 1.5)
    norm("output_norm.weight", N_EMBD)
    lin("output.weight", VOCAB, N_EMBD)
    return out


def param_counts(sp):
    """(total, active per token incl. the embedding row, active excl. token_embd), float parameters only (the I32
    tid2eid tables, 3 x 32000 x 6 entries, are not counted). Active: routed experts count N_USED/N_EXPERT of their
    parameters; the token embedding contributes one row (N_EMBD) per token."""
    total = sum(s.n for s in sp if s.kind != "i32")
    active = 0
    for s in sp:
        if s.name.endswith("_exps.weight"):
            active += s.n * N_USED // N_EXPERT
        elif s.name == "token_embd.weight" or s.name.endswith("ffn_gate_tid2eid.weight"):
            continue
        else:
            active += s.n
    return total, active + N_EMBD, active


# ---- generation ----
def draw(s, rng, rows=None):
    """float32 values of s (or, for a 3-D linear, of `rows` = one expert's [out, in] slice)."""
    shape = rows if rows is not None else s.shape
    if s.init == "linear":
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(1.0 / np.sqrt(shape[-1]))
    if s.init == "normal":
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(s.kw["std"])
    if s.init == "norm":
        return np.float32(1.0) + rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)
    if s.init == "uniform":
        return rng.uniform(s.kw["lo"], s.kw["hi"], size=shape).astype(np.float32)
    if s.init == "tid2eid":
        # N_USED distinct experts per token: the first N_USED of a random permutation of the experts, per row
        return np.argsort(rng.random((VOCAB, N_EXPERT)), axis=1)[:, :N_USED].astype(np.int32)
    raise ValueError(s.init)


def out_type(s, qtype):
    if s.kind == "i32":
        return gguf.GGMLQuantizationType.I32
    if s.kind == "f32":
        return gguf.GGMLQuantizationType.F32
    return qtype


def stored(s, qtype):
    """(numpy dtype of the stored array, its shape, raw_dtype for add_tensor_info)."""
    t = out_type(s, qtype)
    if t == gguf.GGMLQuantizationType.I32:
        return np.int32, s.shape, None
    if t == gguf.GGMLQuantizationType.F32:
        return np.float32, s.shape, None
    return np.uint8, quant_shape_to_byte_shape(s.shape, t), t


def materialize(s, qtype, seed, idx):
    rng = np.random.default_rng([seed, idx])
    t = out_type(s, qtype)
    if t in (gguf.GGMLQuantizationType.I32, gguf.GGMLQuantizationType.F32) or len(s.shape) == 2:
        a = draw(s, rng)
        return a if t in (gguf.GGMLQuantizationType.I32, gguf.GGMLQuantizationType.F32) else quantize(a, t)
    # 3-D (routed experts): one expert at a time (quantization is per row, so this equals quantizing the whole)
    dt, shape, _ = stored(s, qtype)
    out = np.empty(shape, dtype=dt)
    for e in range(s.shape[0]):
        out[e] = quantize(draw(s, rng, rows=s.shape[1:]), t)
    return out


def peak_rss_mib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="output path (default /tmp/v4-bench/v4-2b-<type>.gguf)")
    ap.add_argument("--type", default="q8_0", choices=sorted(QTYPES))
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    qtype, ftype = QTYPES[args.type]
    path = args.out or f"/tmp/v4-bench/v4-2b-{args.type}.gguf"
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    sp = specs()
    total, active, active_no_embd = param_counts(sp)
    print(f"parameters: total {total:,} ({total / 1e9:.3f} B); active per token {active:,} ({active / 1e6:.1f} M; "
          f"{active_no_embd:,} without the embedding row)")

    t0 = time.time()
    w = gguf.GGUFWriter(path, "deepseek4")
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(f"deepseek4-synthetic-2b-{args.type}")
    # TextModel.set_gguf_parameters (conversion/base.py)
    w.add_block_count(N_MAIN)
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(1)
    w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
    w.add_rope_scaling_factor(YARN_FACTOR)
    w.add_rope_scaling_orig_ctx_len(YARN_ORIG_CTX)
    w.add_rope_scaling_yarn_beta_fast(YARN_BETA_FAST)
    w.add_rope_scaling_yarn_beta_slow(YARN_BETA_SLOW)
    w.add_rope_freq_base(ROPE_THETA)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_expert_count(N_EXPERT)
    w.add_expert_used_count(N_USED)
    w.add_expert_gating_func(gguf.ExpertGatingFuncType.SQRTSOFTPLUS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_file_type(ftype)
    # DeepseekV4Model.set_gguf_parameters (conversion/deepseek.py)
    w.add_rope_dimension_count(N_ROT)
    w.add_q_lora_rank(Q_LORA)
    w.add_sliding_window(WINDOW)
    w.add_expert_feed_forward_length(N_FF_EXP)
    w.add_expert_shared_count(N_SHARED)
    w.add_expert_weights_scale(ROUTED_SCALE)
    w.add_expert_weights_norm(True)
    w.add_swiglu_clamp_exp([SWIGLU_CLAMP_EXP] * N_MAIN)
    w.add_swiglu_clamp_shexp([SWIGLU_CLAMP_SHEXP] * N_MAIN)
    w.add_indexer_head_count(IDX_HEADS)
    w.add_indexer_key_length(IDX_DIM)
    w.add_indexer_top_k(IDX_TOPK)
    w.add_attention_output_group_count(O_GROUPS)
    w.add_attention_output_lora_rank(O_LORA)
    w.add_attention_compress_ratios(COMPRESS)
    w.add_attention_compress_rope_freq_base(COMPRESS_ROPE_THETA)
    w.add_hyper_connection_count(HC)
    w.add_hyper_connection_sinkhorn_iterations(HC_ITERS)
    w.add_hyper_connection_epsilon(HC_EPS)
    w.add_hash_layer_count(N_HASH)
    w.add_embedding_length_out(N_EMBD * HC)
    # no MTP layer: no nextn_predict_layers key. No tokenizer: gguf-py's NoVocab; llama.cpp then makes VOCAB dummy
    # tokens from deepseek4.vocab_size
    w.add_vocab_size(VOCAB)
    w.add_tokenizer_model("no_vocab")
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    # pass 1: tensor infos (shapes and sizes only); pass 2: generate, quantize, append, free
    for s in sp:
        dt, shape, raw = stored(s, qtype)
        nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize
        w.add_tensor_info(s.name, shape, np.dtype(dt), nbytes, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    n_types = {}
    for idx, s in enumerate(sp):
        a = materialize(s, qtype, args.seed, idx)
        if s.kind != "i32" and a.dtype == np.float32:
            assert np.isfinite(a).all(), s.name
        w.write_tensor_data(a)
        t = out_type(s, qtype).name
        n_types[t] = n_types.get(t, 0) + 1
        del a
        if s.name.endswith("ffn_up_exps.weight"):
            print(f"  {s.name} done, {time.time() - t0:.0f} s, peak RSS {peak_rss_mib():.0f} MiB", flush=True)
    w.close()
    size = os.path.getsize(path)
    print(f"wrote {path}: {size:,} bytes ({size / 2**30:.2f} GiB), {len(sp)} tensors "
          f"({', '.join(f'{k} {v}' for k, v in sorted(n_types.items()))}) in {time.time() - t0:.0f} s; "
          f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
