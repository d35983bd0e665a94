"""Stand-ins for the Docker Hub images of Docker's example voting app
(examples/voting-app/docker-stack.yml), for machines without Docker Hub (CI, this one).

Pushed to a registry under the Hub names the stack file uses (``library/redis:alpine``...), they
are what a shoald started with ``--registry-mirror http://REGISTRY/`` pulls for that file, so the
stack file deploys unchanged. Each is the demo images' busybox base plus a few shell scripts
doing its original's job, over the same ports and service names, so the app works end to end:

* ``redis:alpine``        the key-value toy of ``shoal/kv`` on 6379 (the vote queue)
* ``postgres:15-alpine``  the same toy on 5432, keys in ``/var/lib/postgresql/data`` (the stack's
                          volume); like postgres, it refuses to start without POSTGRES_PASSWORD
* ``dockersamples/examplevotingapp_vote``    busybox httpd on 80: ``/cgi-bin/vote?vote=a&voter=ID``
                          queues the vote in redis (``SET votes.ID a``)
* ``dockersamples/examplevotingapp_worker``  moves each queued vote from redis to db, one key per
                          voter (a voter's last vote counts, as in the original)
* ``dockersamples/examplevotingapp_result``  busybox httpd on 80: ``/cgi-bin/results`` counts the
                          votes in db: ``Cats: N Dogs: M``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shoal.dev.images import (
    BUSYBOX,
    KV_SERVER_SH,
    KV_SH,
    PATH_ENV,
    DemoImage,
    build_base_layer,
    image,
    regular,
)

__all__ = ["voting_app_images"]

# The commands every stand-in talks to the key-value toy with: one command, then QUIT.
KV_CLIENT_SH = b"""#!/bin/sh
# kv HOST PORT COMMAND...: one command to a key-value toy, its answer on stdout.
host=$1 port=$2; shift 2
printf '%s\\nQUIT\\n' "$*" | timeout 5 nc "$host" "$port"
"""

POSTGRES_SH = b"""#!/bin/sh
# Stand-in for postgres: refuses to start without a password, as postgres's entrypoint does.
if [ -z "$POSTGRES_PASSWORD" ]; then
  echo "Error: Database is uninitialized and superuser password is not specified." >&2
  exit 1
fi
echo "database system is ready to accept connections (user ${POSTGRES_USER:-postgres})"
exec /kv-server.sh
"""

def _httpd_sh(original: str, page: bytes) -> bytes:
    """A stand-in's entry point: ``page`` (a shell here-document body) as /www/index.html, then
    busybox httpd on port 80 until SIGTERM."""
    return (b"#!/bin/sh\n# Stand-in for " + original.encode() + b": its page on port 80.\n"
            b"cat > /www/index.html <<EOF\n" + page + b"EOF\n"
            b"busybox httpd -f -p 80 -h /www &\npid=$!\n"
            b"trap 'kill $pid 2>/dev/null; exit 0' TERM INT\nwait $pid\n")


VOTE_SH = _httpd_sh("examplevotingapp_vote", b"""<!doctype html>
<html><head><title>Cats vs Dogs!</title></head><body>
<form action="/cgi-bin/vote"><button name="vote" value="a">Cats</button>
<button name="vote" value="b">Dogs</button></form>
<p>Processed by container ID $(hostname)</p></body></html>
""")

VOTE_CGI = b"""#!/bin/sh
# GET /cgi-bin/vote?vote=a|b&voter=ID: queue the vote in redis (the original pushes it there).
vote= voter=
for pair in $(echo "$QUERY_STRING" | tr '&' ' '); do
  case "$pair" in
    vote=a|vote=b) vote=${pair#vote=} ;;
    voter=*) voter=${pair#voter=} ;;
  esac
done
voter=$(printf '%s' "${voter:-$REMOTE_ADDR-$$}" | tr -cd 'a-zA-Z0-9_-')
printf 'Content-Type: text/plain\\r\\n\\r\\n'
if [ -z "$vote" ]; then
  echo "vote with ?vote=a (cats) or ?vote=b (dogs)"
elif /kv redis 6379 SET "votes.$voter" "$vote" | grep -q OK; then
  echo "voted $vote as $voter on $(hostname)"
else
  echo "redis is unreachable from $(hostname)"
fi
"""

WORKER_SH = b"""#!/bin/sh
# Stand-in for examplevotingapp_worker: moves each vote queued in redis to db, one key per voter.
trap 'exit 0' TERM INT
echo "Connected to redis and db"
while :; do
  for key in $(/kv redis 6379 KEYS | grep '^votes[.]'); do
    vote=$(/kv redis 6379 GET "$key")
    voter=${key#votes.}
    case "$vote" in a|b) ;; *) continue ;; esac
    if /kv db 5432 SET "$voter" "$vote" | grep -q OK; then
      /kv redis 6379 DEL "$key" >/dev/null
      echo "Processing vote for '$vote' by '$voter'"
    fi
  done
  sleep 1 & wait $!
done
"""

RESULT_SH = _httpd_sh("examplevotingapp_result", b"""<!doctype html>
<html><head><title>Cats vs Dogs -- Result</title></head><body>
<p><a href="/cgi-bin/results">Results</a>, served by $(hostname)</p></body></html>
""")

RESULT_CGI = b"""#!/bin/sh
# GET /cgi-bin/results: the votes in db, counted.
printf 'Content-Type: text/plain\\r\\n\\r\\n'
if ! /kv db 5432 PING | grep -q PONG; then
  echo "db is unreachable from $(hostname)"
  exit 0
fi
a=0 b=0
for voter in $(/kv db 5432 KEYS); do
  case "$(/kv db 5432 GET "$voter")" in
    a) a=$((a + 1)) ;;
    b) b=$((b + 1)) ;;
  esac
done
echo "Cats: $a Dogs: $b"
"""


def voting_app_images(busybox: Path = BUSYBOX) -> list[DemoImage]:
    """The five stand-ins, named as on Docker Hub (``library/redis:alpine``...)."""
    base = build_base_layer(busybox)
    client = regular("kv", KV_CLIENT_SH, 0o755)
    kv = [regular("kv-server.sh", KV_SERVER_SH, 0o755), regular("kv.sh", KV_SH, 0o755)]
    web: dict[str, Any] = {"ExposedPorts": {"80/tcp": {}}}
    note = {"org.opencontainers.image.description": "shoal dev: a stand-in of the voting app's image"}
    return [
        image("library/redis", base, kv, {
            "Env": [PATH_ENV, "KV_PORT=6379"], "Cmd": ["/kv-server.sh"],
            "ExposedPorts": {"6379/tcp": {}}, "Labels": note},
            "redis stand-in: the key-value toy on 6379", tag="alpine"),
        image("library/postgres", base, [*kv, regular("postgres.sh", POSTGRES_SH, 0o755)], {
            "Env": [PATH_ENV, "KV_PORT=5432", "KV_DATA=/var/lib/postgresql/data"],
            "Cmd": ["/postgres.sh"], "ExposedPorts": {"5432/tcp": {}}, "Labels": note},
            "postgres stand-in: the key-value toy on 5432", tag="15-alpine"),
        image("dockersamples/examplevotingapp_vote", base, [
            client, regular("vote.sh", VOTE_SH, 0o755), regular("www/cgi-bin/vote", VOTE_CGI, 0o755)],
            {"Cmd": ["/vote.sh"], **web, "Labels": note}, "vote stand-in: busybox httpd on 80"),
        image("dockersamples/examplevotingapp_worker", base, [
            client, regular("worker.sh", WORKER_SH, 0o755)],
            {"Cmd": ["/worker.sh"], "Labels": note}, "worker stand-in: redis to db"),
        image("dockersamples/examplevotingapp_result", base, [
            client, regular("result.sh", RESULT_SH, 0o755),
            regular("www/cgi-bin/results", RESULT_CGI, 0o755)],
            {"Cmd": ["/result.sh"], **web, "Labels": note}, "result stand-in: busybox httpd on 80"),
    ]
