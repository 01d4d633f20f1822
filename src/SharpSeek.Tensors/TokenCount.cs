// Token counts as types: a multi-token kernel generic over one is compiled once per count, with only the accumulators
// that count uses (Rows4 of WeightMatrix and Bf16Avx2, PanelKernels' fp32 tiles, Q4KInterleavedMatrix.GroupTokens).
namespace SharpSeek.Tensors;

internal interface ITokenCount
{
    static abstract int N { get; }
}

internal struct Tokens1 : ITokenCount { public static int N => 1; }

internal struct Tokens2 : ITokenCount { public static int N => 2; }

internal struct Tokens3 : ITokenCount { public static int N => 3; }

internal struct Tokens4 : ITokenCount { public static int N => 4; }

internal struct Tokens5 : ITokenCount { public static int N => 5; }

internal struct Tokens6 : ITokenCount { public static int N => 6; }
