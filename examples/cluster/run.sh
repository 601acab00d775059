#!/usr/bin/env bash
# Starts a local ssekit cluster: one redis-server and three nodes
# (adapters/redis/cmd/ssekit-cluster-node) on loopback ports.
#
#   examples/cluster/run.sh           run until Ctrl-C
#   examples/cluster/run.sh --smoke   start, check delivery across nodes,
#                                     replay on another node and presence,
#                                     then stop (exit status says how it went)
#
# Ports: REDIS_PORT (default 6390) and NODE_PORTS (default "8081 8082 8083").
# SHARDS (default 0: the node's default, 1 on a single Redis) is the number
# of streams of the event log, passed to every node as -shards.
# Needs redis-server (apt-get install redis-server), go and curl.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REDIS_PORT=${REDIS_PORT:-6390}
read -r -a NODE_PORTS <<<"${NODE_PORTS:-8081 8082 8083}"
SHARDS=${SHARDS:-0}
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1

for tool in redis-server go curl; do
	command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/bin/$tool" ] || {
		echo "cluster: $tool not found" >&2
		exit 1
	}
done

WORK=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "cluster: building the node"
(cd "$ROOT/adapters/redis" && go build -o "$WORK/ssekit-cluster-node" ./cmd/ssekit-cluster-node)

# No persistence, for a demo. In production give Redis appendonly yes (or
# a replica with Sentinel): see adapters/redis/README.md.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
	--dir "$WORK" --loglevel warning >"$WORK/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
	(exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
	sleep 0.05
done

for port in "${NODE_PORTS[@]}"; do
	"$WORK/ssekit-cluster-node" -addr "127.0.0.1:$port" -redis "127.0.0.1:$REDIS_PORT" -shards "$SHARDS" \
		>"$WORK/node-$port.log" 2>&1 &
	pids+=($!)
done
for port in "${NODE_PORTS[@]}"; do
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
		sleep 0.05
	done
	curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null || {
		echo "cluster: node on $port did not start:" >&2
		cat "$WORK/node-$port.log" >&2
		exit 1
	}
done
A=${NODE_PORTS[0]} B=${NODE_PORTS[1]} C=${NODE_PORTS[2]}
echo "cluster: redis on 127.0.0.1:$REDIS_PORT, nodes on ${NODE_PORTS[*]}, shards $SHARDS (0: default)"

if [ "$SMOKE" = 0 ]; then
	cat <<USAGE

Subscribe on one node:
  curl -N 'http://127.0.0.1:$A/events?topic=news&user=2b1c1a9e-8a57-4a47-9a77-3c1d7a1c0b1e'
Publish on another:
  curl -X POST 'http://127.0.0.1:$C/publish?topic=news&type=headline' -d 'hello from $C'
  curl -X POST 'http://127.0.0.1:$B/publish?user=2b1c1a9e-8a57-4a47-9a77-3c1d7a1c0b1e' -d 'just for you'
Publish safely retryable: the same Idempotency-Key, on any node, sends once and answers the first ID:
  curl -X POST -H 'Idempotency-Key: order-42' 'http://127.0.0.1:$A/publish?topic=news' -d 'order 42 shipped'
Resume on a third node, from an ID you were sent:
  curl -N -H 'Last-Event-ID: <id>' 'http://127.0.0.1:$B/events?topic=news'
Who is online, cluster-wide (each node answers from its own view):
  curl 'http://127.0.0.1:$B/presence?user=2b1c1a9e-8a57-4a47-9a77-3c1d7a1c0b1e'
  curl 'http://127.0.0.1:$B/stats'     # "cluster": every node and its connections

Logs in $WORK. Ctrl-C stops everything.
USAGE
	wait
	exit 0
fi

# --- smoke test: bounded, every step has a timeout -------------------------
USER_ID=2b1c1a9e-8a57-4a47-9a77-3c1d7a1c0b1e
fail() {
	echo "smoke: FAIL: $*" >&2
	exit 1
}
curl -sSN --max-time 5 "http://127.0.0.1:$A/events?topic=news&user=$USER_ID" >"$WORK/a.out" 2>/dev/null &
sub=$!
for _ in $(seq 100); do grep -q '^: ok' "$WORK/a.out" 2>/dev/null && break; sleep 0.05; done
id1=$(curl -fsS -X POST -H 'Idempotency-Key: smoke-one' "http://127.0.0.1:$C/publish?topic=news&type=headline" -d 'one' | sed 's/.*"id":"\([^"]*\)".*/\1/')
# The same publish retried on another node with the same key: nothing is
# sent again, and the answer is the first ID.
retry=$(curl -fsS -X POST -H 'Idempotency-Key: smoke-one' "http://127.0.0.1:$B/publish?topic=news&type=headline" -d 'one' | sed 's/.*"id":"\([^"]*\)".*/\1/')
[ "$retry" = "$id1" ] || fail "a retry with the same Idempotency-Key on $B answered $retry, not $id1"
curl -fsS -X POST "http://127.0.0.1:$B/publish?user=$USER_ID&type=dm" -d 'two' >/dev/null
for _ in $(seq 100); do grep -q '^data: two' "$WORK/a.out" && break; sleep 0.05; done
grep -q '^data: one' "$WORK/a.out" || fail "event published on $C did not reach a subscriber on $A"
grep -q '^data: two' "$WORK/a.out" || fail "event published on $B did not reach a subscriber on $A"
[ "$(grep -c '^data: one' "$WORK/a.out")" = 1 ] || fail "'one', retried with its Idempotency-Key, was delivered twice"
echo "smoke: published on $C and $B, delivered on $A; a keyed retry on $B answered $id1 and sent nothing"

online=$(curl -fsS "http://127.0.0.1:$B/presence?user=$USER_ID")
echo "$online" | grep -q '"online":true' || fail "presence on $B: $online"
echo "smoke: presence seen from $B: $online"
# Stats.Cluster: every node counts the three brokers and the connection on
# $A (each learns of the others within milliseconds of their start).
for _ in $(seq 100); do
	stats=$(curl -fsS "http://127.0.0.1:$C/stats")
	echo "$stats" | grep -q '"cluster":{"brokers":3,"connections":1}' && break
	sleep 0.05
done
echo "$stats" | grep -q '"cluster":{"brokers":3,"connections":1}' || fail "cluster stats on $C: $stats"
echo "smoke: $C counts 3 brokers and 1 connection in the cluster"
kill "$sub" 2>/dev/null || true

curl -fsS -X POST "http://127.0.0.1:$A/publish?topic=news" -d 'three' >/dev/null
curl -sSN --max-time 1 -H "Last-Event-ID: $id1" "http://127.0.0.1:$C/events?topic=news" >"$WORK/c.out" 2>/dev/null || true
grep -q '^data: three' "$WORK/c.out" || fail "replay after $id1 on $C missed 'three'"
grep -q '^data: one' "$WORK/c.out" && fail "replay after $id1 on $C repeated 'one'"
echo "smoke: resumed on $C after $id1: replayed exactly what was missed"
echo "smoke: ok"
