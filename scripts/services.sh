#!/usr/bin/env bash
# Starts every server the tests use, as plain local processes on loopback, and exports the
# SATCHEL_TEST_* variables that point the tests at them. Idempotent: a server that already
# answers is left alone. Installs memcached, Chromium and ChromeDriver (Debian) and
# SecantusDB, itsdangerous and msgspec (PyPI) when missing, and the two venvs of the Flask
# reference apps (scripts/flask-venvs.sh).
# A server that cannot be installed or started is reported and its variable left unset:
# locally its tests then skip with a printed reason; under CI=true this script fails.
#
#   source scripts/services.sh      # start, and export the variables into this shell
#   scripts/services.sh             # start only; prints the variables
#   scripts/services.sh stop        # stop what this script started (not the machine's
#                                   # PostgreSQL, MariaDB or Redis on 6379)
#
# Servers:
#   Redis standalone   127.0.0.1:6379 (db 15)                  SATCHEL_TEST_REDIS_URL
#   Redis Cluster      127.0.0.1:7101-7103, three masters       SATCHEL_TEST_REDIS_CLUSTER
#   Redis Sentinel     master 127.0.0.1:6390, sentinel :26390   SATCHEL_TEST_REDIS_SENTINEL
#   memcached          127.0.0.1:11211 and 127.0.0.1:11212      SATCHEL_TEST_MEMCACHED
#   PostgreSQL         127.0.0.1:5432, database test            SATCHEL_TEST_POSTGRES_URL
#   MariaDB            127.0.0.1:3306, database test            SATCHEL_TEST_MYSQL_URL
#   SecantusDB (MongoDB wire protocol) 127.0.0.1:27018          SATCHEL_TEST_MONGODB_URL
#   ChromeDriver (headless Chromium)   127.0.0.1:9515           SATCHEL_TEST_WEBDRIVER,
#                                                               SATCHEL_TEST_CHROMIUM
# Not servers: the Python interpreters of the Flask reference apps
#   (crates/satchel-cli/tests/flask/), Flask-Session 0.8       SATCHEL_TEST_FLASK
#   and Flask Unchained 0.9 on Flask-Session 0.6               SATCHEL_TEST_FLASK_LEGACY

_satchel_services() {
  local here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  local run=/tmp/satchel-services
  mkdir -p "$run"
  local log="$run/services.log"

  _say() { printf '[services] %s\n' "$*" >&2; }
  _port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  _wait_port() { # port what
    local i
    for i in $(seq 1 100); do _port_open "$1" && return 0; sleep 0.1; done
    _say "$2 did not start on port $1 (see $log)"; return 1
  }

  if [[ "${1:-}" == stop ]]; then
    local p
    for p in 7101 7102 7103 6390 26390; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
    pkill -f "memcached -p 1121[12] " 2>/dev/null || true
    pkill -f "secantusd-py --host 127.0.0.1 --port 27018" 2>/dev/null || true
    pkill -f 'chromedriver --port=9515$' 2>/dev/null || true
    _say "stopped"; return 0
  fi

  local failed=()
  _failed() { _say "$1 unavailable: its tests will skip (fail under CI=true)"; failed+=("$1"); }

  # --- the machine's own services ---------------------------------------------------------
  _postgres() {
    pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && return 0
    command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]] || { _say "PostgreSQL is not installed"; return 1; }
    _say "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start >>"$log" 2>&1 || true
    _wait_port 5432 PostgreSQL
  }
  _mariadb() {
    mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && return 0
    [[ -x /usr/sbin/mariadbd ]] || { _say "MariaDB is not installed"; return 1; }
    _say "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd >>"$log" 2>&1 || true
    _wait_port 3306 MariaDB
  }
  _redis() {
    redis-cli -p 6379 ping >/dev/null 2>&1 && return 0
    command -v redis-server >/dev/null || { _say "Redis is not installed"; return 1; }
    _say "starting Redis on 6379"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log >>"$log" 2>&1 || true
    _wait_port 6379 Redis
  }

  # --- Redis Cluster: three masters -----------------------------------------------------------
  _redis_cluster() {
    redis-cli -p 7101 cluster info 2>/dev/null | grep -q cluster_state:ok && return 0
    command -v redis-server >/dev/null || return 1
    _say "starting a three-master Redis Cluster on 7101-7103"
    local p
    for p in 7101 7102 7103; do
      redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
      rm -rf "$run/cluster-$p"; mkdir -p "$run/cluster-$p"
      redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
        --cluster-node-timeout 2000 --save "" --appendonly no --dir "$run/cluster-$p" \
        --daemonize yes --logfile "$run/cluster-$p/redis.log" >>"$log" 2>&1
      _wait_port "$p" "Redis Cluster node" || return 1
    done
    redis-cli --cluster create 127.0.0.1:7101 127.0.0.1:7102 127.0.0.1:7103 --cluster-replicas 0 \
      --cluster-yes >>"$log" 2>&1 || { _say "cluster create failed (see $log)"; return 1; }
    local i
    for i in $(seq 1 100); do
      redis-cli -p 7101 cluster info 2>/dev/null | grep -q cluster_state:ok && return 0
      sleep 0.1
    done
    _say "the cluster did not become ready (see $log)"; return 1
  }

  # --- Redis Sentinel: one master, one sentinel -------------------------------------------------
  _redis_sentinel() {
    command -v redis-server >/dev/null || return 1
    if ! redis-cli -p 6390 ping >/dev/null 2>&1; then
      _say "starting the Redis master for Sentinel on 6390"
      mkdir -p "$run/sentinel-master"
      redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --dir "$run/sentinel-master" \
        --daemonize yes --logfile "$run/sentinel-master/redis.log" >>"$log" 2>&1
      _wait_port 6390 "Redis master" || return 1
    fi
    if ! redis-cli -p 26390 ping >/dev/null 2>&1; then
      _say "starting Redis Sentinel on 26390"
      mkdir -p "$run/sentinel"
      cat >"$run/sentinel/sentinel.conf" <<CONF
port 26390
bind 127.0.0.1
daemonize yes
logfile $run/sentinel/sentinel.log
dir $run/sentinel
sentinel monitor satchel-master 127.0.0.1 6390 1
sentinel down-after-milliseconds satchel-master 2000
sentinel failover-timeout satchel-master 5000
CONF
      redis-server "$run/sentinel/sentinel.conf" --sentinel >>"$log" 2>&1
      _wait_port 26390 "Redis Sentinel" || return 1
    fi
  }

  # --- memcached: two servers, installed from Debian when missing ----------------------------------
  _memcached() {
    if ! command -v memcached >/dev/null; then
      _say "installing memcached (Debian)"
      (apt-get update -qq && apt-get install -y -qq memcached) >>"$log" 2>&1 || { _say "memcached install failed (see $log)"; return 1; }
    fi
    local p
    for p in 11211 11212; do
      if ! _port_open "$p"; then
        _say "starting memcached on $p"
        memcached -p "$p" -l 127.0.0.1 -U 0 -u root -m 64 -d >>"$log" 2>&1
        _wait_port "$p" memcached || return 1
      fi
    done
  }

  # --- SecantusDB: the MongoDB wire protocol, installed from PyPI when missing ---------------------
  _secantus() {
    if ! command -v secantusd-py >/dev/null; then
      _say "installing SecantusDB 0.7.0b3 (PyPI)"
      python3 -m pip install -q "SecantusDB==0.7.0b3" >>"$log" 2>&1 || { _say "SecantusDB install failed (see $log)"; return 1; }
      hash -r
    fi
    if _port_open 27018; then
      [[ "${CI:-}" == true ]] || return 0
      # Under CI, a fresh server: it keeps everything in memory, an oplog included, and
      # grows slower with every run that went before.
      _say "restarting SecantusDB on 27018 (CI: a fresh, empty server)"
      pkill -f "secantusd-py --host 127.0.0.1 --port 27018" 2>/dev/null || true
      local i
      for i in $(seq 1 100); do _port_open 27018 || break; sleep 0.1; done
    fi
    _say "starting SecantusDB on 27018"
    setsid secantusd-py --host 127.0.0.1 --port 27018 --storage-path :memory: \
      >"$run/secantusd.log" 2>&1 < /dev/null &
    disown 2>/dev/null || true
    _wait_port 27018 SecantusDB
  }

  # --- itsdangerous and msgspec, Flask-Session's signer and serializer, for the cross-check --
  # --- of Flask's formats -----------------------------------------------------------------
  _itsdangerous() {
    python3 -c "import itsdangerous, msgspec" 2>/dev/null && return 0
    _say "installing itsdangerous 2.2.0 and msgspec 0.22.0 (PyPI)"
    python3 -m pip install -q "itsdangerous==2.2.0" "msgspec==0.22.0" >>"$log" 2>&1 \
      || { _say "itsdangerous or msgspec install failed (see $log)"; return 1; }
  }

  # --- the Flask reference apps' venvs (Flask-Session 0.8; Flask Unchained 0.9), for the ----
  # --- Flask interop tests; scripts/flask-venvs.sh builds them, or reuses them unchanged ---
  _flask_venvs() { # dir
    SATCHEL_FLASK_VENVS="$1" "$here/flask-venvs.sh" >/dev/null
  }

  # --- ChromeDriver and headless Chromium, for the browser test; from Debian when missing -------
  _webdriver_ready() { curl -sf -m 2 http://127.0.0.1:9515/status 2>/dev/null | grep -q '"ready": *true'; }
  _chromedriver() {
    if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
      _say "installing Chromium and ChromeDriver (Debian)"
      (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >>"$log" 2>&1 \
        || { _say "Chromium install failed (see $log)"; return 1; }
      hash -r
    fi
    _webdriver_ready && return 0
    if _port_open 9515; then _say "port 9515 is taken by something that is not ChromeDriver"; return 1; fi
    _say "starting ChromeDriver on 9515"
    setsid chromedriver --port=9515 >"$run/chromedriver.log" 2>&1 < /dev/null &
    disown 2>/dev/null || true
    local i
    for i in $(seq 1 100); do _webdriver_ready && return 0; sleep 0.1; done
    _say "ChromeDriver did not start on port 9515 (see $run/chromedriver.log)"; return 1
  }

  if _redis; then export SATCHEL_TEST_REDIS_URL="redis://127.0.0.1:6379/15"; else _failed Redis; fi
  if _redis_cluster; then
    export SATCHEL_TEST_REDIS_CLUSTER="redis+cluster://127.0.0.1:7101,127.0.0.1:7102,127.0.0.1:7103"
  else _failed "Redis Cluster"; fi
  if _redis_sentinel; then
    export SATCHEL_TEST_REDIS_SENTINEL="redis+sentinel://127.0.0.1:26390/satchel-master"
  else _failed "Redis Sentinel"; fi
  if _memcached; then export SATCHEL_TEST_MEMCACHED="127.0.0.1:11211,127.0.0.1:11212"; else _failed memcached; fi
  if _postgres; then export SATCHEL_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/test"; else _failed PostgreSQL; fi
  if _mariadb; then export SATCHEL_TEST_MYSQL_URL="mysql://root@127.0.0.1:3306/test"; else _failed MariaDB; fi
  _itsdangerous || _failed "itsdangerous and msgspec"
  local venvs="${SATCHEL_FLASK_VENVS:-$HOME/.cache/satchel/flask-venvs}"
  if _flask_venvs "$venvs"; then
    export SATCHEL_TEST_FLASK="$venvs/fs08/bin/python"
    export SATCHEL_TEST_FLASK_LEGACY="$venvs/legacy/bin/python"
  else _failed "Flask reference apps"; fi
  if _secantus; then export SATCHEL_TEST_MONGODB_URL="mongodb://127.0.0.1:27018"; else _failed SecantusDB; fi
  if _chromedriver; then
    export SATCHEL_TEST_WEBDRIVER="http://127.0.0.1:9515"
    SATCHEL_TEST_CHROMIUM="$(command -v chromium)"; export SATCHEL_TEST_CHROMIUM
  else _failed ChromeDriver; fi

  if (( ${#failed[@]} == 0 )); then
    _say "all services up"
  elif [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; then
    _say "unavailable under CI=true: ${failed[*]}"; return 1
  else
    _say "unavailable: ${failed[*]}; their tests skip with a printed reason"
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  _satchel_services "$@"
  env | grep '^SATCHEL_TEST_' | sed 's/^/export /'
else
  _satchel_services "$@"
fi
