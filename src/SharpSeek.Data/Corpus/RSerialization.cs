// Reader for R's serialization format (XDR, versions 2 and 3), the bytes behind saveRDS and the lazy-load
// databases (.rdb/.rdx) that installed R packages keep their data sets in.
// Reference: R source src/main/serialize.c (InItem, ReadItem, InStringVec) and R Internals, "Serialization Formats".
// Only the value types that data sets use are read: vectors, lists, pairlists, symbols and environments
// (read and kept opaque); closures, byte code, external pointers, S4 objects and ALTREP are refused.
using System.Buffers.Binary;
using System.Text;

namespace SharpSeek.Data.Corpus;

/// <summary>The R value types that <see cref="RSerialization"/> reads.</summary>
public enum RType
{
    /// <summary>R's NULL.</summary>
    Null,
    /// <summary>A symbol (SYMSXP); its name is in <see cref="RObject.SymbolName"/>.</summary>
    Symbol,
    /// <summary>A pairlist (LISTSXP): <see cref="RObject.Elements"/> with <see cref="RObject.Tags"/>.</summary>
    PairList,
    /// <summary>A logical vector (LGLSXP) in <see cref="RObject.Integers"/>: 0, 1, or int.MinValue for NA.</summary>
    Logical,
    /// <summary>An integer vector (INTSXP) in <see cref="RObject.Integers"/>; NA is int.MinValue.</summary>
    Integer,
    /// <summary>A double vector (REALSXP) in <see cref="RObject.Doubles"/>.</summary>
    Double,
    /// <summary>A character vector (STRSXP) in <see cref="RObject.Strings"/>; NA is null.</summary>
    Character,
    /// <summary>A generic vector (VECSXP or EXPRSXP) in <see cref="RObject.Elements"/>.</summary>
    List,
    /// <summary>A raw vector (RAWSXP) in <see cref="RObject.Raw"/>.</summary>
    Raw,
    /// <summary>An environment, package or namespace reference, or a special environment; contents are not kept.</summary>
    Environment,
}

/// <summary>One deserialized R value with its attributes.</summary>
public sealed class RObject
{
    internal static readonly RObject Null = new(RType.Null);
    internal static readonly IReadOnlyDictionary<string, RObject> NoAttributes = new Dictionary<string, RObject>();

    internal RObject(RType type) => Type = type;

    /// <summary>The value's type.</summary>
    public RType Type { get; }

    /// <summary>The symbol's name, for <see cref="RType.Symbol"/>.</summary>
    public string? SymbolName { get; internal init; }

    /// <summary>Values of a logical or integer vector.</summary>
    public int[]? Integers { get; internal init; }

    /// <summary>Values of a double vector.</summary>
    public double[]? Doubles { get; internal init; }

    /// <summary>Values of a character vector; null entries are NA.</summary>
    public string?[]? Strings { get; internal init; }

    /// <summary>Bytes of a raw vector.</summary>
    public byte[]? Raw { get; internal init; }

    /// <summary>Elements of a list or pairlist.</summary>
    public IReadOnlyList<RObject>? Elements { get; internal init; }

    /// <summary>Tags (names) of a pairlist's elements; null where an element has none.</summary>
    public IReadOnlyList<string?>? Tags { get; internal init; }

    /// <summary>Attributes by name (names, class, dim, ...); empty when there are none.</summary>
    public IReadOnlyDictionary<string, RObject> Attributes { get; internal set; } = NoAttributes;

    /// <summary>The "names" attribute as strings, or null when there is none.</summary>
    public string?[]? Names => Attributes.TryGetValue("names", out RObject? n) ? n.Strings : null;

    /// <summary>Number of elements (vector length, list length), 0 for NULL, symbols and environments.</summary>
    public int Length => Type switch
    {
        RType.Logical or RType.Integer => Integers!.Length,
        RType.Double => Doubles!.Length,
        RType.Character => Strings!.Length,
        RType.Raw => Raw!.Length,
        RType.List or RType.PairList => Elements!.Count,
        _ => 0,
    };

    /// <summary>The element of a named list (or pairlist) called <paramref name="name"/>, or null.</summary>
    public RObject? this[string name]
    {
        get
        {
            IReadOnlyList<string?>? names = Type == RType.PairList ? Tags : Names;
            if (Elements is null || names is null)
                return null;
            for (int i = 0; i < names.Count && i < Elements.Count; i++)
            {
                if (names[i] == name)
                    return Elements[i];
            }
            return null;
        }
    }
}

/// <summary>Deserializes R objects from the XDR serialization format.</summary>
public static class RSerialization
{
    /// <summary>
    /// Reads one serialized object: the bytes start with "X\n", then the version header, then the item.
    /// Throws <see cref="InvalidDataException"/> for truncated or malformed input (named by <paramref name="source"/>)
    /// and <see cref="NotSupportedException"/> for ASCII/native formats and value types this reader does not handle.
    /// </summary>
    public static RObject Read(ReadOnlySpan<byte> data, string source = "R serialization")
    {
        var reader = new Reader(data.ToArray(), source);
        return reader.ReadStream();
    }

    // SEXP type codes and pseudo-types from serialize.c.
    private const int SymSxp = 1, ListSxp = 2, CloSxp = 3, EnvSxp = 4, PromSxp = 5, LangSxp = 6, CharSxp = 9,
        LglSxp = 10, IntSxp = 13, RealSxp = 14, CplxSxp = 15, StrSxp = 16, DotSxp = 17, VecSxp = 19, ExprSxp = 20,
        RawSxp = 24, S4Sxp = 25;
    private const int AltrepSxp = 238, AttrListSxp = 239, AttrLangSxp = 240, BaseEnvSxp = 241, EmptyEnvSxp = 242,
        BcRepRef = 243, BcRepDef = 244, GenericRefSxp = 245, ClassRefSxp = 246, PersistSxp = 247, PackageSxp = 248,
        NamespaceSxp = 249, BaseNamespaceSxp = 250, MissingArgSxp = 251, UnboundValueSxp = 252, GlobalEnvSxp = 253,
        NilValueSxp = 254, RefSxp = 255;

    // CHARSXP encoding bits in the "levels" field (flags >> 12).
    private const int BytesMask = 1 << 1, Latin1Mask = 1 << 2, Utf8Mask = 1 << 3;

    private sealed class Reader(byte[] data, string source)
    {
        private readonly List<RObject> _refs = [];
        private int _pos;
        private bool _nativeIsLatin1;

        public RObject ReadStream()
        {
            if (data.Length < 2)
                throw Malformed("shorter than the 2-byte format header");
            if (data[0] == (byte)'A' || data[0] == (byte)'B')
                throw new NotSupportedException($"{source}: only the XDR serialization format (\"X\\n\") is supported, found '{(char)data[0]}'");
            if (data[0] != (byte)'X' || data[1] != (byte)'\n')
                throw Malformed($"bad format header 0x{data[0]:x2}{data[1]:x2}, expected \"X\\n\"");
            _pos = 2;
            int version = ReadInt();
            ReadInt(); // R version that wrote it
            ReadInt(); // oldest R version that can read it
            if (version == 3)
            {
                int n = ReadInt();
                if (n < 0 || n > 64)
                    throw Malformed($"native encoding length {n} out of range");
                string encoding = Encoding.ASCII.GetString(Take(n));
                _nativeIsLatin1 = encoding.Equals("latin1", StringComparison.OrdinalIgnoreCase)
                    || encoding.Equals("ISO-8859-1", StringComparison.OrdinalIgnoreCase);
            }
            else if (version != 2)
            {
                throw new NotSupportedException($"{source}: serialization version {version} is not supported (2 and 3 are)");
            }
            RObject result = ReadItem(ReadInt());
            return result;
        }

        private RObject ReadItem(int flags)
        {
            int type = flags & 0xFF;
            bool hasAttr = (flags & (1 << 9)) != 0;
            bool hasTag = (flags & (1 << 10)) != 0;
            int levels = flags >> 12;
            switch (type)
            {
                case NilValueSxp:
                    return RObject.Null;
                case EmptyEnvSxp or BaseEnvSxp or GlobalEnvSxp or UnboundValueSxp or MissingArgSxp or BaseNamespaceSxp:
                    return new RObject(RType.Environment);
                case RefSxp:
                {
                    int index = flags >> 8;
                    if (index == 0)
                        index = ReadInt();
                    if (index < 1 || index > _refs.Count)
                        throw Malformed($"reference {index} out of range (table has {_refs.Count})");
                    return _refs[index - 1];
                }
                case PersistSxp:
                    throw new NotSupportedException($"{source}: persistent references (PERSISTSXP) are not supported");
                case SymSxp:
                {
                    RObject name = ReadItem(ReadInt());
                    var sym = new RObject(RType.Symbol) { SymbolName = name.Strings is [string s] ? s : "" };
                    _refs.Add(sym);
                    return sym;
                }
                case PackageSxp or NamespaceSxp:
                {
                    ReadStringVector();
                    var env = new RObject(RType.Environment);
                    _refs.Add(env);
                    return env;
                }
                case EnvSxp:
                {
                    var env = new RObject(RType.Environment);
                    _refs.Add(env);
                    ReadInt(); // locked
                    ReadItem(ReadInt()); // enclosing environment
                    ReadItem(ReadInt()); // frame
                    ReadItem(ReadInt()); // hash table
                    ReadItem(ReadInt()); // attributes
                    return env;
                }
                case ListSxp or LangSxp or CloSxp or PromSxp or DotSxp or AttrLangSxp or AttrListSxp:
                    if (type != ListSxp && type != AttrListSxp)
                        throw new NotSupportedException($"{source}: R language objects (type {type}) are not supported");
                    return ReadPairList(flags);
                case CharSxp:
                    return new RObject(RType.Character) { Strings = [ReadCharSxp(levels)] };
                case LglSxp or IntSxp:
                {
                    int n = ReadLength();
                    var values = new int[n];
                    ReadOnlySpan<byte> bytes = Take(checked(n * 4));
                    for (int i = 0; i < n; i++)
                        values[i] = BinaryPrimitives.ReadInt32BigEndian(bytes.Slice(i * 4));
                    return WithAttributes(new RObject(type == LglSxp ? RType.Logical : RType.Integer) { Integers = values }, hasAttr);
                }
                case RealSxp:
                {
                    int n = ReadLength();
                    var values = new double[n];
                    ReadOnlySpan<byte> bytes = Take(checked(n * 8));
                    for (int i = 0; i < n; i++)
                        values[i] = BinaryPrimitives.ReadDoubleBigEndian(bytes.Slice(i * 8));
                    return WithAttributes(new RObject(RType.Double) { Doubles = values }, hasAttr);
                }
                case StrSxp:
                {
                    int n = ReadLength();
                    var values = new string?[n];
                    for (int i = 0; i < n; i++)
                    {
                        int f = ReadInt();
                        if ((f & 0xFF) != CharSxp)
                            throw Malformed($"element {i} of a character vector has type {f & 0xFF}, expected CHARSXP (9)");
                        values[i] = ReadCharSxp(f >> 12);
                    }
                    return WithAttributes(new RObject(RType.Character) { Strings = values }, hasAttr);
                }
                case VecSxp or ExprSxp:
                {
                    int n = ReadLength();
                    var items = new RObject[n];
                    for (int i = 0; i < n; i++)
                        items[i] = ReadItem(ReadInt());
                    return WithAttributes(new RObject(RType.List) { Elements = items }, hasAttr);
                }
                case RawSxp:
                {
                    int n = ReadLength();
                    return WithAttributes(new RObject(RType.Raw) { Raw = Take(n).ToArray() }, hasAttr);
                }
                case CplxSxp or S4Sxp or AltrepSxp or BcRepDef or BcRepRef or GenericRefSxp or ClassRefSxp:
                    throw new NotSupportedException($"{source}: R value type {type} is not supported");
                default:
                    throw Malformed($"unknown R value type {type} at offset {_pos - 4}");
            }

            RObject ReadPairList(int firstFlags)
            {
                // A pairlist is a chain of cells: [attributes] [tag] car, then the cdr, which is either the next
                // cell or the terminator (NILVALUE_SXP). Read it as a loop so long lists do not recurse.
                var elements = new List<RObject>();
                var tags = new List<string?>();
                RObject? attributes = null;
                int f = firstFlags;
                while (true)
                {
                    if ((f & (1 << 9)) != 0)
                    {
                        RObject a = ReadItem(ReadInt());
                        attributes ??= a;
                    }
                    string? tag = null;
                    if ((f & (1 << 10)) != 0)
                        tag = ReadItem(ReadInt()).SymbolName;
                    tags.Add(tag);
                    elements.Add(ReadItem(ReadInt()));
                    f = ReadInt();
                    int t = f & 0xFF;
                    if (t != ListSxp && t != AttrListSxp)
                    {
                        RObject tail = ReadItem(f);
                        if (tail.Type != RType.Null)
                            throw Malformed($"pairlist ends in type {tail.Type}, expected NULL");
                        break;
                    }
                }
                var list = new RObject(RType.PairList) { Elements = elements, Tags = tags };
                if (attributes is not null)
                    list.Attributes = ToAttributeMap(attributes);
                return list;
            }
        }

        private RObject WithAttributes(RObject value, bool hasAttr)
        {
            if (hasAttr)
                value.Attributes = ToAttributeMap(ReadItem(ReadInt()));
            return value;
        }

        private Dictionary<string, RObject> ToAttributeMap(RObject pairList)
        {
            if (pairList.Type != RType.PairList)
                throw Malformed($"attributes have type {pairList.Type}, expected a pairlist");
            var map = new Dictionary<string, RObject>(StringComparer.Ordinal);
            for (int i = 0; i < pairList.Elements!.Count; i++)
                map[pairList.Tags![i] ?? ""] = pairList.Elements[i];
            return map;
        }

        private string? ReadCharSxp(int levels)
        {
            int n = ReadInt();
            if (n == -1)
                return null; // NA_character_
            if (n < 0)
                throw Malformed($"string length {n} is negative");
            ReadOnlySpan<byte> bytes = Take(n);
            if ((levels & Latin1Mask) != 0 || (_nativeIsLatin1 && (levels & (Utf8Mask | BytesMask)) == 0))
                return Encoding.Latin1.GetString(bytes);
            return Encoding.UTF8.GetString(bytes);
        }

        private void ReadStringVector()
        {
            if (ReadInt() != 0)
                throw Malformed("string vector header is not 0");
            int n = ReadInt();
            for (int i = 0; i < n; i++)
                ReadItem(ReadInt());
        }

        private int ReadLength()
        {
            int n = ReadInt();
            if (n >= 0)
                return n;
            if (n != -1)
                throw Malformed($"vector length {n} is negative");
            long upper = (uint)ReadInt(), lower = (uint)ReadInt();
            long length = (upper << 32) | lower;
            throw new NotSupportedException($"{source}: long vector of length {length} is not supported");
        }

        private int ReadInt() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

        private ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || n > data.Length - _pos)
                throw Malformed($"truncated: needs {n} bytes at offset {_pos}, {data.Length - _pos} left");
            var span = new ReadOnlySpan<byte>(data, _pos, n);
            _pos += n;
            return span;
        }

        private InvalidDataException Malformed(string what) => new($"{source}: {what}");
    }
}
