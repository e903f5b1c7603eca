# Sourced by the interop scripts: installs the pinned npm packages (npm ci) into
# tests/interop/node_modules when they are missing or older than package-lock.json.
# Serialised with a lock so parallel tests don't run npm ci at the same time.
goop_interop_npm_ensure() {
  local dir="$1"
  local lock="${TMPDIR:-/tmp}/goop-interop-npm.lock"
  (
    flock -w 600 9 || { echo "npm-ensure: could not take $lock" >&2; exit 1; }
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      echo "npm-ensure: npm ci in $dir" >&2
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
    fi
  ) 9>"$lock"
}
