// Per-thread scratch buffers of the kernels (packed GEMM operands, attention tiles): pinned, 64-byte aligned,
// grown on demand and kept for the thread's lifetime, so steady-state training allocates nothing.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpSeek.Training.Kernels;

/// <summary>Aligned per-thread float buffers.</summary>
internal static unsafe class Scratch
{
    [ThreadStatic] private static float[]? t_local, t_shared, t_packA, t_x, t_y;

    /// <summary>A buffer for work done on the calling thread alone (serial GEMM packing).</summary>
    public static float* Local(long n) => Get(ref t_local, n);

    /// <summary>A buffer the calling thread fills and its workers read (packed B of a parallel GEMM).</summary>
    public static float* Shared(long n) => Get(ref t_shared, n);

    /// <summary>The A blocks GEMMs pack on the calling thread.</summary>
    public static float* PackedA(long n) => Get(ref t_packA, n);

    /// <summary>Two more buffers for per-thread kernels that hold operands across GEMM calls (attention).</summary>
    public static float* X(long n) => Get(ref t_x, n);

    public static float* Y(long n) => Get(ref t_y, n);

    private static float* Get(ref float[]? arr, long n)
    {
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
