#!/usr/bin/env bash
# PostgreSQL backs the store tests on the second backend (test/helpers/postgres.ts): trust auth, user
# postgres, on 127.0.0.1:PORT. Leaves a server that already answers there alone; otherwise installs
# postgresql from Debian when it is missing and starts a throwaway cluster in DIR.
# Usage: .ci/ensure-postgres.sh [PORT (5432)] [DIR (/var/tmp/proxy-ci-postgres)]
set -euo pipefail
port="${1:-5432}"
dir="${2:-/var/tmp/proxy-ci-postgres}"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

if answers; then
  echo "== postgres: already running on 127.0.0.1:$port"
  exit 0
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "== postgres: installing postgresql from Debian"
  # the package's own cluster is not used (it may not even start in a container): ours is below
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null
fi
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
# initdb and postgres refuse to run as root: as root, run them as the package's postgres user
as_owner=()
if [ "$(id -u)" = 0 ]; then as_owner=(runuser -u postgres --); fi

if [ ! -f "$dir/PG_VERSION" ]; then
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  chmod 700 "$dir"
  "${as_owner[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --no-instructions >/dev/null
fi
echo "== postgres: starting on 127.0.0.1:$port (data in $dir)"
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=off -c max_connections=200" start >/dev/null
for _ in $(seq 1 50); do answers && exit 0; sleep 0.1; done
echo "postgres did not start; see $dir/server.log" >&2
exit 1
