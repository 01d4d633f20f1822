// sharpseek inspect: architecture, parameter counts, KV-cache bytes and FLOPs per token from config.json alone
// (no weights), or with --cost the training cost (CostView).
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SharpSeek.Model;

namespace SharpSeek.Cli;

internal static class InspectCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model directory or config.json (weights not needed)", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var context = new Option<int>("--context") { Description = "Context length for the attention FLOPs figure", DefaultValueFactory = _ => 4096 };
        var cost = new CostView.Options();
        var cmd = new Command("inspect", "Architecture, parameter counts, KV-cache and FLOPs per token; --cost: training cost") { model, json, context };
        foreach (Option o in cost.All)
            cmd.Options.Add(o);
        cmd.SetAction(pr =>
        {
            string path = pr.GetValue(model)!;
            if (V4Inspect.IsV4(path))
            {
                if (pr.GetValue(cost.Cost))
                    throw new UserInputException("--cost does not cover DeepSeek-V4 models yet");
                return V4Inspect.Print(path, pr.GetValue(context), pr.GetValue(json));
            }
            ModelConfig c = ModelConfig.Load(path);
            if (pr.GetValue(cost.Cost))
                return CostView.Print(c, cost, pr, pr.GetValue(json));
            ModelStats s = ModelStats.Compute(c);
            int ctx = pr.GetValue(context);
            if (ctx < 0)
                throw new UserInputException($"--context must be >= 0, got {ctx}");
            long flopsAtCtx = s.FlopsPerToken + s.AttentionFlopsPerContextToken * ctx;
            if (pr.GetValue(json))
            {
                var o = new Dictionary<string, object?>
                {
                    ["model_type"] = c.ModelType,
                    ["layers"] = c.NumHiddenLayers,
                    ["moe_layers"] = s.MoeLayers,
                    ["hidden_size"] = c.HiddenSize,
                    ["heads"] = c.NumAttentionHeads,
                    ["routed_experts"] = c.NRoutedExperts,
                    ["experts_per_token"] = c.NumExpertsPerTok,
                    ["shared_experts"] = c.NSharedExperts,
                    ["parameters_total"] = s.ParametersTotal,
                    ["parameters_active"] = s.ParametersActive,
                    ["mtp_parameters"] = s.MtpParameters,
                    ["routed_expert_parameters"] = s.RoutedExpertParameters,
                    ["embedding_parameters"] = s.EmbeddingParameters,
                    ["kv_cache_bytes_per_token"] = s.KvCacheBytesPerToken,
                    ["kv_cache_bytes_per_token_mha"] = s.KvCacheBytesPerTokenMha,
                    ["kv_cache_values_per_token_per_layer"] = c.LatentDim,
                    ["flops_per_token"] = s.FlopsPerToken,
                    ["attention_flops_per_context_token"] = s.AttentionFlopsPerContextToken,
                    ["context"] = ctx,
                    ["flops_per_token_at_context"] = flopsAtCtx,
                    ["softmax_scale"] = c.SoftmaxScale,
                };
                if (c.GetAttentionVariant() is { } variant)
                {
                    o["attention_variant"] = variant.Settings;
                    o["attention_variant_parameters"] = s.AttentionVariantParameters;
                    o["attention_variant_share_of_parameters"] = (double)s.AttentionVariantParameters / s.ParametersTotal;
                    o["attention_variant_cache_bytes_per_token"] = s.VariantCacheBytesPerToken;
                    o["cache_bytes_per_token"] = s.KvCacheBytesPerToken + s.VariantCacheBytesPerToken;
                }
                Console.WriteLine(JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }
            var inv = CultureInfo.InvariantCulture;
            string B(double v) => v >= 1e9 ? (v / 1e9).ToString("0.00", inv) + "B" : v >= 1e6 ? (v / 1e6).ToString("0.00", inv) + "M" : v.ToString("N0", inv);
            Console.WriteLine($"model_type         {c.ModelType}");
            Console.WriteLine($"layers             {c.NumHiddenLayers} ({c.NumHiddenLayers - s.MoeLayers} dense, {s.MoeLayers} MoE) + {c.NumNextnPredictLayers} MTP");
            Console.WriteLine($"hidden / heads     {c.HiddenSize} / {c.NumAttentionHeads} (nope {c.QkNopeHeadDim}, rope {c.QkRopeHeadDim}, v {c.VHeadDim})");
            Console.WriteLine($"MLA                q_lora {(c.QLoraRank > 0 ? c.QLoraRank.ToString(inv) : "none")}, kv_lora {c.KvLoraRank}, softmax scale {c.SoftmaxScale.ToString("0.0000000", inv)}");
            Console.WriteLine($"RoPE               {c.Rope.Type} theta {c.Rope.Theta.ToString(inv)}" + (c.Rope.Type == RopeType.Yarn ? $" factor {c.Rope.Factor.ToString(inv)} orig {c.Rope.OriginalMaxPositions}" : ""));
            Console.WriteLine($"MoE                {c.NRoutedExperts} routed (top {c.NumExpertsPerTok}) + {c.NSharedExperts} shared, {c.TopkMethod}, {c.ScoringFunc}, groups {c.NGroup}/{c.TopkGroup}");
            Console.WriteLine($"parameters         {s.ParametersTotal.ToString("N0", inv)} total ({B(s.ParametersTotal)}), {s.ParametersActive.ToString("N0", inv)} active per token ({B(s.ParametersActive)})");
            Console.WriteLine($"MTP parameters     {s.MtpParameters.ToString("N0", inv)}");
            Console.WriteLine($"KV cache / token   {s.KvCacheBytesPerToken.ToString("N0", inv)} bytes MLA latent (bf16) vs {s.KvCacheBytesPerTokenMha.ToString("N0", inv)} multi-head ({(double)s.KvCacheBytesPerTokenMha / s.KvCacheBytesPerToken:0.0}x)");
            if (c.GetAttentionVariant() is { } v)
            {
                Console.WriteLine($"attention variant  {v.Description}");
                Console.WriteLine($"                   {s.AttentionVariantParameters.ToString("N0", inv)} parameters ({(100.0 * s.AttentionVariantParameters / s.ParametersTotal).ToString("0.00", inv)}% of total), caches {s.VariantCacheBytesPerToken.ToString("N0", inv)} bytes/token; with the latent {(s.KvCacheBytesPerToken + s.VariantCacheBytesPerToken).ToString("N0", inv)} bytes/token");
            }
            Console.WriteLine($"FLOPs / token      {B(s.FlopsPerToken)} in weights + {B(s.AttentionFlopsPerContextToken)} per context token = {B(flopsAtCtx)} at {ctx} tokens");
            if (c.Quantization is { } q)
                Console.WriteLine($"quantization       {q.Method} {q.Format} blocks {q.BlockRows}x{q.BlockCols}");
            return 0;
        });
        return cmd;
    }
}
