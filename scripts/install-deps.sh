#!/usr/bin/env bash
# Installs the system packages Latchkey needs to build (and, with --test, to run its tests;
# with --fuzz, the pinned cargo-fuzz for scripts/fuzz.sh), only when something is missing
# (idempotent: a second run changes nothing and touches no
# network). Debian/Ubuntu, as root.
set -euo pipefail

packages=(build-essential pkg-config libssl-dev ca-certificates curl)
if [ "${1:-}" = "--test" ]; then
  # openssl: TLS test certificates; postgresql-client: pg_dump for the at-rest scans;
  # chromium + node: browser tests (Debian's Chromium, never a downloaded browser);
  # oathtool: TOTP interoperability (codes from another implementation);
  # xmlsec1 + python3-pip: the SAML test IdP (tests/saml, pysaml2 signs through xmlsec1).
  # haproxy: the topology test (three nodes behind it, crates/latchkey/tests/topology.rs).
  packages+=(openssl postgresql-client chromium oathtool xmlsec1 haproxy)
  command -v python3 >/dev/null 2>&1 || packages+=(python3)
  python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)
  command -v node >/dev/null 2>&1 || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: system packages present"
fi

# The SAML test IdP's Python packages (pinned), only when they are not importable yet.
if [ "${1:-}" = "--test" ]; then
  if python3 -c 'import saml2, lxml' >/dev/null 2>&1; then
    echo "install-deps: pysaml2 and lxml present"
  else
    req="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/saml/requirements.txt"
    echo "install-deps: pip-installing $req"
    python3 -m pip install -q -r "$req" 2>/dev/null \
      || python3 -m pip install -q --break-system-packages -r "$req"
  fi
fi

# The Rust toolchain comes from rustup (Debian's cargo is too old for edition 2024).
if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: cargo not found. Install Rust >= 1.89 with rustup (https://rustup.rs) and retry." >&2
  exit 1
fi
need="1.89"
have=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
  echo "install-deps: rustc $have is older than $need; run 'rustup update stable'." >&2
  exit 1
fi
echo "install-deps: rustc $have"

# cargo-fuzz (pinned, built from crates.io into a cache) for the fuzz targets under fuzz/:
# scripts/fuzz.sh runs them with libFuzzer on the stable toolchain. g++ (build-essential)
# compiles libFuzzer itself.
if [ "${1:-}" = "--fuzz" ]; then
  fuzz_version=0.13.1
  fuzz_root="$HOME/.cache/latchkey-tools/cargo-fuzz-$fuzz_version"
  if [ -x "$fuzz_root/bin/cargo-fuzz" ]; then
    echo "install-deps: cargo-fuzz $fuzz_version present"
  else
    echo "install-deps: cargo install cargo-fuzz $fuzz_version"
    cargo install --quiet --locked cargo-fuzz --version "$fuzz_version" --root "$fuzz_root"
  fi
fi
