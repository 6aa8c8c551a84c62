#!/usr/bin/env bash
# Builds container images from Debian packages on a machine that reaches no image registry.
# Usage: .ci/images.sh [base|redis|postgres|dotnet|all]   (default: all)   — idempotent, needs root.
#   namra-local/debian:bookworm   minimal Debian (base for the service image: pass it as the Dockerfile's base)
#   namra-local/redis:7           redis-server on 127.0.0.1:6379, append-only file fsynced on every write
#   namra-local/postgres:15       PostgreSQL 15, user/password/db postgres/postgres/postgres on 5432
# Run containers with --network host and bind services to 127.0.0.1: bridge networks use private addresses,
# which tests here must never send traffic to. Override the port with the server's own flag, e.g.
#   docker run -d --network host namra-local/redis:7 redis-server --bind 127.0.0.1 --port 16379
#   docker run -d --network host namra-local/postgres:15 /usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/data -p 15432
set -euo pipefail
what=${1:-all}
MIRROR=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

need() { command -v "$1" >/dev/null 2>&1; }
ensure_docker() {
  need debootstrap || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  need dockerd || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; }
  if ! docker info >/dev/null 2>&1; then
    setsid dockerd >/var/log/dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
  fi
}
# rootfs NAME PACKAGES... -> docker image imported from a debootstrap tree
rootfs_image() {
  local tag=$1 include=$2 entry=$3; shift 3
  docker image inspect "$tag" >/dev/null 2>&1 && return 0
  local dir; dir=$(mktemp -d /var/tmp/rootfs.XXXX)
  debootstrap --variant=minbase ${include:+--include=$include} bookworm "$dir" "$MIRROR" >/dev/null
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import ${entry:+--change "$entry"} "$@" - "$tag" >/dev/null
  rm -rf "$dir"
}
ensure_docker
case $what in base|all) rootfs_image namra-local/debian:bookworm "ca-certificates,libicu72,libssl3" "" ;; esac
case $what in redis|all) rootfs_image namra-local/redis:7 "redis-server" \
  'CMD ["redis-server","--bind","127.0.0.1","--protected-mode","no","--dir","/var/lib/redis","--appendonly","yes","--appendfsync","always"]' ;; esac
case $what in postgres|all)
  if ! docker image inspect namra-local/postgres:15 >/dev/null 2>&1; then
    rootfs_image namra-local/postgres-raw:15 "postgresql-15" ""
    docker build -q -t namra-local/postgres:15 - >/dev/null <<'DOCKERFILE'
FROM namra-local/postgres-raw:15
RUN set -e; rm -rf /var/lib/postgresql/15/main; mkdir -p /var/lib/postgresql/data /var/run/postgresql; \
    chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql; \
    su postgres -c "/usr/lib/postgresql/15/bin/initdb -D /var/lib/postgresql/data -U postgres --auth=trust" >/dev/null; \
    echo "listen_addresses='127.0.0.1'" >> /var/lib/postgresql/data/postgresql.conf; \
    su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/data -w start" >/dev/null; \
    su postgres -c "psql -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null; \
    su postgres -c "/usr/lib/postgresql/15/bin/pg_ctl -D /var/lib/postgresql/data -w stop" >/dev/null; \
    sed -i 's/trust/scram-sha-256/' /var/lib/postgresql/data/pg_hba.conf
USER postgres
CMD ["/usr/lib/postgresql/15/bin/postgres","-D","/var/lib/postgresql/data"]
DOCKERFILE
  fi ;;
esac
# The .NET images the server's Dockerfile builds on (SDK_IMAGE, BASE_IMAGE): the Debian base plus this machine's .NET.
dotnet_image() {
  local tag=$1; shift
  docker image inspect "$tag" >/dev/null 2>&1 && return 0
  local root staging container
  root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  staging=$(mktemp -d /var/tmp/dotnet.XXXX)
  mkdir "$staging/dotnet"
  for part in "$@"; do cp -a "$root/$part" "$staging/dotnet/"; done
  container=$(docker create namra-local/debian:bookworm /bin/true)
  docker cp "$staging/dotnet" "$container:/usr/share/dotnet" >/dev/null
  # This machine's trust store, so a build inside reaches NuGet through whatever TLS proxy this machine trusts.
  [ -f /etc/ssl/certs/ca-certificates.crt ] && docker cp /etc/ssl/certs/ca-certificates.crt "$container:/etc/ssl/certs/ca-certificates.crt" >/dev/null
  docker commit --change 'ENV PATH=/usr/share/dotnet:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV DOTNET_ROOT=/usr/share/dotnet' "$container" "$tag" >/dev/null
  docker rm "$container" >/dev/null
  rm -rf "$staging"
}
case $what in dotnet|all)
  command -v dotnet >/dev/null || { echo "the dotnet images need .NET on this machine" >&2; exit 1; }
  dotnet_image namra-local/dotnet-sdk:10.0 dotnet host shared sdk sdk-manifests packs templates LICENSE.txt
  dotnet_image namra-local/dotnet-aspnet:10.0 dotnet host shared LICENSE.txt ;;
esac
docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep namra-local
