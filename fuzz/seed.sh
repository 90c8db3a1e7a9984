#!/bin/sh
# Seed the fuzz corpus (gitignored) from the specs, the error cases and the reliability seeds.
# YAML specs get a leading `---` so the target reads them as YAML. Files over 8 KiB are left
# out: libFuzzer sizes its inputs by the largest seed.
set -eu
cd "$(dirname "$0")/.."
dest=fuzz/corpus/parse_and_elaborate
mkdir -p "$dest"
for f in specs/*.wick specs/*/*.wick std/*.wick tests/errors/*.wick tests/errors/*/*.wick tests/reliability/*.wick; do
    [ -f "$f" ] && [ "$(wc -c < "$f")" -le 8192 ] || continue
    cp "$f" "$dest/$(echo "$f" | tr '/' '_')"
done
for f in specs/*.yaml tests/reliability/*.yaml; do
    [ -f "$f" ] && [ "$(wc -c < "$f")" -le 8192 ] || continue
    { echo "---"; cat "$f"; } > "$dest/$(echo "$f" | tr '/' '_')"
done
echo "seeded $(ls "$dest" | wc -l) files into $dest"
