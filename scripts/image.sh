#!/usr/bin/env bash
# Builds the container image from the repository's Dockerfile with podman and checks it: size,
# non-root user, read-only root filesystem, `/readyz` answering, the health check passing, and
# no shell inside. These machines cannot pull from a public registry, so the Dockerfile's build
# image (docker.io/library/rust:…-bookworm) is made here first from Debian packages
# (mmdebstrap) and this machine's Rust toolchain, under the name the Dockerfile uses; it also
# trusts this machine's local CAs (/usr/local/share/ca-certificates: an egress proxy here), so
# cargo can fetch crates, and the image built on it carries them too: a test image, not a
# release.
# Usage: bash scripts/image.sh   (prints "image ok: SIZE MB" at the end)
set -euo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null 2>&1; }
if ! need podman || ! need mmdebstrap; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman mmdebstrap uidmap >/dev/null
fi
[ -x "$HOME/.cargo/bin/rustc" ] && export PATH="$HOME/.cargo/bin:$PATH"
rust_image=$(sed -n 's/^ARG RUST_IMAGE=//p' Dockerfile)
tag=localhost/latchkey:ci
if ! podman image exists "$rust_image"; then
    sysroot=$(rustc --print sysroot)
    echo "== making $rust_image from Debian bookworm and $(rustc --version)"
    mmdebstrap --quiet --variant=minbase --include=ca-certificates,gcc,libc6-dev,libssl-dev,pkg-config \
        --customize-hook='copy-in /usr/local/share/ca-certificates /usr/local/share' \
        --customize-hook='chroot "$1" update-ca-certificates --fresh >/dev/null' \
        --customize-hook="mkdir -p \"\$1/usr/local/rust\" && tar -C '$sysroot' --exclude=./share --exclude=./lib/rustlib/src -cf - . | tar -C \"\$1/usr/local/rust\" -xf -" \
        bookworm - http://deb.debian.org/debian \
        | podman import \
            --change 'ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV CARGO_HOME=/usr/local/cargo' \
            - "$rust_image" >/dev/null
fi
# Some machines (this one: cgroup v1 and v2 mounted together, no CAP_SYS_RESOURCE) refuse
# podman's defaults; runc on cgroupfs with the host's own limits works there.
if ! podman run --rm "$rust_image" true >/dev/null 2>&1; then
    conf=$(mktemp)
    nofile=$(ulimit -Hn); nproc=16384
    cat >"$conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
    export CONTAINERS_CONF="$conf"
    need runc || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null
    podman run --rm "$rust_image" true
fi
echo "== podman build"
started=$(date +%s)
podman build --quiet --layers --format docker -t "$tag" --build-arg REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" . >/dev/null
echo "built in $(( $(date +%s) - started )) s"
size=$(podman image inspect "$tag" --format '{{.Size}}')
mb=$(( size / 1000000 ))
echo "image size: $mb MB"
[ "$mb" -lt 40 ] || { echo "image is $mb MB, over the 40 MB target" >&2; exit 1; }
user=$(podman image inspect "$tag" --format '{{.Config.User}}')
[ "$user" = "65532:65532" ] || { echo "image runs as '$user', not 65532" >&2; exit 1; }
# No shell, no package manager in the final image.
if podman run --rm --entrypoint /bin/sh "$tag" -c true 2>/dev/null; then
    echo "the image has a shell" >&2; exit 1
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
name=latchkey-image-check-$$
cleanup() { podman rm -f "$name" >/dev/null 2>&1 || true; podman volume rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
podman volume create "$name" >/dev/null
podman run -d --name "$name" --read-only --cap-drop=ALL --security-opt=no-new-privileges \
    -v "$name:/data" -p "127.0.0.1:$port:8080" \
    -e LATCHKEY_PUBLIC_URL="http://localhost:$port" -e LATCHKEY_ALLOW_INSECURE_HTTP=1 \
    "$tag" >/dev/null
for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then break; fi
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/readyz"; echo
podman healthcheck run "$name"
echo "health check: $(podman inspect "$name" --format '{{.State.Health.Status}}')"
# The image's own CLI against its own database: a tenant, then its discovery document.
podman exec "$name" /usr/local/bin/latchkey tenant create acme >/dev/null
curl -fsS "http://127.0.0.1:$port/t/acme/.well-known/openid-configuration" | grep -q '"issuer"'
start=$(date +%s%N)
podman stop -t 10 "$name" >/dev/null
echo "stopped in $(( ($(date +%s%N) - start) / 1000000 )) ms, exit $(podman inspect "$name" --format '{{.State.ExitCode}}')"
[ "$(podman inspect "$name" --format '{{.State.ExitCode}}')" = 0 ]
echo "image ok: $mb MB"
