#!/usr/bin/env bash
# Builds the connector component: ./build.sh [--lean] [OUT.wasm]   (default: connector.wasm here)
#
# Runs `cargo build --release --target wasm32-wasip2` here (target dir ./target, git-ignored) and
# copies target/wasm32-wasip2/release/bss_connector.wasm to OUT.
#
# --lean (before or after OUT) builds for wasm32-unknown-unknown instead (`cargo rustc`), linked by
# the toolchain's wasm-component-ld with no WASI adapter: the component imports only the contract,
# so the host makes each call's instance faster (README.md, "Costs"). It also links a 3 MiB initial
# memory, whose part past the stack and static data (about 2 MiB) the SDK's allocator uses before
# it grows memory (sdk/src/arena.rs). There, println!/eprintln! print nowhere, std's clocks
# and randomness are missing, and a panic's message goes to the host's log (the SDK's export!).
#
# Contract: the SDK compiles the WIT in ./wit (sdk/src/lib.rs: generate! path "../wit"). In the
# repository ./wit is a symlink to ../../wit; in a project made by `bss-host connectors new` it is
# the contract's files. If ./wit is missing but ../../wit is there (the repository layout), the
# symlink is made again. $BSS_WIT_DIR, when set, must be the folder ./wit is (the Rust bindings are
# generated at compile time from a fixed path): point ./wit at it (`ln -sfn DIR wit`) or copy it.
#
# Set CARGO_BUILD_JOBS to limit parallel compile jobs; BSS_CARGO_LOCK=FILE to run cargo under
# `flock FILE` (a shared machine).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
target=wasm32-wasip2
out=""
for argument in "$@"; do
  case "$argument" in
    --lean) target=wasm32-unknown-unknown ;;
    -*)
      echo "build.sh: unknown option $argument; usage: ./build.sh [--lean] [OUT.wasm]" >&2
      exit 2
      ;;
    *)
      if [ -n "$out" ]; then
        echo "build.sh: one output file only (got $out and $argument); usage: ./build.sh [--lean] [OUT.wasm]" >&2
        exit 2
      fi
      out="$argument"
      ;;
  esac
done
out="${out:-connector.wasm}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac
cd "$here"

if [ ! -e ./wit ]; then
  if [ -f ../../wit/world.wit ]; then
    ln -sfn ../../wit wit
  else
    echo "build.sh: no contract found: put the bss:integration wit folder in $here/wit (or a symlink to it)" >&2
    exit 2
  fi
fi
if [ ! -f ./wit/world.wit ]; then
  echo "build.sh: $here/wit has no world.wit; it must be the folder holding the bss:integration .wit files" >&2
  exit 2
fi
if [ -n "${BSS_WIT_DIR:-}" ]; then
  if [ ! -f "$BSS_WIT_DIR/world.wit" ]; then
    echo "build.sh: BSS_WIT_DIR=$BSS_WIT_DIR has no world.wit; it must name the folder holding the bss:integration .wit files" >&2
    exit 2
  fi
  if [ "$(cd "$BSS_WIT_DIR" && pwd -P)" != "$(cd ./wit && pwd -P)" ]; then
    echo "build.sh: the Rust bindings are generated from $here/wit, not from BSS_WIT_DIR=$BSS_WIT_DIR;" >&2
    echo "          point it there first: ln -sfn \"$BSS_WIT_DIR\" \"$here/wit\" (or copy the files), or unset BSS_WIT_DIR" >&2
    exit 2
  fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "build.sh: cargo is missing: install Rust with rustup (https://rustup.rs), then: rustup target add $target" >&2
  exit 127
fi
if command -v rustup >/dev/null 2>&1; then
  # rust-toolchain.toml here names the toolchain and the target; rustup installs them on first use.
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "build.sh: the $target target is missing: rustup target add $target" >&2
    exit 127
  fi
elif [ ! -d "$(rustc --print sysroot)/lib/rustlib/$target" ]; then
  echo "build.sh: the $target target is missing from $(rustc --print sysroot): install it (rustup target add $target)" >&2
  exit 127
fi
lean_link=()
if [ "$target" = wasm32-unknown-unknown ]; then
  # wasm-component-ld ships with the toolchain (for wasm32-wasip2) and links a component from the
  # bindings' type information; told to add no adapter, the component imports only the contract.
  # The link arguments go to this crate's rustc alone (`cargo rustc -- …`), so a RUSTFLAGS in the
  # environment cannot drop them.
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-component-ld
  lean_link=(-- -Clink-arg=--wasi-adapter=none -Clink-arg=--initial-memory=3145728)
fi

cargo=(cargo)
if [ -n "${BSS_CARGO_LOCK:-}" ]; then
  cargo=(flock "$BSS_CARGO_LOCK" cargo)
fi
# --locked: the committed Cargo.lock is the one built (a project made by `connectors new` may
# drop the flag to update dependencies).
if [ ${#lean_link[@]} -gt 0 ]; then
  "${cargo[@]}" rustc --lib --release --locked --target "$target" --target-dir "$here/target" "${lean_link[@]}"
else
  "${cargo[@]}" build --release --locked --target "$target" --target-dir "$here/target"
fi

built="$here/target/$target/release/bss_connector.wasm"
if [ ! -f "$built" ]; then
  echo "build.sh: cargo finished but $built is not there" >&2
  exit 1
fi
mkdir -p "$(dirname "$out")"
cp "$built" "$out"
echo "built $out ($(wc -c <"$out") bytes)"

# Signed when a key is given (`bss-host keys generate --out vendor.key`): BSS_SIGNING_KEY=FILE,
# with bss-host on PATH or named by BSS_HOST_BIN. The signature travels inside the component.
if [ -n "${BSS_SIGNING_KEY:-}" ]; then
  "${BSS_HOST_BIN:-bss-host}" connectors sign "$out" --key "$BSS_SIGNING_KEY"
fi
