using SharpSeek.Tensors;

namespace SharpSeek.Tensors.Tests;

public sealed class WorkerPoolTests
{
    private sealed class Count(int n) : IChunkWork
    {
        public readonly int[] Hits = new int[n];

        public void Execute(int chunk) => Interlocked.Increment(ref Hits[chunk]);
    }

    [Fact]
    public void Every_chunk_runs_exactly_once_over_many_jobs()
    {
        using var pool = new WorkerPool(4);
        for (int job = 0; job < 5000; job++)
        {
            int n = 1 + job % 37;
            var w = new Count(n);
            pool.Run(n, w);
            Assert.All(w.Hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void Chunks_of_a_later_larger_job_never_run_twice_under_oversubscription()
    {
        // More threads than cores, so workers get preempted between seeing a job and claiming its chunks;
        // each job is larger than the one before it in pairs, the case where a late worker could take a
        // chunk of the next job with the previous job's ticket.
        using var pool = new WorkerPool(3 * Environment.ProcessorCount + 1);
        for (int job = 0; job < 20000; job++)
        {
            int n = job % 2 == 0 ? 2 : 2 + job % 29;
            var w = new Count(n);
            pool.Run(n, w);
            for (int c = 0; c < n; c++)
                Assert.True(w.Hits[c] == 1, $"job {job}: chunk {c} of {n} ran {w.Hits[c]} times");
        }
    }

    private sealed class Throws : IChunkWork
    {
        public void Execute(int chunk)
        {
            if (chunk == 3)
                throw new InvalidOperationException("boom");
        }
    }

    [Fact]
    public void A_failing_chunk_surfaces_and_the_pool_keeps_working()
    {
        using var pool = new WorkerPool(2);
        var e = Assert.Throws<AggregateException>(() => pool.Run(8, new Throws()));
        Assert.IsType<InvalidOperationException>(e.InnerException);
        var w = new Count(10);
        pool.Run(10, w);
        Assert.All(w.Hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void Sleeping_workers_wake_up()
    {
        using var pool = new WorkerPool(2);
        Thread.Sleep(WorkerPool.SpinTime * 3);
        var w = new Count(64);
        pool.Run(64, w);
        Assert.All(w.Hits, h => Assert.Equal(1, h));
    }
}
