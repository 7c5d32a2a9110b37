#!/usr/bin/env bash
# Makes sure the services the scale-out tests use are up: PostgreSQL on 127.0.0.1:5432 and
# Redis on 127.0.0.1:6379. Both are installed on every development and CI machine; this only
# starts them (with the machine's documented commands) when they are not answering.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! listening 5432; then
    echo "services: starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi
if ! listening 6379; then
    echo "services: starting Redis" >&2
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
for _ in $(seq 1 30); do
    if listening 5432 && listening 6379; then exit 0; fi
    sleep 1
done
echo "services: PostgreSQL (5432) or Redis (6379) is not answering; the scale-out tests need both" >&2
exit 1
