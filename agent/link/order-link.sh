#!/bin/sh
# Linker driver for the workspace: links with `cc` as rustc would. For the agent binary
# (`headroom`), it then links once more with the functions named in hot-functions.txt laid out
# first, so the code the running agent executes shares a few pages instead of being spread
# over its whole text, all of which would otherwise end up resident (the kernel maps the
# neighbours of every page it faults in). The list names functions without their hashes, so
# it keeps matching as the code changes; benches/overhead/hot_functions.py regenerates it.
# Any failure here keeps the plain link: the layout only saves memory.
set -u
out=
prev=
for arg in "$@"; do
    if [ "$prev" = -o ]; then out=$arg; fi
    prev=$arg
done
case ${out##*/} in
    headroom-????????????????) ;;
    *) exec cc "$@" ;;
esac
cc "$@" || exit
list=$(dirname -- "$0")/hot-functions.txt
order=$out.order
nm --defined-only "$out" 2>/dev/null | awk -v list="$list" '
    BEGIN {
        hash = "17h"
        for (i = 0; i < 16; i++) hash = hash "[0-9a-f]"
        hash = hash "E"
        n = 0
        while ((getline line < list) > 0)
            if (line !~ /^#/ && line != "" && !(line in rank)) rank[line] = n++
    }
    $2 ~ /^[tTwW]$/ {
        key = $3
        sub(hash, "", key)
        sub(/(\.llvm)?\.[0-9]+$/, "", key)
        if (key in rank) print rank[key], $3
    }' | sort -n -k1,1 | cut -d' ' -f2 >"$order"
if [ -s "$order" ]; then
    cc "$@" -Wl,--symbol-ordering-file="$order" -Wl,--no-warn-symbol-ordering || cc "$@"
fi
