// Hugging Face checkpoint names of the DeepSeek weights (docs/deepseek-architecture.md §2), as the architecture descriptor spells them
// (Architecture/DeepSeek.cs); kept for callers that name single tensors. V2 and V3 share every name.
using SharpSeek.Model.Architecture;

namespace SharpSeek.Model;

/// <summary>Checkpoint names of every weight (a facade over <see cref="ArchitectureDescriptor.DeepSeekV3"/>).</summary>
public static class TensorNames
{
    private static ArchitectureDescriptor A => ArchitectureDescriptor.DeepSeekV3;

    public static string Embed => A.HfName(TensorRole.Embed);
    public static string Norm => A.HfName(TensorRole.FinalNorm);
    public static string LmHead => A.HfName(TensorRole.LmHead);

    public static string Layer(int l) => A.HfLayerPrefix(l);

    public static string AttnNorm(int l) => A.HfName(TensorRole.AttnNorm, l);
    public static string FfnNorm(int l) => A.HfName(TensorRole.FfnNorm, l);
    public static string Wq(int l) => A.HfName(TensorRole.Wq, l);
    public static string WqA(int l) => A.HfName(TensorRole.WqA, l);
    public static string QNorm(int l) => A.HfName(TensorRole.QNorm, l);
    public static string WqB(int l) => A.HfName(TensorRole.WqB, l);
    public static string WkvA(int l) => A.HfName(TensorRole.WkvA, l);
    public static string KvNorm(int l) => A.HfName(TensorRole.KvNorm, l);
    public static string WkvB(int l) => A.HfName(TensorRole.WkvB, l);
    public static string Wo(int l) => A.HfName(TensorRole.Wo, l);

    public static string Router(int l) => A.HfName(TensorRole.Router, l);
    public static string RouterBias(int l) => A.HfName(TensorRole.RouterBias, l);

    // MTP module k is stored as layer L + k.
    public static string MtpEmbed(int l) => A.HfName(TensorRole.MtpEmbed, l);
    public static string MtpENorm(int l) => A.HfName(TensorRole.MtpENorm, l);
    public static string MtpHNorm(int l) => A.HfName(TensorRole.MtpHNorm, l);
    public static string MtpEhProj(int l) => A.HfName(TensorRole.MtpEhProj, l);
    public static string MtpHeadNorm(int l) => A.HfName(TensorRole.MtpHeadNorm, l);
    public static string MtpHead(int l) => A.HfName(TensorRole.MtpHead, l);

    /// <summary>Suffix of an FP8 weight's block-scale sibling.</summary>
    public static string ScaleSuffix => A.HfScaleSuffix;
}
