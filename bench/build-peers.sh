#!/usr/bin/env bash
# Builds the peer tools that bench/s3migrate compares s3migrate with (docs/benchmarks.md) into
# the ignored .tools/ folder, pinned, skipping what is already built with the same pin:
#   .tools/bin/mc      MinIO client (`mc mirror`)          go install github.com/minio/mc@<pin>
#   .tools/cargo/bin/s3sync   nidor1998/s3sync             cargo install s3sync --locked
# s5cmd is not built: it talks to one endpoint with one credential and copies s3→s3 by
# server-side CopyObject, so it cannot copy between two servers (docs/benchmarks.md).
# rclone is not built here: Debian's package is used (`apt-get install -y rclone`); the bench
# prints its version.
#
# Each binary gets a stamp file next to it (`<name>.pin`) holding the exact pin it was built
# from; a changed pin rebuilds. The Rust build of s3sync is slow on 2 cores: it is given
# S3SYNC_BUILD_TIMEOUT seconds (default 900) and skipped, with a message, past that or on
# failure — the bench then runs without it. SKIP_S3SYNC=1 skips it outright.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/.tools/bin"
cargo_root="$root/.tools/cargo"
mkdir -p "$bin" "$cargo_root"

# name | go install package@version
go_pins=(
  "mc|github.com/minio/mc@v0.0.0-20250313080218-cf909e1063a9"
)
s3sync_version=1.62.4

for entry in "${go_pins[@]}"; do
  IFS='|' read -r name pin <<<"$entry"
  target="$bin/$name"
  stamp="$bin/$name.pin"
  if [[ -x $target && -f $stamp && $(<"$stamp") == "$pin" ]]; then
    echo "$name: up to date ($pin)"
    continue
  fi
  command -v go >/dev/null 2>&1 || {
    echo "build-peers: Go is needed to build $name" >&2
    exit 1
  }
  echo "$name: building $pin (log: .tools/build-$name.log)"
  rm -f "$stamp"
  # Build into a scratch dir and move into place so an interrupted build never leaves a
  # half-written binary behind a valid-looking name.
  scratch=$(mktemp -d "$root/.tools/build-$name.XXXXXX")
  start=$SECONDS
  if ! GOBIN="$scratch" go install "$pin" >"$root/.tools/build-$name.log" 2>&1; then
    rm -rf "$scratch"
    tail -n 20 "$root/.tools/build-$name.log" >&2
    echo "build-peers: go install $pin failed" >&2
    exit 1
  fi
  mv -f "$scratch/$name" "$target"
  rm -rf "$scratch"
  echo "$pin" >"$stamp"
  echo "$name: built in $((SECONDS - start))s"
done

s3sync_pin="s3sync@$s3sync_version"
s3sync_stamp="$cargo_root/s3sync.pin"
if [[ ${SKIP_S3SYNC:-0} == 1 ]]; then
  echo "s3sync: skipped (SKIP_S3SYNC=1)"
elif [[ -x $cargo_root/bin/s3sync && -f $s3sync_stamp && $(<"$s3sync_stamp") == "$s3sync_pin" ]]; then
  echo "s3sync: up to date ($s3sync_pin)"
elif ! command -v cargo >/dev/null 2>&1; then
  echo "s3sync: skipped (cargo not installed)"
else
  limit=${S3SYNC_BUILD_TIMEOUT:-900}
  echo "s3sync: cargo install $s3sync_pin --locked, at most ${limit}s (log: .tools/build-s3sync.log)"
  rm -f "$s3sync_stamp"
  start=$SECONDS
  # A kept target dir: a build cut short by the time limit goes on where it stopped next time.
  if CARGO_TARGET_DIR="$root/.tools/cargo-target" timeout "$limit" cargo install s3sync \
    --version "$s3sync_version" --locked --root "$cargo_root" >"$root/.tools/build-s3sync.log" 2>&1; then
    echo "$s3sync_pin" >"$s3sync_stamp"
    rm -rf "$root/.tools/cargo-target"
    echo "s3sync: built in $((SECONDS - start))s"
  else
    tail -n 5 "$root/.tools/build-s3sync.log" >&2
    echo "s3sync: not built (failed or over ${limit}s); the bench runs without it"
  fi
fi
