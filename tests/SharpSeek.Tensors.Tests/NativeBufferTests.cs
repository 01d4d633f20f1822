// NativeBuffer: small buffers from the aligned allocator, large ones carved from shared 2 MiB-aligned chunks (huge
// pages where Linux grants them). Every buffer must be 64-byte aligned, zeroed, and its own: writes to one never show
// in another, whatever the order of allocation and disposal.
using SharpSeek.Tensors;

namespace SharpSeek.Tensors.Tests;

public sealed unsafe class NativeBufferTests
{
    [Fact]
    public void Buffers_are_aligned_zeroed_and_disjoint_across_chunks()
    {
        var rng = new Random(5);
        long[] sizes = [1, 1000, 256 << 10, (256 << 10) + 3, 1 << 20, 835_584, 40L << 20, 3 << 20, 700_001, 33L << 20];
        for (int round = 0; round < 3; round++)
        {
            var live = new List<(NativeBuffer Buf, byte Tag)>();
            for (int i = 0; i < 40; i++)
            {
                long n = sizes[rng.Next(sizes.Length)];
                var b = new NativeBuffer(n);
                Assert.Equal(0, (long)b.Pointer % 64);
                Assert.Equal(n, b.Length);
                Assert.Equal(0, b.Pointer[0]);
                Assert.Equal(0, b.Pointer[n - 1]);
                byte tag = (byte)(i + 1);
                new Span<byte>(b.Pointer, (int)Math.Min(n, int.MaxValue)).Fill(tag);
                live.Add((b, tag));
                if (rng.Next(3) == 0)
                {
                    int k = rng.Next(live.Count);
                    live[k].Buf.Dispose();
                    live.RemoveAt(k);
                }
            }
            foreach ((NativeBuffer b, byte tag) in live)
            {
                Assert.Equal(tag, b.Pointer[0]);
                Assert.Equal(tag, b.Pointer[b.Length / 2]);
                Assert.Equal(tag, b.Pointer[b.Length - 1]);
                b.Dispose();
            }
        }
        var d = new NativeBuffer(1 << 20);
        d.Dispose();
        Assert.Throws<ObjectDisposedException>(() => (long)d.Pointer);
    }
}
