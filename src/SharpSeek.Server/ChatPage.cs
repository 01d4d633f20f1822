// GET /: the chat page, one static HTML file embedded in the assembly (no CDN, no build step).
using System.Reflection;
using Microsoft.AspNetCore.Http;

namespace SharpSeek.Server;

internal static class ChatPage
{
    private static readonly byte[] Html = Load();

    public static async Task Write(HttpContext ctx)
    {
        ctx.Response.ContentType = "text/html; charset=utf-8";
        ctx.Response.Headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'";
        ctx.Response.Headers.CacheControl = "no-cache";
        await ctx.Response.Body.WriteAsync(Html, ctx.RequestAborted).ConfigureAwait(false);
    }

    private static byte[] Load()
    {
        using Stream s = Assembly.GetExecutingAssembly().GetManifestResourceStream("SharpSeek.Server.index.html")
                         ?? throw new InvalidOperationException("the chat page is missing from the assembly");
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }
}
