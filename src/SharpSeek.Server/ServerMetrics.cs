// GET /metrics in the Prometheus text format (version 0.0.4): requests by endpoint and status, tokens, the
// scheduler's queue, batch sizes and caches, time-to-first-token and request latency histograms, and the process's
// resident memory, GC heap and thread count (the load test reads these to show nothing leaks).
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using SharpSeek.Inference;

namespace SharpSeek.Server;

/// <summary>Counters and histograms of one server; thread-safe.</summary>
internal sealed class ServerMetrics
{
    private readonly ConcurrentDictionary<(string Endpoint, int Status), long> _requests = new();
    private readonly Histogram _ttft = new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
    private readonly Histogram _latency = new([0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]);
    private readonly Histogram _batch = new([1, 2, 4, 8, 16, 32, 64, 128]);
    private readonly Histogram _stepTokens = new([1, 4, 16, 64, 256, 1024]);
    private static readonly double[] StepBounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
    private readonly Histogram _stepSeconds = new(StepBounds), _forwardSeconds = new(StepBounds);
    private long _promptTokens, _completionTokens, _cachedTokens;

    public void Request(string endpoint, int status) => _requests.AddOrUpdate((endpoint, status), 1, static (_, n) => n + 1);

    public void Tokens(int prompt, int completion, int cached)
    {
        Interlocked.Add(ref _promptTokens, prompt);
        Interlocked.Add(ref _completionTokens, completion);
        Interlocked.Add(ref _cachedTokens, cached);
    }

    public void TimeToFirstToken(TimeSpan t) => _ttft.Observe(t.TotalSeconds);

    public void Latency(TimeSpan t) => _latency.Observe(t.TotalSeconds);

    public void Step(BatchStep s)
    {
        _batch.Observe(s.Sequences);
        _stepTokens.Observe(s.DecodeSlots + s.PrefillSlots);
        _stepSeconds.Observe(s.Seconds);
        _forwardSeconds.Observe(s.ForwardSeconds);
    }

    public string Render(BatchSchedulerStats st)
    {
        var sb = new StringBuilder();
        Header(sb, "sharpseek_requests_total", "counter", "HTTP requests by endpoint and status");
        foreach (KeyValuePair<(string Endpoint, int Status), long> kv in _requests.OrderBy(k => k.Key.Endpoint).ThenBy(k => k.Key.Status))
            sb.Append($"sharpseek_requests_total{{endpoint=\"{kv.Key.Endpoint}\",status=\"{kv.Key.Status}\"}} {kv.Value}\n");
        Counter(sb, "sharpseek_prompt_tokens_total", "Prompt tokens of finished generations", Interlocked.Read(ref _promptTokens));
        Counter(sb, "sharpseek_cached_prompt_tokens_total", "Prompt tokens reused from the prefix cache", Interlocked.Read(ref _cachedTokens));
        Counter(sb, "sharpseek_completion_tokens_total", "Tokens generated", Interlocked.Read(ref _completionTokens));
        Gauge(sb, "sharpseek_queue_depth", "Requests waiting for a place in the batch", st.Queued);
        Gauge(sb, "sharpseek_active_sequences", "Sequences prefilling or decoding", st.Active);
        Counter(sb, "sharpseek_scheduler_steps_total", "Batched forward steps", st.Steps);
        Counter(sb, "sharpseek_sequences_finished_total", "Sequences that ended with stop or length", st.Finished);
        Counter(sb, "sharpseek_sequences_cancelled_total", "Sequences cancelled (client gone or stopped)", st.Cancelled);
        Counter(sb, "sharpseek_sequences_failed_total", "Sequences that failed", st.Failed);
        Gauge(sb, "sharpseek_kv_caches", "Latent caches held by the scheduler (active, prefix cache, free)", st.Caches);
        Gauge(sb, "sharpseek_kv_caches_unaccounted", "Caches neither active, cached nor free (0 unless leaked)", st.CachesUnaccounted);
        Gauge(sb, "sharpseek_prefix_cache_entries", "Finished sequences kept for prefix reuse", st.PrefixEntries);
        Gauge(sb, "sharpseek_prefix_cache_bytes", "Bytes allocated by the prefix cache", st.PrefixBytes);
        _batch.Render(sb, "sharpseek_batch_sequences", "Sequences per batched forward step");
        _stepTokens.Render(sb, "sharpseek_batch_tokens", "Token slots per batched forward step");
        _stepSeconds.Render(sb, "sharpseek_step_seconds", "Wall time of a scheduler step (forward pass and sampling)");
        _forwardSeconds.Render(sb, "sharpseek_forward_seconds", "Wall time of a step's forward pass");
        _ttft.Render(sb, "sharpseek_time_to_first_token_seconds", "Time from request to first generated token");
        _latency.Render(sb, "sharpseek_request_duration_seconds", "Time from request to last generated token");
        using Process p = Process.GetCurrentProcess();
        Gauge(sb, "process_resident_memory_bytes", "Resident memory", p.WorkingSet64);
        Gauge(sb, "process_threads", "Operating-system threads of the process", p.Threads.Count);
        Gauge(sb, "dotnet_gc_heap_bytes", "Bytes in the managed heap", GC.GetTotalMemory(false));
        return sb.ToString();
    }

    private static void Header(StringBuilder sb, string name, string type, string help) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append("\n# TYPE ").Append(name).Append(' ').Append(type).Append('\n');

    private static void Counter(StringBuilder sb, string name, string help, long value)
    {
        Header(sb, name, "counter", help);
        sb.Append(name).Append(' ').Append(value).Append('\n');
    }

    private static void Gauge(StringBuilder sb, string name, string help, long value)
    {
        Header(sb, name, "gauge", help);
        sb.Append(name).Append(' ').Append(value).Append('\n');
    }

    /// <summary>A cumulative histogram with fixed upper bounds.</summary>
    private sealed class Histogram(double[] bounds)
    {
        private readonly long[] _counts = new long[bounds.Length + 1];
        private readonly object _lock = new();
        private double _sum;

        public void Observe(double v)
        {
            int i = 0;
            while (i < bounds.Length && v > bounds[i])
                i++;
            lock (_lock)
            {
                _counts[i]++;
                _sum += v;
            }
        }

        public void Render(StringBuilder sb, string name, string help)
        {
            long[] counts;
            double sum;
            lock (_lock)
            {
                counts = (long[])_counts.Clone();
                sum = _sum;
            }
            Header(sb, name, "histogram", help);
            long cum = 0;
            for (int i = 0; i < bounds.Length; i++)
            {
                cum += counts[i];
                sb.Append(name).Append("_bucket{le=\"").Append(bounds[i].ToString(CultureInfo.InvariantCulture)).Append("\"} ").Append(cum).Append('\n');
            }
            cum += counts[^1];
            sb.Append(name).Append("_bucket{le=\"+Inf\"} ").Append(cum).Append('\n');
            sb.Append(name).Append("_sum ").Append(sum.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
            sb.Append(name).Append("_count ").Append(cum).Append('\n');
        }
    }
}
