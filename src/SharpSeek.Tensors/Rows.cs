// Row-parallel loops without allocation: a job is a struct (its fields are the loop's operands) run over fixed blocks
// of rows, spread over a backend's workers. Blocks do not depend on the thread count, so a job that reduces within a
// block and then combines the blocks in order gives the same bits on any number of threads.

namespace SharpSeek.Tensors;

/// <summary>The body of a row-parallel loop: rows [r0, r1) of block <c>block</c>.</summary>
internal interface IRowJob
{
    void Run(int block, int r0, int r1);
}

/// <summary>Runs <see cref="IRowJob"/>s over blocks of rows.</summary>
internal static class Rows
{
    /// <summary>Blocks of <paramref name="block"/> rows covering <paramref name="n"/> rows.</summary>
    public static int Blocks(int n, int block) => (n + block - 1) / block;

    /// <summary>job.Run(b, b·block, min(n, (b+1)·block)) for every block b, on <paramref name="be"/>'s workers (null: in order here).</summary>
    public static void For<T>(ComputeBackend? be, int n, int block, in T job) where T : struct, IRowJob
    {
        if (n <= 0)
            return;
        int blocks = Blocks(n, block);
        if (be is null || blocks == 1 || be.Workers <= 1 || WorkerPool.InJob)
        {
            for (int b = 0; b < blocks; b++)
                job.Run(b, b * block, Math.Min(n, (b + 1) * block));
            return;
        }
        Runner<T>.Dispatch(be, n, block, blocks, job);
    }

    private sealed class Runner<T> where T : struct, IRowJob
    {
        [ThreadStatic] private static Runner<T>? t_runner;
        private readonly Action<int> _body;
        private T _job;
        private int _n, _block;
        private bool _busy;

        private Runner() => _body = Body;

        private void Body(int b) => _job.Run(b, b * _block, Math.Min(_n, (b + 1) * _block));

        public static void Dispatch(ComputeBackend be, int n, int block, int blocks, in T job)
        {
            Runner<T> r = t_runner ??= new Runner<T>();
            if (r._busy)
            {
                for (int b = 0; b < blocks; b++)
                    job.Run(b, b * block, Math.Min(n, (b + 1) * block));
                return;
            }
            r._busy = true;
            r._job = job;
            r._n = n;
            r._block = block;
            try
            {
                be.For(blocks, r._body);
            }
            finally
            {
                r._job = default;
                r._busy = false;
            }
        }
    }
}
