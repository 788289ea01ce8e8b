#!/usr/bin/env bash
# Run the test suite once under AddressSanitizer (the extension built with
# -fsanitize=address, libasan preloaded into a normal interpreter) and once
# under Python's debug allocator (PYTHONMALLOC=debug), in a fresh venv.
# Optional, not part of CI: it takes a few minutes and needs gcc's libasan.
# The typing tests are left out (mypy is not what is being checked).
#
#   bash tools/sanitize.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
chmod 755 "$work"          # tests run children as user nobody: they import from here
trap 'rm -rf "$work"' EXIT
export SYSVKIT_SANITIZER=1   # the RSS leak loops skip themselves: sanitizers inflate RSS

python -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
libasan=$(gcc -print-file-name=libasan.so)

echo "== build with AddressSanitizer"
CFLAGS="-fsanitize=address -fno-omit-frame-pointer -O1 -g" LDFLAGS="-fsanitize=address" \
    pip install -q ".[test]" 2>&1 | grep -v "Running pip as" || true

cd "$work"   # import the installed build, not the source tree
echo "== pytest under AddressSanitizer"
LD_PRELOAD="$libasan" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 PYTHONMALLOC=malloc \
    python -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir "$OLDPWD" "$OLDPWD/tests" --ignore "$OLDPWD/tests/test_typing.py" "$@"

echo "== rebuild without instrumentation (an ASan build cannot load without libasan)"
(cd "$OLDPWD" && pip install -q --no-deps --force-reinstall . 2>&1 | grep -v "Running pip as" || true)

echo "== pytest under the debug allocator"
PYTHONMALLOC=debug python -X dev -m pytest -q -p no:cacheprovider --import-mode=importlib \
    --rootdir "$OLDPWD" "$OLDPWD/tests" --ignore "$OLDPWD/tests/test_typing.py" "$@"
