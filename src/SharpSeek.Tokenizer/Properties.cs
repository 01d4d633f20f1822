// Assembly-level settings of SharpSeek.Tokenizer.
using System.Runtime.CompilerServices;

[assembly: InternalsVisibleTo("SharpSeek.Tokenizer.Tests")]
