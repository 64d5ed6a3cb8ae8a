#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests, from Debian's packages (the test script
# installs `postgresql`): initdb + pg_ctl in DIR, on a free port on 127.0.0.1 only, run as
# the `postgres` user when started as root (the server refuses root), fsync off (a killed
# server keeps every acknowledged commit: the kernel holds them; only a machine crash could
# lose them, so synchronous_commit stays on). Nothing is downloaded.
#   pg-cluster.sh start DIR [PID]   prints postgresql://postgres@127.0.0.1:PORT; with PID,
#                                   the cluster stops and DIR is removed when PID ends
#   pg-cluster.sh restart DIR       an immediate stop (as a crash) and a start on the same port
#   pg-cluster.sh stop DIR
#   pg-cluster.sh createdb DIR NAME creates database NAME, prints its URL
#   pg-cluster.sh sql DIR DB SQL    runs SQL in database DB, prints the rows (unaligned)
set -euo pipefail
cmd="$1" dir="$2"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$bin/initdb" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 69; }
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
start() {
    as_pg "$bin/pg_ctl" -D "$dir/data" -o "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
        -l "$dir/log" -w -t 30 start >/dev/null
}
case "$cmd" in
start)
    mkdir -p "$dir"
    chmod 755 "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
    for _ in 1 2 3 4 5; do
        port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
        echo "$port" > "$dir/port"
        if start 2>/dev/null; then
            if [ -n "${3:-}" ]; then
                watched="$3"
                setsid bash -c "while kill -0 $watched 2>/dev/null; do sleep 1; done; \
                    $(declare -f as_pg); as_pg '$bin/pg_ctl' -D '$dir/data' -m immediate stop >/dev/null 2>&1; rm -rf '$dir'" \
                    </dev/null >/dev/null 2>&1 &
            fi
            echo "postgresql://postgres@127.0.0.1:$port"
            exit 0
        fi
    done
    echo "could not start PostgreSQL; its log:" >&2
    cat "$dir/log" >&2
    exit 1
    ;;
restart)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null
    start
    ;;
stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null
    ;;
createdb)
    url="postgresql://postgres@127.0.0.1:$(cat "$dir/port")"
    "$bin/psql" "$url/postgres" -qc "CREATE DATABASE \"$3\"" >/dev/null
    echo "$url/$3"
    ;;
sql)
    "$bin/psql" "postgresql://postgres@127.0.0.1:$(cat "$dir/port")/$3" -tAqc "$4"
    ;;
*)
    echo "usage: pg-cluster.sh start|restart|stop DIR [PID] | createdb DIR NAME | sql DIR DB SQL" >&2
    exit 64
    ;;
esac
