// A long-lived pinned float buffer with a 64-byte aligned pointer (packed operands kept across GEMM calls).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpSeek.Tensors;

/// <summary>Pinned, aligned storage of <see cref="Length"/> floats.</summary>
internal sealed unsafe class PinnedBuffer
{
    private readonly float[] _data;

    public PinnedBuffer(long length)
    {
        if (length + 16 > Array.MaxLength)
            throw new OutOfMemoryException($"buffer of {length} floats");
        _data = GC.AllocateUninitializedArray<float>((int)length + 16, pinned: true);
        Length = length;
        float* p = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_data));
        Pointer = (float*)(((nint)p + 63) & ~(nint)63);
    }

    public long Length { get; }

    /// <summary>The aligned start (valid while this object is alive).</summary>
    public float* Pointer { get; }
}
