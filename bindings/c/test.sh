#!/usr/bin/env bash
# The C API's tests from C: builds the library (debug), then the test program against the
# shared library and runs it plainly and under valgrind, then against the static library with
# -fsanitize=address,undefined. Run by scripts/test-all.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
prefix=$root/target/c-prefix
out=$root/target/c-tests
bindings/c/install.sh --debug "$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
mkdir -p "$out"
flags="-std=c11 -Wall -Wextra -Werror -g -O1"
src=bindings/c/tests/c/test_vigilo.c

echo "== C test program (shared library)"
# shellcheck disable=SC2046 # pkg-config's output is meant to split into words
cc $flags "$src" $(pkg-config --cflags --libs vigilo) -lpthread -lm -o "$out/test_vigilo"
"$out/test_vigilo"

echo "== the example of bindings/c/README.md"
sed -n '/^```c$/,/^```$/p' bindings/c/README.md | sed '1d;$d' > "$out/readme.c"
# shellcheck disable=SC2046
cc $flags "$out/readme.c" $(pkg-config --cflags --libs vigilo) -o "$out/readme"
"$out/readme" | grep -q "\[critical\] firing queue"

echo "== the same under valgrind (no errors, no leaks)"
valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite "$out/test_vigilo"

echo "== C test program (static library, -fsanitize=address,undefined)"
# shellcheck disable=SC2046
cc $flags -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
    "$src" $(pkg-config --cflags vigilo) "$prefix/lib/libvigilo_c.a" -lpthread -ldl -lm \
    -o "$out/test_vigilo_asan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$out/test_vigilo_asan"
