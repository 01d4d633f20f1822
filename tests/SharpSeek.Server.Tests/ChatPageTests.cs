// The chat page at / in a real headless Chromium (Debian's chromium and chromium-driver, through Selenium WebDriver):
// type a message, see the streamed answer (the chain model's known text), reasoning in its collapsible block, tokens/s
// (3 text tokens + EOS).
// Skipped, with the reason in the test results, when the browser is not installed.
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;

namespace SharpSeek.Server.Tests;

public class ChatPageTests
{
    internal const string Chromium = "/usr/bin/chromium", Driver = "/usr/bin/chromedriver";

    /// <summary>The server's page in a headless Chromium, its model name shown (the page has loaded).</summary>
    private sealed class Page : IDisposable
    {
        private readonly ChromeDriverService _service;

        private Page(ChromeDriverService service, ChromeDriver browser)
        {
            _service = service;
            Browser = browser;
            Wait = new WebDriverWait(browser, TimeSpan.FromSeconds(30));
        }

        public ChromeDriver Browser { get; }

        public WebDriverWait Wait { get; }

        public static Page Open(TestServer s)
        {
            var options = new ChromeOptions { BinaryLocation = Chromium };
            options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage");
            ChromeDriverService service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Driver)!, Path.GetFileName(Driver));
            service.HideCommandPromptWindow = true;
            Page? page = null;
            try
            {
                page = new Page(service, new ChromeDriver(service, options, TimeSpan.FromSeconds(60)));
                page.Browser.Navigate().GoToUrl(s.Url + "/");
                page.Wait.Until(b => b.FindElement(By.Id("model")).Text == s.Server.ModelId);
                return page;
            }
            catch
            {
                if (page is null)
                    service.Dispose();
                else
                    page.Dispose();
                throw;
            }
        }

        public void Dispose()
        {
            Browser.Dispose();
            _service.Dispose();
        }
    }

    [Fact]
    public async Task PageIsOneStaticFile()
    {
        await using TestServer s = await TestServer.Start();
        using HttpResponseMessage r = await s.Http.GetAsync("");
        Assert.Equal("text/html", r.Content.Headers.ContentType?.MediaType);
        string html = await r.Content.ReadAsStringAsync();
        Assert.Contains("/v1/chat/completions", html);
        Assert.DoesNotContain("http://", html);  // nothing from elsewhere (no CDN)
        Assert.DoesNotContain("https://", html);
    }

    [ChromiumFact]
    public async Task TypeAMessageAndSeeTheStreamedAnswer()
    {
        await using TestServer s = await TestServer.Start(null, r1: true, ("<｜Assistant｜><think>\n", ["Rain is likely.", "</think>", "Take an umbrella."]));
        using var page = Page.Open(s);
        (ChromeDriver browser, WebDriverWait wait) = (page.Browser, page.Wait);
        browser.FindElement(By.Id("input")).SendKeys("Should I take an umbrella?" + Keys.Enter);
        IWebElement answer = wait.Until(b => b.FindElements(By.CssSelector(".assistant[data-done='true']")).FirstOrDefault());
        Assert.Equal("Take an umbrella.", answer.FindElement(By.CssSelector(".answer")).Text);
        IWebElement reasoning = answer.FindElement(By.CssSelector("details.reasoning"));
        Assert.Null(reasoning.GetAttribute("open")); // collapsed
        reasoning.FindElement(By.TagName("summary")).Click();
        Assert.Contains("Rain is likely.", reasoning.Text);
        Assert.Matches(@"^4 tokens, [0-9.]+ tokens/s$", browser.FindElement(By.Id("stats")).Text);
        Assert.Equal("Should I take an umbrella?", browser.FindElement(By.CssSelector(".user")).Text);
    }

    [ChromiumFact]
    public async Task TheThinkingSwitchReachesAV31Model()
    {
        await using TestServer s = await TestServer.Start(Tokenizer.ChatTemplateKind.DeepSeekV31, null, ["<think>", "</think>"],
            ("<｜Assistant｜><think>", ["Rain is likely.", "</think>", "Take an umbrella."]));
        using var page = Page.Open(s);
        (ChromeDriver browser, WebDriverWait wait) = (page.Browser, page.Wait);
        // the server's default (V3.1: off): the answer alone
        browser.FindElement(By.Id("input")).SendKeys("Umbrella?" + Keys.Enter);
        IWebElement first = wait.Until(b => b.FindElements(By.CssSelector(".assistant[data-done='true']")).FirstOrDefault());
        Assert.Equal("Take an umbrella.", first.FindElement(By.CssSelector(".answer")).Text);
        Assert.Empty(first.FindElements(By.CssSelector("details.reasoning")));
        // on: the page sends "thinking": {"type": "enabled"} and shows the think block
        browser.FindElement(By.CssSelector("#thinking option[value='enabled']")).Click();
        browser.FindElement(By.Id("input")).SendKeys("And tomorrow?" + Keys.Enter);
        IWebElement second = wait.Until(b => b.FindElements(By.CssSelector(".assistant[data-done='true']")).Skip(1).FirstOrDefault());
        Assert.Equal("Take an umbrella.", second.FindElement(By.CssSelector(".answer")).Text);
        IWebElement reasoning = second.FindElement(By.CssSelector("details.reasoning"));
        reasoning.FindElement(By.TagName("summary")).Click();
        Assert.Contains("Rain is likely.", reasoning.Text);
    }
}

/// <summary>A fact skipped, with the reason, when Debian's chromium and chromium-driver are not installed.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (!File.Exists(ChatPageTests.Chromium) || !File.Exists(ChatPageTests.Driver))
            Skip = $"{ChatPageTests.Chromium} or {ChatPageTests.Driver} not installed (apt-get install chromium chromium-driver)";
    }
}
