#!/usr/bin/env bash
# The C API's tests from C: builds the library (debug), then the test programs against the
# shared library and runs them plainly and under valgrind, then against the static library
# with -fsanitize=address,undefined. Run by scripts/test-all.sh. Honours CARGO_TARGET_DIR
# (default: target/ at the repository's root).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target=$root/$target ;; esac
prefix=$target/c-prefix
out=$target/c-tests
bindings/c/install.sh --debug "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
mkdir -p "$out"
flags="-std=c11 -Wall -Wextra -Werror -g -O1"
# test_vigilo: every function and error path; test_boundary: the boundary's promises (values
# the header does not list, stop/free waiting for callbacks, NULL arguments, bounded errors,
# callbacks ending their thread); test_local: thread-bound counters and the header's inline add.
programs="test_vigilo test_boundary test_local"

for p in $programs; do
    echo "== C test program $p (shared library)"
    # shellcheck disable=SC2046 # pkg-config's output is meant to split into words
    cc $flags "bindings/c/tests/c/$p.c" $(pkg-config --cflags --libs vigilo) -lpthread -lm \
        -o "$out/$p"
    "$out/$p"
done

echo "== the example of bindings/c/README.md"
sed -n '/^```c$/,/^```$/p' bindings/c/README.md | sed '1d;$d' > "$out/readme.c"
# shellcheck disable=SC2046
cc $flags "$out/readme.c" $(pkg-config --cflags --libs vigilo) -o "$out/readme"
"$out/readme" | grep -q "\[critical\] firing queue"

for p in $programs; do
    echo "== $p under valgrind (no errors, no leaks)"
    valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite "$out/$p"
done

for p in $programs; do
    echo "== $p (static library, -fsanitize=address,undefined)"
    # shellcheck disable=SC2046
    cc $flags -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
        "bindings/c/tests/c/$p.c" $(pkg-config --cflags vigilo) "$prefix/lib/libvigilo_c.a" \
        -lpthread -ldl -lm -o "$out/${p}_asan"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$out/${p}_asan"
done
