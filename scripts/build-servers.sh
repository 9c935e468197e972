#!/usr/bin/env bash
# Builds the two real S3 servers of the test rig (docs/test-rig.md) into .tools/bin, pinned.
#
# Each binary gets a stamp file next to it (`<name>.pin`) holding the exact `module@version`
# it was built from; a binary whose stamp matches the pin below is kept, a changed pin
# rebuilds. Go is needed only when something must be built.
#
# Go caches: the default module and build caches (`go env GOMODCACHE GOCACHE`, ~/go and
# ~/.cache/go-build) are shared by every clone on the machine, so a fresh clone on a warm
# machine only relinks. Set GOMODCACHE/GOCACHE to move them (e.g. to a CI cache folder).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/.tools/bin"
mkdir -p "$bin"

# name | go install package | version | minimum Go (the `go` line of that module's go.mod)
pins=(
  "minio|github.com/minio/minio|v0.0.0-20260212201848-7aac2a2c5b7c|1.24"
  "versitygw|github.com/versity/versitygw/cmd/versitygw|v1.8.0|1.25"
)

die() {
  echo "build-servers: $*" >&2
  exit 1
}

# True when dotted version $1 >= $2 (numeric, field by field).
version_at_least() {
  local IFS=.
  local -a have=($1) need=($2)
  local i
  for i in 0 1 2; do
    local h=${have[i]:-0} n=${need[i]:-0}
    if ((10#$h > 10#$n)); then return 0; fi
    if ((10#$h < 10#$n)); then return 1; fi
  done
  return 0
}

go_version=""
require_go() {
  local name=$1 need=$2
  if [[ -z $go_version ]]; then
    command -v go >/dev/null 2>&1 ||
      die "Go is not installed; $name needs Go >= $need to build (https://go.dev/dl/)"
    go_version=$(go env GOVERSION 2>/dev/null) || die "'go env GOVERSION' failed; is Go installed correctly?"
    go_version=${go_version#go}
    go_version=${go_version%%[!0-9.]*} # go1.26rc1 -> 1.26
  fi
  version_at_least "$go_version" "$need" ||
    die "Go $go_version is too old: $name needs Go >= $need (https://go.dev/dl/)"
}

for entry in "${pins[@]}"; do
  IFS='|' read -r name pkg version need <<<"$entry"
  pin="$pkg@$version"
  target="$bin/$name"
  stamp="$bin/$name.pin"

  if [[ -x $target && -f $stamp && $(<"$stamp") == "$pin" ]]; then
    echo "$name $version: up to date in .tools/bin"
    continue
  fi

  # A binary built by hand with the same pin (no stamp yet) is adopted: Go records the
  # module path and version in every binary it builds.
  if [[ -x $target && ! -f $stamp ]] && command -v go >/dev/null 2>&1; then
    module=${pkg%/cmd/*}
    if go version -m "$target" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|$)"; then
      echo "$pin" >"$stamp"
      echo "$name $version: already built in .tools/bin (stamp recorded)"
      continue
    fi
  fi

  require_go "$name" "$need"
  echo "$name $version: building with go $go_version into .tools/bin (log: .tools/build-$name.log)"
  rm -f "$stamp"
  # Build into a scratch dir and move into place, so an interrupted build never leaves a
  # half-written binary that a later run could mistake for the pinned one.
  scratch=$(mktemp -d "$root/.tools/build-$name.XXXXXX")
  start=$SECONDS
  if ! GOBIN="$scratch" go install "$pin" >"$root/.tools/build-$name.log" 2>&1; then
    rm -rf "$scratch"
    tail -n 20 "$root/.tools/build-$name.log" >&2
    die "go install $pin failed (full log: .tools/build-$name.log)"
  fi
  mv -f "$scratch/$name" "$target"
  rm -rf "$scratch"
  echo "$pin" >"$stamp"
  echo "$name $version: built in $((SECONDS - start))s"
done
