// Token shards: a flat file of token ids with a fixed 64-byte header, memory-mapped for reading.
//
//   offset  size  field
//        0     8  magic "SSTOKENS" (ASCII)
//        8     4  format version, uint32 = 1
//       12     4  bytes per token: 2 (uint16) when vocab size <= 65536, else 4 (uint32)
//       16     4  vocab size, uint32: every token id is below it
//       20     4  EOS token id, int32 (-1: none); documents end with it
//       24     8  token count, int64
//       32     8  document count, int64
//       40    24  zero
//       64     .  token ids, little-endian, token count x bytes per token; nothing after them
//
// Opening checks magic, version, token width against the vocab size, the file length against the count
// (ggml gguf.cpp style: counts against bytes left), and every id against the vocab size.
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

namespace SharpSeek.Data;

/// <summary>A read-only, memory-mapped token shard.</summary>
public sealed unsafe class TokenShard : IDisposable
{
    /// <summary>Header size in bytes; tokens start here.</summary>
    public const int HeaderSize = 64;

    /// <summary>Current format version.</summary>
    public const uint Version = 1;

    /// <summary>The 8 magic bytes at the start of every shard.</summary>
    public static ReadOnlySpan<byte> Magic => "SSTOKENS"u8;

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _tokens;

    private TokenShard(string path, MemoryMappedFile file, MemoryMappedViewAccessor view, byte* tokens, ShardHeader header)
    {
        Path = path;
        _file = file;
        _view = view;
        _tokens = tokens;
        VocabSize = header.VocabSize;
        EosTokenId = header.EosTokenId;
        TokenCount = header.TokenCount;
        DocumentCount = header.DocumentCount;
        BytesPerToken = header.BytesPerToken;
    }

    /// <summary>The file this shard was opened from.</summary>
    public string Path { get; }

    /// <summary>Every token id is below this.</summary>
    public int VocabSize { get; }

    /// <summary>The id that ends each document, or -1.</summary>
    public int EosTokenId { get; }

    /// <summary>Number of tokens.</summary>
    public long TokenCount { get; }

    /// <summary>Number of documents written.</summary>
    public long DocumentCount { get; }

    /// <summary>2 (uint16) or 4 (uint32).</summary>
    public int BytesPerToken { get; }

    /// <summary>The token at <paramref name="index"/>.</summary>
    public int this[long index]
    {
        get
        {
            if ((ulong)index >= (ulong)TokenCount)
                throw new ArgumentOutOfRangeException(nameof(index), index, $"{Path} has {TokenCount} tokens");
            byte* p = Pointer();
            return BytesPerToken == 2 ? ((ushort*)p)[index] : (int)((uint*)p)[index];
        }
    }

    /// <summary>Copies tokens [<paramref name="start"/>, start + destination.Length) into <paramref name="destination"/>.</summary>
    public void Read(long start, Span<int> destination)
    {
        if (start < 0 || start > TokenCount - destination.Length)
            throw new ArgumentOutOfRangeException(nameof(start), start, $"[{start}, {start + destination.Length}) is outside {Path}'s {TokenCount} tokens");
        byte* p = Pointer();
        if (BytesPerToken == 2)
        {
            ushort* src = (ushort*)p + start;
            for (int i = 0; i < destination.Length; i++)
                destination[i] = src[i];
        }
        else
        {
            new ReadOnlySpan<int>((int*)p + start, destination.Length).CopyTo(destination);
        }
    }

    /// <summary>
    /// Opens and validates a shard. Throws <see cref="InvalidDataException"/> naming the file for a bad magic,
    /// unknown version, wrong token width, a length that disagrees with the count, or an id at or above the vocab size.
    /// </summary>
    public static TokenShard Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        MemoryMappedFile? file = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            ShardHeader header = ReadHeader(stream, path);
            file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* basePtr = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
            var shard = new TokenShard(path, file, view, basePtr + view.PointerOffset + HeaderSize, header);
            shard.ValidateIds();
            return shard;
        }
        catch
        {
            if (view is not null)
            {
                view.SafeMemoryMappedViewHandle.ReleasePointer();
                view.Dispose();
            }
            file?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    internal readonly record struct ShardHeader(int BytesPerToken, int VocabSize, int EosTokenId, long TokenCount, long DocumentCount);

    private static ShardHeader ReadHeader(FileStream stream, string path)
    {
        long length = stream.Length;
        if (length < HeaderSize)
            throw new InvalidDataException($"{path}: truncated: {length} bytes, shorter than the {HeaderSize}-byte shard header");
        Span<byte> h = stackalloc byte[HeaderSize];
        stream.ReadExactly(h);
        if (!h[..8].SequenceEqual(Magic))
            throw new InvalidDataException($"{path}: bad magic '{System.Text.Encoding.ASCII.GetString(h[..8])}', expected 'SSTOKENS': not a token shard");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(h[8..]);
        if (version != Version)
            throw new InvalidDataException($"{path}: shard format version {version}, this reader supports {Version}");
        int width = (int)BinaryPrimitives.ReadUInt32LittleEndian(h[12..]);
        uint vocab = BinaryPrimitives.ReadUInt32LittleEndian(h[16..]);
        int eos = BinaryPrimitives.ReadInt32LittleEndian(h[20..]);
        long count = BinaryPrimitives.ReadInt64LittleEndian(h[24..]);
        long docs = BinaryPrimitives.ReadInt64LittleEndian(h[32..]);
        if (vocab == 0 || vocab > int.MaxValue)
            throw new InvalidDataException($"{path}: vocab size {vocab} out of range");
        int expectedWidth = BytesPerTokenFor((int)vocab);
        if (width != expectedWidth)
            throw new InvalidDataException($"{path}: {width} bytes per token for vocab size {vocab}, expected {expectedWidth}");
        if (eos < -1 || eos >= vocab)
            throw new InvalidDataException($"{path}: EOS id {eos} outside the vocab size {vocab}");
        if (count < 0 || docs < 0)
            throw new InvalidDataException($"{path}: negative token count {count} or document count {docs}");
        long available = (length - HeaderSize) / width;
        if (count > available)
            throw new InvalidDataException($"{path}: truncated: header says {count} tokens, file holds {available} ({length} bytes)");
        if (HeaderSize + count * width != length)
            throw new InvalidDataException($"{path}: {length - HeaderSize - count * width} bytes after the {count} tokens the header announces");
        return new ShardHeader(width, (int)vocab, eos, count, docs);
    }

    /// <summary>Bytes per stored token for a vocabulary size: 2 up to 65536 ids, else 4.</summary>
    public static int BytesPerTokenFor(int vocabSize) => vocabSize <= 65536 ? 2 : 4;

    private void ValidateIds()
    {
        const int Chunk = 1 << 28;
        if (BytesPerToken == 2 && VocabSize >= 65536)
            return; // every uint16 is a valid id
        for (long start = 0; start < TokenCount; start += Chunk)
        {
            int n = (int)Math.Min(Chunk, TokenCount - start);
            int bad = BytesPerToken == 2
                ? new ReadOnlySpan<ushort>((ushort*)_tokens + start, n).IndexOfAnyInRange((ushort)VocabSize, ushort.MaxValue)
                : new ReadOnlySpan<uint>((uint*)_tokens + start, n).IndexOfAnyInRange((uint)VocabSize, uint.MaxValue);
            if (bad >= 0)
                throw new InvalidDataException($"{Path}: token {start + bad} has id {this[start + bad]}, at or above the vocab size {VocabSize}");
        }
    }

    private byte* Pointer()
    {
        ObjectDisposedException.ThrowIf(_tokens is null, this);
        return _tokens;
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (_tokens is null)
            return;
        _tokens = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}

/// <summary>Writes a token shard: tokens go to a temporary file, and <see cref="Commit"/> writes the header and renames it into place.</summary>
public sealed class TokenShardWriter : IDisposable
{
    private readonly string _path;
    private readonly string _tempPath;
    private readonly FileStream _stream;
    private readonly int _vocabSize;
    private readonly int _eosTokenId;
    private readonly int _bytesPerToken;
    private readonly byte[] _buffer = new byte[1 << 16];
    private bool _done;

    private TokenShardWriter(string path, int vocabSize, int eosTokenId)
    {
        _path = System.IO.Path.GetFullPath(path);
        _tempPath = $"{_path}.{Environment.ProcessId}.tmp";
        _vocabSize = vocabSize;
        _eosTokenId = eosTokenId;
        _bytesPerToken = TokenShard.BytesPerTokenFor(vocabSize);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(_path)!);
        _stream = new FileStream(_tempPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        _stream.Write(new byte[TokenShard.HeaderSize]); // placeholder until Commit
    }

    /// <summary>Tokens appended so far.</summary>
    public long TokenCount { get; private set; }

    /// <summary>Documents appended so far.</summary>
    public long DocumentCount { get; private set; }

    /// <summary>Starts a shard at <paramref name="path"/> for ids below <paramref name="vocabSize"/>; <paramref name="eosTokenId"/> ends each document (-1: none).</summary>
    public static TokenShardWriter Create(string path, int vocabSize, int eosTokenId)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        if (eosTokenId < -1 || eosTokenId >= vocabSize)
            throw new ArgumentOutOfRangeException(nameof(eosTokenId), eosTokenId, $"EOS id must be -1 or below the vocab size {vocabSize}");
        return new TokenShardWriter(path, vocabSize, eosTokenId);
    }

    /// <summary>Appends tokens; throws <see cref="ArgumentOutOfRangeException"/> for an id outside [0, vocab size).</summary>
    public void Append(ReadOnlySpan<int> tokens)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        while (!tokens.IsEmpty)
        {
            int n = Math.Min(tokens.Length, _buffer.Length / _bytesPerToken);
            for (int i = 0; i < n; i++)
            {
                int id = tokens[i];
                if ((uint)id >= (uint)_vocabSize)
                    throw new ArgumentOutOfRangeException(nameof(tokens), id, $"token {TokenCount + i} for {_path} is outside [0, {_vocabSize})");
                if (_bytesPerToken == 2)
                    BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(i * 2), (ushort)id);
                else
                    BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(i * 4), (uint)id);
            }
            _stream.Write(_buffer, 0, n * _bytesPerToken);
            TokenCount += n;
            tokens = tokens[n..];
        }
    }

    /// <summary>Appends one document's tokens followed by the EOS token.</summary>
    public void AppendDocument(ReadOnlySpan<int> tokens)
    {
        if (_eosTokenId < 0)
            throw new InvalidOperationException($"{_path}: documents need an EOS token id");
        Append(tokens);
        Append([_eosTokenId]);
        DocumentCount++;
    }

    /// <summary>Writes the header, flushes to disk and renames the temporary file to the shard's path.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        Span<byte> h = stackalloc byte[TokenShard.HeaderSize];
        h.Clear();
        TokenShard.Magic.CopyTo(h);
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], TokenShard.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], (uint)_bytesPerToken);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], (uint)_vocabSize);
        BinaryPrimitives.WriteInt32LittleEndian(h[20..], _eosTokenId);
        BinaryPrimitives.WriteInt64LittleEndian(h[24..], TokenCount);
        BinaryPrimitives.WriteInt64LittleEndian(h[32..], DocumentCount);
        _stream.Position = 0;
        _stream.Write(h);
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        File.Move(_tempPath, _path, overwrite: true);
        _done = true;
    }

    /// <summary>Abandons an uncommitted shard (the temporary file is deleted).</summary>
    public void Dispose()
    {
        if (_done)
            return;
        _done = true;
        _stream.Dispose();
        File.Delete(_tempPath);
    }

    /// <summary>
    /// Tokenises <paramref name="documents"/> with <paramref name="encode"/> (text to ids, no BOS/EOS) and writes them
    /// as one shard, each document followed by <paramref name="eosTokenId"/>. Returns (tokens, documents) written.
    /// </summary>
    public static (long Tokens, long Documents) WriteDocuments(string path, IEnumerable<string> documents,
        Func<string, int[]> encode, int vocabSize, int eosTokenId)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(encode);
        using TokenShardWriter writer = Create(path, vocabSize, eosTokenId);
        foreach (string document in documents)
            writer.AppendDocument(encode(document));
        writer.Commit();
        return (writer.TokenCount, writer.DocumentCount);
    }
}
