#!/bin/sh
# Seed the fuzz corpus (gitignored) from the specs and the error cases.
set -eu
cd "$(dirname "$0")/.."
dest=fuzz/corpus/parse_and_elaborate
mkdir -p "$dest"
for f in specs/*.wick specs/*/*.wick std/*.wick tests/errors/*.wick tests/errors/*/*.wick; do
    [ -f "$f" ] || continue
    cp "$f" "$dest/$(echo "$f" | tr '/' '_')"
done
echo "seeded $(ls "$dest" | wc -l) files into $dest"
