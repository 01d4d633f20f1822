// A persistent pool of worker threads for the kernels' outer loops (Llm.cs Parallization.cs, llama.cpp
// ggml_graph_compute threads): no per-call task or delegate allocation. The caller publishes one job
// (an IChunkWork and a chunk count), every thread (the caller included) claims chunks with an interlocked
// counter, and the caller returns when all chunks are done. Workers spin briefly between jobs (decode issues
// hundreds of small jobs per token), then sleep on an event.
using System.Diagnostics;

namespace SharpSeek.Tensors;

/// <summary>A unit of parallel work split into chunks.</summary>
public interface IChunkWork
{
    /// <summary>Runs chunk <paramref name="chunk"/>; chunks run concurrently on different threads.</summary>
    void Execute(int chunk);
}

/// <summary>Runs <see cref="IChunkWork"/> jobs on a fixed set of threads.</summary>
public sealed class WorkerPool : IDisposable
{
    private readonly Thread[] _threads;
    private readonly ManualResetEventSlim _wake = new(false);
    private readonly object _dispatch = new();
    private IChunkWork? _work;
    private int _chunks;
    private long _ticket;   // (job id << 32) | next chunk: a claim only succeeds for the job it was meant for
    private int _done;
    private long _generation;
    private volatile bool _stopping;
    private int _sleeping;
    private Exception? _error;

    [ThreadStatic] private static bool t_inJob;

    /// <summary>True on a thread that is running a chunk; kernels then run inline instead of dispatching again.</summary>
    public static bool InJob => t_inJob;

    /// <summary>Creates a pool of <paramref name="threads"/> threads in total (the calling thread is one of them).</summary>
    public WorkerPool(int threads)
    {
        if (threads < 1)
            throw new ArgumentOutOfRangeException(nameof(threads), "need at least one thread");
        Threads = threads;
        _threads = new Thread[threads - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            _threads[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"sharpseek-worker-{i + 1}" };
            _threads[i].Start();
        }
    }

    /// <summary>Threads taking part in a job, the caller included.</summary>
    public int Threads { get; }

    private const int TightPolls = 4096;

    /// <summary>How long an idle worker spins before it sleeps.</summary>
    public static TimeSpan SpinTime { get; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Runs work.Execute(c) for every c in [0, chunks) and returns when all have finished.</summary>
    public void Run(int chunks, IChunkWork work)
    {
        if (chunks <= 0)
            return;
        if (Threads == 1 || chunks == 1 || t_inJob)
        {
            for (int c = 0; c < chunks; c++)
                work.Execute(c);
            return;
        }
        lock (_dispatch) // one job at a time; nested Run calls from inside a job run inline
        {
            long job = _generation + 1;
            // Close the ticket under the new job id before the new work and count are visible: a worker still
            // draining the previous job may read them, but its claim then fails on the job id. (Publishing the
            // count first let a late worker take chunk k of a larger next job with the old ticket, k being the
            // old job's count, and that chunk ran twice.)
            Interlocked.Exchange(ref _ticket, (job << 32) | int.MaxValue);
            Volatile.Write(ref _work, work);
            Volatile.Write(ref _chunks, chunks);
            _done = 0;
            _error = null;
            Volatile.Write(ref _ticket, job << 32);
            Interlocked.Exchange(ref _generation, job);
            if (Volatile.Read(ref _sleeping) > 0)
                _wake.Set();
            Drain(job, work, chunks);
            // the last chunks usually finish within microseconds: poll tightly (a backing-off wait overshot by about
            // half a microsecond per job, and decode runs ~140 jobs per token), then back off and yield, so that a
            // preempted worker on an oversubscribed machine gets the core
            var spin = new SpinWait();
            for (int polls = 0; Volatile.Read(ref _done) < chunks; polls++)
            {
                if (polls < TightPolls)
                    Thread.SpinWait(1);
                else
                    spin.SpinOnce(-1);
            }
            _work = null;
            if (_error is { } e)
                throw new AggregateException("a parallel kernel failed", e);
        }
    }

    private void Drain(long job, IChunkWork work, int chunks)
    {
        while (true)
        {
            long t = Volatile.Read(ref _ticket);
            if (t >> 32 != job || (int)t >= chunks)
                return;
            if (Interlocked.CompareExchange(ref _ticket, t + 1, t) != t)
                continue;
            int c = (int)t;
            bool outer = t_inJob;
            t_inJob = true;
            try
            {
                work.Execute(c);
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
            finally
            {
                t_inJob = outer;
            }
            Interlocked.Increment(ref _done);
        }
    }

    private void WorkerLoop()
    {
        long seen = 0;
        var idle = new Stopwatch();
        while (!_stopping)
        {
            long gen = Volatile.Read(ref _generation);
            if (gen != seen)
            {
                seen = gen;
                // Read before the ticket (Drain's first read), so that work and count newer than gen come with
                // a ticket of a newer job too.
                IChunkWork? work = Volatile.Read(ref _work);
                int chunks = Volatile.Read(ref _chunks);
                if (work is not null)
                    Drain(gen, work, chunks);
                idle.Restart();
                continue;
            }
            if (idle.Elapsed < SpinTime)
            {
                Thread.SpinWait(1); // one pause between polls: a job is seen within tens of nanoseconds
                continue;
            }
            Interlocked.Increment(ref _sleeping);
            if (Volatile.Read(ref _generation) == seen && !_stopping)
                _wake.Wait(50);
            Interlocked.Decrement(ref _sleeping);
            _wake.Reset();
            idle.Restart();
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        foreach (Thread t in _threads)
            t.Join();
        _wake.Dispose();
    }
}
