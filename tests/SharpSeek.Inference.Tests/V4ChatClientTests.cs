// The IChatClient over a DeepSeek-V4 model: a random V4 model (the deepseek4 fixture's shape with the tiny tokenizer's
// vocabulary of 1024) through V4Generator, V4's chat encoding, thinking on and off; garbage text, real counts.
using Microsoft.Extensions.AI;
using SharpSeek.Model.V4;
using SharpSeek.Tests;
using SharpSeek.Tokenizer;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace SharpSeek.Inference.Tests;

public sealed class V4ChatClientTests
{
    private static V4Weights Model()
    {
        V4Config c = V4Config.Load(Path.Combine(Fixtures.Root, "llama-cpp", "deepseek4")) with { VocabSize = 1024 };
        return V4Synthetic.Create(c, seed: 5);
    }

    private static BpeTokenizer Tokenizer() => BpeTokenizer.LoadFromDirectory(Path.Combine(AppContext.BaseDirectory, "TestData", "tiny-tokenizer"));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Chat_over_v4_streams_text_usage_and_reasoning(bool thinking)
    {
        using V4Weights w = Model();
        var generator = new V4Generator(new V4Transformer(w), Tokenizer());
        using var client = new SharpSeekChatClient(generator, defaults: new GenerationOptions { MaxTokens = 64, IgnoreEos = true })
        {
            RenderDefaults = new ChatRenderOptions { Thinking = thinking },
        };
        Assert.Equal(ChatTemplateKind.DeepSeekV4, client.Template.Kind);
        Assert.Null(client.Config);
        Assert.Equal("deepseek_v4", client.ModelType);
        AiChatMessage[] chat = [new(ChatRole.User, "What is a compressed cache?")];
        ChatResponse r = await client.GetResponseAsync(chat, new ChatOptions { Temperature = 0, MaxOutputTokens = 12 });
        int prompt = client.Tokenizer.Encode(client.RenderPrompt(chat)).Length;
        Assert.Equal(prompt, r.Usage!.InputTokenCount);
        Assert.Equal(12, r.Usage.OutputTokenCount);
        Assert.Equal(ChatFinishReason.Length, r.FinishReason);
        bool reasoning = r.Messages[0].Contents.OfType<TextReasoningContent>().Any();
        Assert.Equal(thinking, reasoning); // in thinking mode the prompt opens the think block: the reply starts in it
        Assert.Same(generator, client.GetService(typeof(V4Generator)));

        // the same request streamed gives the same tokens' text
        var streamed = new System.Text.StringBuilder();
        await foreach (ChatResponseUpdate u in client.GetStreamingResponseAsync(chat, new ChatOptions { Temperature = 0, MaxOutputTokens = 12 }))
        {
            foreach (AIContent content in u.Contents)
            {
                if (content is TextContent t)
                    streamed.Append(t.Text);
                else if (content is TextReasoningContent rc)
                    streamed.Append(rc.Text);
            }
        }
        string whole = string.Concat(r.Messages[0].Contents.Select(c => c is TextContent t ? t.Text : c is TextReasoningContent rc ? rc.Text : ""));
        Assert.Equal(whole, streamed.ToString());
    }
}
