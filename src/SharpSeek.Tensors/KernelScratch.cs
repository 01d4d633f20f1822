// Per-thread scratch buffers of the kernels (packed GEMM operands, attention tiles): pinned, 64-byte aligned,
// grown on demand and kept for the thread's lifetime, so steady-state training allocates nothing.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpSeek.Tensors;

/// <summary>Uses of the per-thread buffers; a kernel holds a slot only while no callee uses the same one.</summary>
internal enum ScratchSlot
{
    /// <summary>B packed by a serial GEMM.</summary>
    PackB,
    /// <summary>B packed by the calling thread of a parallel GEMM and read by its workers.</summary>
    SharedB,
    /// <summary>A blocks packed by a GEMM.</summary>
    PackA,
    /// <summary>Attention: gathered and packed keys and values of one head.</summary>
    AttnPack,
    /// <summary>Attention: a block of scores or probabilities.</summary>
    AttnScores,
    /// <summary>Attention: a block of score gradients.</summary>
    AttnGrad,
    /// <summary>Attention: key gradients of one head.</summary>
    AttnKeyGrad,
    /// <summary>Row statistics and other small per-thread vectors.</summary>
    Small,
    /// <summary>Partial sums of a split reduction, filled by a parallel GEMM's workers.</summary>
    Partial,
    /// <summary>A block of a product's output computed transposed, before it is written into place.</summary>
    Output,
}

/// <summary>Aligned per-thread float buffers.</summary>
internal static unsafe class Scratch
{
    private const int Slots = 10;
    [ThreadStatic] private static float[]?[]? t_slots;

    /// <summary>At least <paramref name="n"/> floats of the calling thread's buffer for <paramref name="slot"/>.</summary>
    public static float* Get(ScratchSlot slot, long n)
    {
        float[]?[] slots = t_slots ??= new float[Slots][];
        ref float[]? arr = ref slots[(int)slot];
        if (arr is null || arr.Length < n + 16)
        {
            long size = Math.Max(n + 16, (arr?.Length ?? 0) * 3L / 2);
            if (size > Array.MaxLength)
                throw new OutOfMemoryException($"scratch buffer of {n} floats");
            arr = GC.AllocateUninitializedArray<float>((int)size, pinned: true);
        }
        float* p = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(arr));
        return (float*)(((nint)p + 63) & ~(nint)63);
    }
}
