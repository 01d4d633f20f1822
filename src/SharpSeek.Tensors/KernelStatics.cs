// The kernels read static tables in their inner loops: the fp16 -> fp32 table of block scales, shuffle masks, level
// tables, the worker pool's spin time. The JIT folds such a field into the code only when the class is already
// initialized at the time it compiles the method; otherwise it leaves an initialization check in the loop, a helper
// call around which the loop's vector accumulators are kept on the stack. Without tiered compilation (the CLI runs
// without it) a method is compiled once, at its first call, so which kernels got that check depended on the order in
// which a process happened to touch the classes: on an AVX2 machine, with a model converted to Q8_0 at load, the
// two-row two-token Q8_0 tile (the product of every batched decode step) was compiled with Half16's check and ran at
// a third of its speed. Initializing the classes when this assembly loads makes every kernel compile without them.
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace SharpSeek.Tensors;

internal static class KernelStatics
{
    /// <summary>Every class of this assembly with static fields initialized by code (a test keeps the list complete):
    /// tables first, then the classes whose initializers time kernels that read those tables.</summary>
    internal static readonly Type[] Types =
    [
        typeof(Half16), typeof(Fp8E4M3), typeof(Q4KVnni), typeof(Q6KMatrix), typeof(SmallBlockMatrix), typeof(Iq4XsMatrix),
        typeof(Mxfp4Matrix), typeof(Mxfp4SplitMatrix), typeof(WorkerPool), typeof(HugeChunk), typeof(ComputeBackend),
        typeof(Q4KInterleavedMatrix), typeof(Q6KInterleavedMatrix),
    ];

    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255", Justification = "runs the assembly's own class initializers before its kernels are compiled; see the file's comment")]
    internal static void Initialize()
    {
        foreach (Type t in Types)
            RuntimeHelpers.RunClassConstructor(t.TypeHandle);
    }
}
