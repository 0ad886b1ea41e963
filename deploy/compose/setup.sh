#!/usr/bin/env bash
# Prepares this directory for `docker compose up -d` (or `podman compose up -d`): a master key
# (secrets/master.key, readable only by Latchkey's uid 65532), a self-signed TLS certificate for
# localhost (tls/latchkey.pem, for HAProxy), and .env with fresh database and Redis passwords.
# Nothing that exists is overwritten: the master key above all, since the data is unreadable
# without it. Back up secrets/master.key.
set -euo pipefail
cd "$(dirname "$0")"
umask 077
mkdir -p secrets tls
if [ ! -s secrets/master.key ]; then
    openssl rand -base64 32 > secrets/master.key
    echo "created secrets/master.key: back it up"
fi
# The container reads the secret as uid 65532 (a bind mount keeps the file's owner).
chown 65532:65532 secrets/master.key 2>/dev/null || echo "note: could not chown secrets/master.key to 65532 (rootless engine?); see README.md"
chmod 0400 secrets/master.key
if [ ! -s tls/latchkey.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -keyout tls/key.pem -out tls/cert.pem 2>/dev/null
    cat tls/cert.pem tls/key.pem > tls/latchkey.pem
    rm tls/key.pem
    chmod 0644 tls/latchkey.pem
    echo "created tls/latchkey.pem (self-signed for localhost; replace it with your own)"
fi
if [ ! -s .env ]; then
    {
        echo "POSTGRES_PASSWORD=$(openssl rand -hex 24)"
        echo "REDIS_PASSWORD=$(openssl rand -hex 24)"
        echo "LATCHKEY_LOG=info"
    } > .env
    echo "created .env"
fi
echo "ready: docker compose up -d   (or: podman compose up -d)"
