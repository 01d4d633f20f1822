// Aligned native memory for weights converted at load (quantized, bf16): freed on Dispose, never moved by the GC.
// Buffers of 256 KiB and more are carved from 2 MiB-aligned chunks that Linux is asked to back with transparent huge
// pages (madvise MADV_HUGEPAGE): decode streams every weight once per token, and with 4 KiB pages each matrix is
// hundreds of TLB misses and prefetch streams that stop at every page.
using System.Runtime.InteropServices;

namespace SharpSeek.Tensors;

/// <summary>A block of 64-byte aligned native memory.</summary>
public sealed unsafe class NativeBuffer : IDisposable
{
    private void* _ptr;
    private readonly HugeChunk? _chunk;

    public NativeBuffer(long bytes)
    {
        if (bytes < 0)
            throw new ArgumentOutOfRangeException(nameof(bytes));
        Length = bytes;
        if (bytes >= HugeChunk.MinBytes)
        {
            (nint p, _chunk) = HugeChunk.Allocate(bytes);
            _ptr = (void*)p;
        }
        else
            _ptr = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        NativeMemory.Clear(_ptr, (nuint)Math.Max(bytes, 1));
        // buffers nobody disposes (latent cache blocks of a dropped cache) are freed by the finalizer: telling the GC
        // what they hold makes it collect before native memory piles up
        if (bytes > 0)
            GC.AddMemoryPressure(bytes);
    }

    /// <summary>Size in bytes.</summary>
    public long Length { get; }

    /// <summary>The first byte.</summary>
    public byte* Pointer => _ptr != null ? (byte*)_ptr : throw new ObjectDisposedException(nameof(NativeBuffer));

    public void Dispose()
    {
        if (_ptr != null)
        {
            if (_chunk is null)
                NativeMemory.AlignedFree(_ptr);
            else
                _chunk.Release();
            _ptr = null;
            if (Length > 0)
                GC.RemoveMemoryPressure(Length);
        }
        GC.SuppressFinalize(this);
    }

    ~NativeBuffer() => Dispose();
}

/// <summary>
/// A 2 MiB-aligned region that buffers are carved from in order (64-byte aligned); freed when the last of them is.
/// Buffers up to half a chunk share the current chunk; larger ones get a chunk of their own.
/// </summary>
internal sealed unsafe class HugeChunk
{
    public const long MinBytes = 256 << 10;
    private const long ChunkBytes = 64L << 20, Page = 2L << 20;
    private static readonly object s_gate = new();
    private static HugeChunk? s_current;
    private static bool s_madvise = true;

    private readonly byte* _base;
    private readonly long _size;
    private long _used;
    private int _live;

    private HugeChunk(long size)
    {
        _size = (size + Page - 1) / Page * Page;
        _base = (byte*)NativeMemory.AlignedAlloc((nuint)_size, (nuint)Page);
        if (OperatingSystem.IsLinux() && s_madvise)
        {
            try
            {
                _ = madvise(_base, (nuint)_size, MadvHugePage); // a hint: where THP is off it is refused and nothing changes
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                s_madvise = false;
            }
        }
    }

    /// <summary>A 64-byte aligned block of <paramref name="bytes"/> and the chunk that holds it.</summary>
    public static (nint Pointer, HugeChunk Chunk) Allocate(long bytes)
    {
        lock (s_gate)
        {
            HugeChunk chunk;
            if (bytes > ChunkBytes / 2)
            {
                chunk = new HugeChunk(bytes);
            }
            else
            {
                if (s_current is { _live: 0 })
                    s_current._used = 0; // every buffer of it is gone: start over
                if (s_current is null || s_current._used + bytes > s_current._size)
                    s_current = new HugeChunk(ChunkBytes); // the old one is freed with its last buffer
                chunk = s_current;
            }
            nint p = (nint)(chunk._base + chunk._used);
            chunk._used = (chunk._used + bytes + 63) & ~63L;
            chunk._live++;
            return (p, chunk);
        }
    }

    /// <summary>One buffer of this chunk is gone; the last frees the chunk (the current one stays for the next buffers).</summary>
    public void Release()
    {
        lock (s_gate)
        {
            if (--_live == 0 && this != s_current)
                Free();
        }
    }

    private void Free() => NativeMemory.AlignedFree(_base);

    private const int MadvHugePage = 14;

    [DllImport("libc", EntryPoint = "madvise")]
    private static extern int madvise(void* addr, nuint length, int advice);
}
