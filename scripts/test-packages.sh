#!/usr/bin/env bash
# Packs the libraries and the `sharpseek` .NET tool into a local feed, checks the packages' metadata (license,
# readme, symbols), installs the tool from that feed into a temp dir and runs it on a fixture, and builds and runs the
# library example of the README (extracted from README.md and docs/nuget-readme.md, which must agree) against the
# packages. Run by .ci/run; needs the NuGet feed for the packages' own dependencies.
#   scripts/test-packages.sh [WORKDIR]      (default: a temp dir, removed afterwards)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${1:-$(mktemp -d)}
[ -n "${1:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
feed=$work/feed
export NUGET_PACKAGES=$work/packages   # a fresh package cache: never an older build of the same version
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' src/Directory.Build.props)
libs="SharpSeek.Tensors SharpSeek.Tokenizer SharpSeek.Formats SharpSeek.Model SharpSeek.Inference SharpSeek.Data SharpSeek.Training"
fail() { echo "test-packages: $*" >&2; exit 1; }
# package contents through python3's zipfile (no unzip needed)
ziplist() { python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1"; }
zipcat() { python3 -c 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())' "$1" "$2"; }

for p in $libs SharpSeek.Cli; do
  dotnet pack "src/$p" -c Release -o "$feed" -v q -nologo >"$work/pack-$p.log" 2>&1 || { cat "$work/pack-$p.log"; fail "dotnet pack src/$p failed"; }
done
for id in $libs SharpSeek.Tool; do
  pkg=$feed/$id.$version.nupkg
  [ -f "$pkg" ] || fail "$pkg was not produced"
  [ -f "$feed/$id.$version.snupkg" ] || fail "$id: no symbols package"
  nuspec=$(zipcat "$pkg" "$id.nuspec")
  grep -q '<license type="expression">MIT</license>' <<<"$nuspec" || fail "$id: license is not MIT"
  grep -q '<readme>README.md</readme>' <<<"$nuspec" || fail "$id: no readme"
  grep -q '<description>.\{40,\}' <<<"$nuspec" || fail "$id: no description"
  ziplist "$pkg" | grep -c '^README.md$' >/dev/null || fail "$id: README.md is not in the package"
  echo "ok: $id $version ($(stat -c %s "$pkg") bytes, symbols $(stat -c %s "$feed/$id.$version.snupkg") bytes)"
done
ziplist "$feed/SharpSeek.Tool.$version.nupkg" | grep -c '^tools/net10.0/any/sharpseek.dll$' >/dev/null || fail "SharpSeek.Tool is not a .NET tool package"

# the tool, installed from the local feed and run on fixtures
dotnet tool install SharpSeek.Tool --version "$version" --tool-path "$work/tool" --add-source "$feed" >"$work/tool.log" 2>&1 || { cat "$work/tool.log"; fail "tool install failed"; }
out=$("$work/tool/sharpseek" inspect --model tests/fixtures/configs/deepseek-v3.json)
grep -q '671,026,404,352' <<<"$out" || { echo "$out"; fail "installed tool: inspect did not report DeepSeek-V3's 671,026,404,352 parameters"; }
ids=$("$work/tool/sharpseek" generate --model models/sharpseek-mini --prompt-ids 1,2,3 --max-tokens 4 --temperature 0 --output-ids)
grep -Eq '[0-9]' <<<"$ids" || fail "installed tool: generate printed no ids"
echo "ok: installed tool runs (inspect, generate -> $ids)"

# the README's library example, compiled against the packages and run on the default model
extract() { awk '/^A library example/{f=1} f&&/^```csharp/{c=1;next} c&&/^```/{exit} c' "$1"; }
extract docs/nuget-readme.md >"$work/example.cs"
[ -s "$work/example.cs" ] || fail "no library example in docs/nuget-readme.md"
extract README.md | diff -q - "$work/example.cs" >/dev/null || fail "README.md and docs/nuget-readme.md show different library examples"
app=$work/app; mkdir -p "$app"
cp "$work/example.cs" "$app/Program.cs"
cat >"$app/app.csproj" <<CSPROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <RestoreAdditionalProjectSources>$feed</RestoreAdditionalProjectSources>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="SharpSeek.Inference" Version="$version" />
  </ItemGroup>
</Project>
CSPROJ
# outside the repository: no Directory.Build.props of ours applies
dotnet build "$app" -c Release -v q -nologo >"$work/app.log" 2>&1 || { cat "$work/app.log"; fail "the README's library example does not build against the packages"; }
out=$(dotnet "$app/bin/Release/net10.0/app.dll" "$root/models/sharpseek-mini" "It is a truth universally acknowledged")
grep -q 'tokens, finish:' <<<"$out" || { echo "$out"; fail "the library example did not generate"; }
echo "ok: library example from the README builds against the packages and runs:"
sed 's/^/  /' <<<"$out"
