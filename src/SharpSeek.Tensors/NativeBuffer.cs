// Aligned native memory for weights converted at load (quantized, bf16): freed on Dispose, never moved by the GC.
using System.Runtime.InteropServices;

namespace SharpSeek.Tensors;

/// <summary>A block of 64-byte aligned native memory.</summary>
public sealed unsafe class NativeBuffer : IDisposable
{
    private void* _ptr;

    public NativeBuffer(long bytes)
    {
        if (bytes < 0)
            throw new ArgumentOutOfRangeException(nameof(bytes));
        Length = bytes;
        _ptr = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        NativeMemory.Clear(_ptr, (nuint)Math.Max(bytes, 1));
    }

    /// <summary>Size in bytes.</summary>
    public long Length { get; }

    /// <summary>The first byte.</summary>
    public byte* Pointer => _ptr != null ? (byte*)_ptr : throw new ObjectDisposedException(nameof(NativeBuffer));

    public void Dispose()
    {
        if (_ptr != null)
        {
            NativeMemory.AlignedFree(_ptr);
            _ptr = null;
        }
        GC.SuppressFinalize(this);
    }

    ~NativeBuffer() => Dispose();
}
