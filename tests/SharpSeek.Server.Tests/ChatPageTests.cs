// The chat page at / in a real headless Chromium (Debian's chromium and chromium-driver, through Selenium WebDriver):
// type a message, see the streamed answer (the chain model's known text), reasoning in its collapsible block, tokens/s
// (3 text tokens + EOS).
// Skips with a message when the browser is not installed.
using OpenQA.Selenium;
using OpenQA.Selenium.Chrome;
using OpenQA.Selenium.Support.UI;
using Xunit.Abstractions;

namespace SharpSeek.Server.Tests;

public class ChatPageTests(ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium", Driver = "/usr/bin/chromedriver";

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

    [Fact]
    public async Task TypeAMessageAndSeeTheStreamedAnswer()
    {
        if (!File.Exists(Chromium) || !File.Exists(Driver))
        {
            output.WriteLine($"SKIPPED: {Chromium} or {Driver} not installed (apt-get install chromium chromium-driver)");
            return;
        }
        await using TestServer s = await TestServer.Start(null, r1: true, ("<｜Assistant｜><think>\n", ["Rain is likely.", "</think>", "Take an umbrella."]));
        var options = new ChromeOptions { BinaryLocation = Chromium };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage");
        using ChromeDriverService service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Driver)!, Path.GetFileName(Driver));
        service.HideCommandPromptWindow = true;
        using var browser = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
        browser.Navigate().GoToUrl(s.Url + "/");
        var wait = new WebDriverWait(browser, TimeSpan.FromSeconds(30));
        wait.Until(b => b.FindElement(By.Id("model")).Text == s.Server.ModelId);
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

    [Fact]
    public async Task TheThinkingSwitchReachesAV31Model()
    {
        if (!File.Exists(Chromium) || !File.Exists(Driver))
        {
            output.WriteLine($"SKIPPED: {Chromium} or {Driver} not installed (apt-get install chromium chromium-driver)");
            return;
        }
        await using TestServer s = await TestServer.Start(Tokenizer.ChatTemplateKind.DeepSeekV31, null, ["<think>", "</think>"],
            ("<｜Assistant｜><think>", ["Rain is likely.", "</think>", "Take an umbrella."]));
        var options = new ChromeOptions { BinaryLocation = Chromium };
        options.AddArguments("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage");
        using ChromeDriverService service = ChromeDriverService.CreateDefaultService(Path.GetDirectoryName(Driver)!, Path.GetFileName(Driver));
        service.HideCommandPromptWindow = true;
        using var browser = new ChromeDriver(service, options, TimeSpan.FromSeconds(60));
        browser.Navigate().GoToUrl(s.Url + "/");
        var wait = new WebDriverWait(browser, TimeSpan.FromSeconds(30));
        wait.Until(b => b.FindElement(By.Id("model")).Text == s.Server.ModelId);
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
