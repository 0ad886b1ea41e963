#!/usr/bin/env bash
# Makes sure the PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) the test suite uses are
# up, starting the local ones if they are installed but stopped. Installs nothing.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! port_open 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
if ! port_open 6379; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "services: starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
fi
for i in $(seq 1 20); do
  port_open 5432 && port_open 6379 && break
  sleep 0.5
done
port_open 5432 && echo "services: PostgreSQL up" || echo "services: PostgreSQL NOT reachable on 127.0.0.1:5432"
port_open 6379 && echo "services: Redis up" || echo "services: Redis NOT reachable on 127.0.0.1:6379"
exit 0
