// HorizontalSums.Sum16 / Sum8 / Sum4 (512-bit): every lane is the bits Vector512.Sum gives for its accumulator alone, so
// the kernels that reduce their accumulators together (bf16 Rows4 and TwoStreams, the fp32 tiles) agree with the one that
// sums each alone (Row1) and with what they gave before; the 256-bit Sum4 likewise with Vector256.Sum.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SharpSeek.Tensors;
using Xunit;

namespace SharpSeek.Tensors.Tests;

public class HorizontalSumsTests
{
    // magnitudes 2^-20 .. 2^20 and both signs: any other addition order rounds differently
    private static float[] Lanes(Random rng, int n)
    {
        var v = new float[n];
        for (int l = 0; l < n; l++)
            v[l] = (float)((rng.NextDouble() * 2 - 1) * Math.Pow(2, rng.Next(-20, 21)));
        return v;
    }

    [Fact]
    public void Sum16_Sum8_and_Sum4_give_each_lane_the_bits_of_Vector512_Sum()
    {
        if (!Avx512F.IsSupported)
            return; // the network is AVX-512 only; the kernels that use it run only there
        var rng = new Random(7);
        for (int trial = 0; trial < 2000; trial++)
        {
            var a = new Vector512<float>[16];
            for (int j = 0; j < 16; j++)
                a[j] = Vector512.Create(Lanes(rng, 16));
            Vector512<float> s = HorizontalSums.Sum16(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
            Vector128<float> s4 = HorizontalSums.Sum4(a[0], a[1], a[2], a[3]);
            Vector256<float> s8 = HorizontalSums.Sum8(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
            for (int j = 0; j < 16; j++)
            {
                float want = Vector512.Sum(a[j]);
                Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(s.GetElement(j)),
                    $"trial {trial}, accumulator {j}: Sum16 {s.GetElement(j)} vs Vector512.Sum {want}");
                if (j < 8)
                    Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(s8.GetElement(j)),
                        $"trial {trial}, accumulator {j}: Sum8 {s8.GetElement(j)} vs Vector512.Sum {want}");
                if (j < 4)
                    Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(s4.GetElement(j)),
                        $"trial {trial}, accumulator {j}: Sum4 {s4.GetElement(j)} vs Vector512.Sum {want}");
            }
        }
    }

    [Fact]
    public void Avx_Sum4_gives_each_lane_the_bits_of_Vector256_Sum()
    {
        if (!Avx.IsSupported)
            return;
        var rng = new Random(11);
        for (int trial = 0; trial < 2000; trial++)
        {
            var a = new Vector256<float>[4];
            for (int j = 0; j < 4; j++)
                a[j] = Vector256.Create(Lanes(rng, 8));
            Vector128<float> s = HorizontalSums.Sum4(a[0], a[1], a[2], a[3]);
            for (int j = 0; j < 4; j++)
            {
                float want = Vector256.Sum(a[j]);
                Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(s.GetElement(j)),
                    $"trial {trial}, accumulator {j}: Sum4 {s.GetElement(j)} vs Vector256.Sum {want}");
                Assert.True(BitConverter.SingleToInt32Bits(want) == BitConverter.SingleToInt32Bits(HorizontalSums.Sum1(a[j])),
                    $"trial {trial}, accumulator {j}: Sum1 vs Vector256.Sum {want}");
            }
        }
    }
}
