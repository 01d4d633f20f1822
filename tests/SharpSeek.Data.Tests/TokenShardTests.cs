// Token shards: round trips in both token widths, atomic writes, and malformed files.
using System.Buffers.Binary;

namespace SharpSeek.Data.Tests;

public sealed class TokenShardTests
{
    [Fact]
    public void WritesDocumentsWithEosAndReadsThemBack()
    {
        using var dir = new TempDirectory();
        string path = dir.File("shards/a.tokens");
        static int[] Encode(string s) => s.Select(c => (int)c - 'a' + 2).ToArray(); // 'a' -> 2, ...
        (long tokens, long docs) = TokenShardWriter.WriteDocuments(path, ["abc", "", "zz"], Encode, vocabSize: 30, eosTokenId: 1);
        Assert.Equal((8L, 3L), (tokens, docs));
        Assert.Empty(Directory.GetFiles(dir.File("shards"), "*.tmp"));
        Assert.Equal(TokenShard.HeaderSize + 8 * 2, new FileInfo(path).Length);

        using TokenShard shard = TokenShard.Open(path);
        Assert.Equal((30, 1, 8L, 3L, 2), (shard.VocabSize, shard.EosTokenId, shard.TokenCount, shard.DocumentCount, shard.BytesPerToken));
        int[] all = new int[8];
        shard.Read(0, all);
        Assert.Equal(new[] { 2, 3, 4, 1, 1, 27, 27, 1 }, all);
        Assert.Equal(27, shard[6]);
        Assert.Throws<ArgumentOutOfRangeException>(() => shard[8]);
        Assert.Throws<ArgumentOutOfRangeException>(() => shard.Read(6, new int[3]));
    }

    [Fact]
    public void LargeVocabulariesUseUInt32()
    {
        using var dir = new TempDirectory();
        string path = dir.File("big.tokens");
        using (TokenShardWriter w = TokenShardWriter.Create(path, vocabSize: 129280, eosTokenId: 1))
        {
            w.Append([0, 65535, 65536, 129279]);
            w.Commit();
        }
        using TokenShard shard = TokenShard.Open(path);
        Assert.Equal(4, shard.BytesPerToken);
        int[] ids = new int[4];
        shard.Read(0, ids);
        Assert.Equal(new[] { 0, 65535, 65536, 129279 }, ids);
    }

    [Fact]
    public void UncommittedWriterLeavesNothing()
    {
        using var dir = new TempDirectory();
        using (TokenShardWriter w = TokenShardWriter.Create(dir.File("x.tokens"), 10, 0))
        {
            w.Append([1, 2, 3]);
            Assert.Throws<ArgumentOutOfRangeException>(() => w.Append([4, 10]));
        }
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    private static string WriteValid(TempDirectory dir, string name = "ok.tokens")
    {
        string path = dir.File(name);
        using TokenShardWriter w = TokenShardWriter.Create(path, vocabSize: 100, eosTokenId: 0);
        w.AppendDocument([5, 6, 7, 8]);
        w.Commit();
        return path;
    }

    public static IEnumerable<object[]> Corruptions() =>
    [
        ["bad magic", (Action<byte[]>)(b => b[0] = (byte)'X'), "bad magic"],
        ["future version", (Action<byte[]>)(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), 2)), "version 2"],
        ["wrong width", (Action<byte[]>)(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), 4)), "bytes per token"],
        ["count past end", (Action<byte[]>)(b => BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(24), 6)), "truncated"],
        ["count short of end", (Action<byte[]>)(b => BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(24), 4)), "after the 4 tokens"],
        ["id at vocab size", (Action<byte[]>)(b => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(64 + 2 * 2), 100)), "token 2 has id 100"],
        ["eos outside vocab", (Action<byte[]>)(b => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(20), 100)), "EOS id 100"],
    ];

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void MalformedShardsAreInvalidDataNamingTheFile(string name, Action<byte[]> corrupt, string message)
    {
        using var dir = new TempDirectory();
        string path = WriteValid(dir);
        byte[] bytes = File.ReadAllBytes(path);
        corrupt(bytes);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => TokenShard.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(message, e.Message);
        Assert.False(string.IsNullOrEmpty(name));
    }

    [Fact]
    public void TruncatedFilesAreInvalidData()
    {
        using var dir = new TempDirectory();
        string path = WriteValid(dir);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^1]);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => TokenShard.Open(path)).Message);
        File.WriteAllBytes(path, bytes[..10]);
        var e = Assert.Throws<InvalidDataException>(() => TokenShard.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("shorter than the 64-byte shard header", e.Message);
    }
}
