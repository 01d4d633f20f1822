using System.Reflection;
using SharpSeek.Tensors;

namespace SharpSeek.Tensors.Tests;

public class KernelStaticsTests
{
    [Fact]
    public void Every_class_with_a_static_initializer_is_initialized_when_the_assembly_loads()
    {
        // a class left out would have its initialization check compiled into the loops of kernels that read it
        Type[] withInitializer = typeof(Half16).Assembly.GetTypes()
            .Where(t => t.TypeInitializer != null && !t.Name.Contains('<') && !t.ContainsGenericParameters && t != typeof(KernelStatics))
            .OrderBy(t => t.FullName).ToArray();
        Type[] missing = withInitializer.Except(KernelStatics.Types).ToArray();
        Assert.True(missing.Length == 0, "not in KernelStatics.Types: " + string.Join(", ", missing.Select(t => t.FullName)));
        Assert.Equal(KernelStatics.Types.Length, KernelStatics.Types.Distinct().Count());
    }
}
