// The OpenAI-compatible HTTP server (ASP.NET Core minimal APIs on Kestrel): one BatchScheduler owns the model and every
// request is a sequence in its continuous batch. Endpoints: POST /v1/chat/completions, POST /v1/completions,
// GET /v1/models[/{id}], GET /health, GET /metrics, GET / (the chat page). Errors are OpenAI error objects with
// their status (400, 401, 404, 405, 413, 503, 500); an API key guards every endpoint but /health and the page.
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharpSeek.Inference;
using SharpSeek.Tokenizer;

namespace SharpSeek.Server;

/// <summary>
/// Serves a loaded model over HTTP with the OpenAI API. Create it over a <see cref="ModelSession"/> with a tokenizer,
/// <see cref="StartAsync"/>, and dispose it to stop (the session stays the caller's).
/// </summary>
public sealed class SharpSeekServer : IAsyncDisposable
{
    private static readonly string[] KnownPaths = ["/", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions"];
    private readonly WebApplication _app;
    private readonly byte[]? _apiKey;

    private SharpSeekServer(ModelSession session, ServerOptions options, ILoggerProvider? logger)
    {
        Session = session;
        Options = options;
        Tokenizer = session.Tokenizer!;
        Template = session.Template!;
        ModelId = options.ModelId ?? session.ModelId;
        _apiKey = options.ApiKey is null ? null : Encoding.UTF8.GetBytes(options.ApiKey);
        Metrics = new ServerMetrics();
        BatchSchedulerOptions batching = options.Batching with { StepCompleted = Metrics.Step };
        Scheduler = new BatchScheduler(session.CreateTransformer(), session.Tokenizer, batching);
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = "SharpSeek.Server",
            ContentRootPath = AppContext.BaseDirectory,
            Args = [],
        });
        builder.Logging.ClearProviders();
        if (logger is not null)
            builder.Logging.AddProvider(logger);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.Listen(ParseHost(options.Host), options.Port);
        });
        _app = builder.Build();
        _app.Use(Guard);
        _app.MapGet("/", ChatPage.Write);
        _app.MapGet("/health", (HttpContext ctx) => Json(ctx, new HealthJson("ok", ModelId, Scheduler.Stats.Active, Scheduler.Stats.Queued), OpenAiJsonContext.Api.HealthJson));
        _app.MapGet("/metrics", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await ctx.Response.WriteAsync(Metrics.Render(Scheduler.Stats), ctx.RequestAborted);
        });
        _app.MapGet("/v1/models", (HttpContext ctx) => Json(ctx, new ModelList("list", [Model()]), OpenAiJsonContext.Api.ModelList));
        _app.MapGet("/v1/models/{id}", (HttpContext ctx, string id) =>
        {
            CheckModel(id);
            return Json(ctx, Model(), OpenAiJsonContext.Api.ModelJson);
        });
        _app.MapPost("/v1/chat/completions", (HttpContext ctx) => ChatCompletions.Handle(ctx, this));
        _app.MapPost("/v1/completions", (HttpContext ctx) => TextCompletions.Handle(ctx, this));
    }

    /// <summary>The model served.</summary>
    public ModelSession Session { get; }

    /// <summary>The options in force.</summary>
    public ServerOptions Options { get; }

    /// <summary>The model id of <c>/v1/models</c>.</summary>
    public string ModelId { get; }

    /// <summary>The scheduler that runs every request (its counters show queue, batch and caches).</summary>
    public BatchScheduler Scheduler { get; }

    /// <summary>The base address, e.g. http://127.0.0.1:8080 (set by <see cref="StartAsync"/>).</summary>
    public string Url { get; private set; } = "";

    internal BpeTokenizer Tokenizer { get; }

    internal ChatTemplate Template { get; }

    internal ServerMetrics Metrics { get; }

    internal long Created { get; }

    /// <summary>Builds a server over <paramref name="session"/> (which needs a tokenizer); nothing listens before <see cref="StartAsync"/>.</summary>
    /// <param name="logger">Where warnings and errors go (none when null).</param>
    /// <exception cref="ArgumentException">An option is out of range, or the session has no tokenizer.</exception>
    public static SharpSeekServer Create(ModelSession session, ServerOptions? options = null, ILoggerProvider? logger = null)
    {
        ArgumentNullException.ThrowIfNull(session);
        options ??= new ServerOptions();
        options.Validate();
        if (session.Tokenizer is null || session.Template is null)
            throw new ArgumentException($"{session.Path}: serving needs the model's tokenizer");
        session.Template.IsThinking(options.RenderDefaults); // a default thinking mode the template has no toggle for
        return new SharpSeekServer(session, options, logger);
    }

    /// <summary>Binds and starts listening; <see cref="Url"/> is then the address.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
        string address = _app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        Url = address.TrimEnd('/');
    }

    /// <summary>Waits until the host stops (Ctrl+C or SIGTERM).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops listening, then the scheduler (requests still running end).</summary>
    public async ValueTask DisposeAsync()
    {
        Scheduler.Dispose();
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    internal void CheckModel(string? model)
    {
        if (model is not null && model != ModelId)
            throw new ApiException(404, $"The model '{model}' does not exist; this server serves '{ModelId}'", param: "model", code: "model_not_found");
    }

    /// <summary>Submits to the scheduler, mapping its refusals to HTTP errors.</summary>
    internal ScheduledGeneration Submit(int[] prompt, GenerationOptions options, CancellationToken ct)
    {
        try
        {
            return Scheduler.Submit(prompt, options, ct);
        }
        catch (SchedulerFullException e)
        {
            throw new ApiException(503, e.Message, "server_error", code: "queue_full");
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message);
        }
    }

    /// <summary>Generation options for a prompt of <paramref name="promptTokens"/>: max tokens checked against the context.</summary>
    internal GenerationOptions Generation(GenerationRequest r, int promptTokens)
    {
        int ctx = Scheduler.ContextLength, room = ctx - promptTokens;
        if (room < 1)
            throw ApiException.BadRequest($"the prompt has {promptTokens} tokens; the model's context is {ctx} tokens", "messages", "context_length_exceeded");
        if (r.MaxTokens > room)
            throw ApiException.BadRequest($"max_tokens is {r.MaxTokens} but the prompt has {promptTokens} tokens and the context {ctx}: at most {room} tokens can be generated",
                                          "max_tokens", "context_length_exceeded");
        return new GenerationOptions { MaxTokens = r.MaxTokens ?? room, Sampling = r.Sampling, StopStrings = r.Stop };
    }

    /// <summary>Reads the body as JSON (400 when it is not JSON or not UTF-8, 413 past the size limit).</summary>
    internal static async Task<JsonDocument> ReadJson(HttpContext ctx)
    {
        try
        {
            return await JsonDocument.ParseAsync(ctx.Request.Body, default, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"the request body is not valid JSON: {e.Message}");
        }
        catch (ArgumentException e) // invalid UTF-8 in some positions
        {
            throw ApiException.BadRequest($"the request body is not valid UTF-8 JSON: {e.Message}");
        }
    }

    /// <summary>Parses a request; a string that is not valid text (invalid UTF-8 or an unpaired surrogate escape, found
    /// only when System.Text.Json reads it) is a 400.</summary>
    internal static T Parse<T>(JsonDocument doc, Func<JsonElement, T> parse)
    {
        try
        {
            return parse(doc.RootElement);
        }
        catch (InvalidOperationException e) when (e.InnerException is DecoderFallbackException or ArgumentException
                                                  || e.TargetSite?.DeclaringType?.Assembly == typeof(JsonDocument).Assembly)
        {
            throw ApiException.BadRequest($"the request body has a string that is not valid text: {e.Message}");
        }
    }

    internal static async Task Json<T>(HttpContext ctx, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info, int status = 200)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, info, ctx.RequestAborted).ConfigureAwait(false);
    }

    internal static Task WriteError(HttpContext ctx, ApiException e)
    {
        if (e.Status == 401)
            ctx.Response.Headers.WWWAuthenticate = "Bearer";
        if (e.Status == 503)
            ctx.Response.Headers.RetryAfter = "1";
        return Json(ctx, new ErrorBody(new ErrorDetail(e.Message, e.Type, e.Param, e.Code)), OpenAiJsonContext.Api.ErrorBody, e.Status);
    }

    private ModelJson Model() => new(ModelId, "model", Created, "sharpseek");

    // Outermost middleware: API key, errors as OpenAI error objects, request metrics.
    private async Task Guard(HttpContext ctx, RequestDelegate next)
    {
        long start = Stopwatch.GetTimestamp();
        string path = ctx.Request.Path.Value ?? "/";
        string endpoint = KnownPaths.Contains(path) ? path : path.StartsWith("/v1/models/", StringComparison.Ordinal) ? "/v1/models/{id}" : "other";
        try
        {
            if (_apiKey is not null && path is not ("/health" or "/"))
                Authorize(ctx);
            await next(ctx).ConfigureAwait(false);
            if (!ctx.Response.HasStarted && ctx.Response.StatusCode == 404)
                throw new ApiException(404, $"no endpoint {ctx.Request.Method} {path}", code: "not_found");
            if (!ctx.Response.HasStarted && ctx.Response.StatusCode == 405)
                throw new ApiException(405, $"{ctx.Request.Method} is not allowed on {path}", code: "method_not_allowed");
        }
        catch (ApiException e) when (!ctx.Response.HasStarted)
        {
            await WriteError(ctx, e).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (!ctx.Response.HasStarted)
        {
            string message = e.StatusCode == 413 ? $"the request body is larger than the limit of {Options.MaxRequestBodyBytes} bytes" : e.Message;
            await WriteError(ctx, new ApiException(e.StatusCode, message, code: e.StatusCode == 413 ? "request_too_large" : null)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            ctx.Response.StatusCode = 499; // the client went away (nginx's code); only the metrics see it
        }
        catch (Exception e) when (!ctx.Response.HasStarted)
        {
            _app.Logger.LogError(e, "{Method} {Path} failed", ctx.Request.Method, path);
            await WriteError(ctx, new ApiException(500, "internal server error: " + e.Message, "server_error")).ConfigureAwait(false);
        }
        finally
        {
            Metrics.Request(endpoint, ctx.Response.StatusCode);
        }
    }

    private void Authorize(HttpContext ctx)
    {
        string? header = ctx.Request.Headers.Authorization;
        const string Bearer = "Bearer ";
        if (header is null || !header.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
            throw new ApiException(401, "missing API key: send 'Authorization: Bearer KEY'", code: "invalid_api_key");
        byte[] given = Encoding.UTF8.GetBytes(header[Bearer.Length..].Trim());
        if (!CryptographicOperations.FixedTimeEquals(given, _apiKey))
            throw new ApiException(401, "incorrect API key", code: "invalid_api_key");
    }

    private static IPAddress ParseHost(string host)
    {
        if (host == "localhost")
            return IPAddress.Loopback;
        return IPAddress.TryParse(host, out IPAddress? ip) ? ip
            : throw new ArgumentException($"host must be an IP address (127.0.0.1, 0.0.0.0, ::) or localhost, got '{host}'");
    }
}
