"""The same DeepSeek-V3-style architecture as SharpSeek's training engine, in plain PyTorch (eager, fp32, CPU),
for the side-by-side training benchmark: MLA in its naive form with interleaved RoPE, DeepSeekMoE with the
sigmoid/noaux_tc router (bias for selection only, group-limited top-k, normalized and scaled weights), SwiGLU,
RMSNorm, and one MTP module (postnorm convention). Loads config.json + model.safetensors written by
`sharpseek bench-train --save-model` so both frameworks train exactly the same model on the same batch."""
import json, math, struct, sys, time, argparse
import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": torch.float32, "I64": torch.int64}[v["dtype"]]
        out[k] = torch.frombuffer(bytearray(data[a:b]), dtype=dt).reshape(v["shape"]).clone()
    return out


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):  # interleaved pairs (x0, x1) -> (x0 c - x1 s, x0 s + x1 c)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class Model(torch.nn.Module):
    def __init__(self, cfg, sd):
        super().__init__()
        self.c = cfg
        assert cfg.get("rope_scaling") is None, "this benchmark model uses plain RoPE"
        self.p = torch.nn.ParameterDict({k.replace(".", "_"): torch.nn.Parameter(v) for k, v in sd.items()
                                         if not k.endswith("e_score_correction_bias")})
        self.bias = {k: v for k, v in sd.items() if k.endswith("e_score_correction_bias")}
        # MTP copies of the embedding and head are tied to the main ones (as SharpSeek does when they are equal)
        L = cfg["num_hidden_layers"]
        for n in (f"model.layers.{L}.embed_tokens.weight", f"model.layers.{L}.shared_head.head.weight"):
            if n.replace(".", "_") in self.p:
                del self.p[n.replace(".", "_")]
        dr = cfg["qk_rope_head_dim"]
        self.inv_freq = 1.0 / (cfg.get("rope_theta", 10000.0) ** (torch.arange(0, dr, 2).float() / dr))
        self.scale = (cfg["qk_nope_head_dim"] + dr) ** -0.5

    def w(self, name):
        return self.p[name.replace(".", "_")]

    def mlp(self, pre, x):
        return F.linear(F.silu(F.linear(x, self.w(pre + "gate_proj.weight"))) * F.linear(x, self.w(pre + "up_proj.weight")),
                        self.w(pre + "down_proj.weight"))

    def attn(self, l, x, cos, sin):
        c = self.c
        B, T, H = x.shape
        nh, dn, dr, dv, R = c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"]
        pre = f"model.layers.{l}.self_attn."
        if c.get("q_lora_rank"):
            q = F.linear(rms(F.linear(x, self.w(pre + "q_a_proj.weight")), self.w(pre + "q_a_layernorm.weight"), 1e-6), self.w(pre + "q_b_proj.weight"))
        else:
            q = F.linear(x, self.w(pre + "q_proj.weight"))
        q = q.view(B, T, nh, dn + dr)
        q_nope, q_pe = q[..., :dn], rope(q[..., dn:], cos[:, None, :], sin[:, None, :])
        kva = F.linear(x, self.w(pre + "kv_a_proj_with_mqa.weight"))
        lat = rms(kva[..., :R], self.w(pre + "kv_a_layernorm.weight"), 1e-6)
        k_pe = rope(kva[..., R:], cos, sin)
        kv = F.linear(lat, self.w(pre + "kv_b_proj.weight")).view(B, T, nh, dn + dv)
        k = torch.cat((kv[..., :dn], k_pe[:, :, None, :].expand(B, T, nh, dr)), -1).transpose(1, 2)
        qq = torch.cat((q_nope, q_pe), -1).transpose(1, 2)
        v = kv[..., dn:].transpose(1, 2)
        s = torch.matmul(qq, k.transpose(-1, -2)) * self.scale
        mask = torch.full((T, T), float("-inf")).triu(1)
        p = torch.softmax(s + mask, -1)
        o = torch.matmul(p, v).transpose(1, 2).reshape(B, T, nh * dv)
        return F.linear(o, self.w(pre + "o_proj.weight"))

    def moe(self, l, x):
        c = self.c
        B, T, H = x.shape
        xf = x.reshape(-1, H)
        E, K, G, TG = c["n_routed_experts"], c["num_experts_per_tok"], c["n_group"], c["topk_group"]
        pre = f"model.layers.{l}.mlp."
        s = torch.sigmoid(F.linear(xf, self.w(pre + "gate.weight")))
        with torch.no_grad():
            sel = s + self.bias[pre + "gate.e_score_correction_bias"]
            gs = sel.view(-1, G, E // G).topk(2, -1)[0].sum(-1)
            keep = torch.zeros_like(gs).scatter_(1, gs.topk(TG, -1)[1], 1.0)
            sel = sel.masked_fill(~keep.bool().repeat_interleave(E // G, 1), float("-inf"))
            idx = sel.topk(K, -1)[1]
        wts = s.gather(1, idx)
        wts = wts / (wts.sum(-1, keepdim=True) + 1e-20) * c["routed_scaling_factor"]
        y = torch.zeros_like(xf)
        for e in range(E):
            tok, slot = torch.where(idx == e)
            if tok.numel() == 0:
                continue
            y = y.index_add(0, tok, self.mlp(pre + f"experts.{e}.", xf[tok]) * wts[tok, slot, None])
        if c.get("n_shared_experts"):
            y = y + self.mlp(pre + "shared_experts.", xf)
        return y.view(B, T, H)

    def block(self, l, x, cos, sin):
        c = self.c
        eps = c["rms_norm_eps"]
        x = x + self.attn(l, rms(x, self.w(f"model.layers.{l}.input_layernorm.weight"), eps), cos, sin)
        h = rms(x, self.w(f"model.layers.{l}.post_attention_layernorm.weight"), eps)
        is_moe = l >= c["first_k_dense_replace"]
        return x + (self.moe(l, h) if is_moe else self.mlp(f"model.layers.{l}.mlp.", h))

    def forward(self, inputs, targets, mtp_lambda):
        c = self.c
        B, T = inputs.shape
        pos = torch.arange(T).float()
        ang = pos[:, None] * self.inv_freq[None, :]
        cos, sin = ang.cos(), ang.sin()
        embed, head = self.w("model.embed_tokens.weight"), self.w("lm_head.weight")
        x = F.embedding(inputs, embed)
        for l in range(c["num_hidden_layers"]):
            x = self.block(l, x, cos, sin)
        h = rms(x, self.w("model.norm.weight"), c["rms_norm_eps"])
        ce = F.cross_entropy(F.linear(h, head).view(-1, c["vocab_size"]), targets.reshape(-1))
        mtp = torch.zeros(())
        if mtp_lambda > 0 and c.get("num_nextn_predict_layers", 0) > 0:
            L, eps = c["num_hidden_layers"], c["rms_norm_eps"]
            pre = f"model.layers.{L}."
            e = rms(F.embedding(inputs[:, 1:], embed), self.w(pre + "enorm.weight"), eps)
            u = torch.cat((e, rms(h[:, :-1], self.w(pre + "hnorm.weight"), eps)), -1)
            xm = self.block(L, F.linear(u, self.w(pre + "eh_proj.weight")), cos[:T - 1], sin[:T - 1])
            hm = rms(xm, self.w(pre + "shared_head.norm.weight"), eps)
            mtp = F.cross_entropy(F.linear(hm, head).view(-1, c["vocab_size"]), targets[:, 1:].reshape(-1))
        return ce + mtp_lambda * mtp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mtp-lambda", type=float, default=0.3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = json.load(open(a.model + "/config.json"))
    model = Model(cfg, read_safetensors(a.model + "/model.safetensors"))
    ids = read_safetensors(a.ids)["input_ids"]
    inputs, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    first = last = None
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(inputs, targets, a.mtp_lambda)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if first is None:
            first = loss.item()
        last = loss.item()
    sec = (time.perf_counter() - t0) / a.steps
    B, T = inputs.shape
    print(json.dumps({"framework": f"pytorch {torch.__version__}", "threads": torch.get_num_threads(), "batch": B, "seq": T,
                      "tokens_per_s": round(B * T / sec, 1), "s_per_step": round(sec, 4), "first_loss": first, "last_loss": last}))


if __name__ == "__main__":
    main()
