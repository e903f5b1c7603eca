#!/usr/bin/env bash
# The one command that runs every test CI runs:
#   1. a -Dwerror=true build (-Wall -Wextra) running the unit, meta, fuzz-regress,
#      integration, interop and browser suites, then the NAT lab (suite nat);
#   2. an ASan/UBSan build running the unit, fuzz-regress and integration suites
#      (halt on the first error);
#   3. the clang-format check.
# Installs missing Debian packages and the pinned npm packages first.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# GOOP_WITH_BROWSER=1: Chromium for the real-browser test (suite "browser").
GOOP_WITH_BROWSER=1 scripts/install-deps.sh || { echo "dependency installation failed"; exit 1; }

pass=0; fail=0; failed=()
tests_ok=0; tests_bad=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
step() { # name, command...
  local name=$1; shift
  echo "=== $name"
  if "$@" 2>&1 | tee "$log"; then pass=$((pass + 1)); echo "=== $name: ok"
  else fail=$((fail + 1)); failed+=("$name"); echo "=== $name: FAILED"; fi
  # count the tests meson ran in this step
  local ok bad
  ok=$(awk '/^Ok:/ {s += $2} END {print s + 0}' "$log")
  bad=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {s += $NF} END {print s + 0}' "$log")
  tests_ok=$((tests_ok + ok)); tests_bad=$((tests_bad + bad))
}

if [ -f tests/interop/package-lock.json ]; then
  step "npm ci (interop)" bash -c "cd tests/interop && npm ci --no-audit --no-fund --loglevel=error"
fi

B=build-test
step "setup werror build" bash -c "rm -rf $B && meson setup $B -Dwerror=true -Dbuildtype=debugoptimized >/dev/null"
step "build werror" ninja -C $B
step "tests (werror build)" meson test -C $B --print-errorlogs --num-processes 2 \
  --suite unit --suite meta --suite fuzz-regress --suite integration --suite interop --suite browser
# The NAT lab (network namespaces, nftables NAT routers, needs root; skipped otherwise) on its own.
step "NAT lab (werror build)" meson test -C $B --print-errorlogs --num-processes 1 --suite nat

A=build-asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
step "setup asan build" bash -c "rm -rf $A && meson setup $A -Db_sanitize=address,undefined -Db_lundef=false -Dman-pages=disabled -Dexamples=false >/dev/null"
step "build asan" ninja -C $A
step "tests (asan build)" meson test -C $A --print-errorlogs --num-processes 2 \
  --suite unit --suite fuzz-regress --suite integration

step "clang-format" bash -c "git ls-files '*.c' '*.h' '*.h.in' | grep -v '\.in$' | xargs clang-format --dry-run -Werror"

echo
for f in "${failed[@]}"; do echo "failed step: $f"; done
echo "steps: $pass ok, $fail failed"
# tests counted by meson (each meson test is one program with many TAP checks);
# a failed step that is not a meson test run counts as one failure
other=$(( fail > 0 && tests_bad == 0 ? fail : 0 ))
echo "$tests_ok passed, $((tests_bad + other)) failed"
[ "$fail" -eq 0 ]
