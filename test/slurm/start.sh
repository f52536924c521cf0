#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine for the tests (as root; Debian's slurm-wlm and
# munge): munged, slurmctld and slurmd, with test/slurm/slurm.conf.template filled in for this
# host and its state under $MW_SLURM_STATE (default /tmp/mw-slurm). Idempotent: a daemon already
# running is left alone. Waits until the node takes jobs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="${MW_SLURM_STATE:-/tmp/mw-slurm}"
conf="${SLURM_CONF:-/etc/slurm/slurm.conf}"
host="$(hostname -s)"
mkdir -p "$state/ctld" "$state/slurmd" "$(dirname "$conf")"
sed -e "s|@HOST@|$host|g" -e "s|@STATE@|$state|g" "$here/slurm.conf.template" >"$conf"

if [ ! -s /etc/munge/munge.key ]; then
  /usr/sbin/mungekey -c -f -k /etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 600 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
if ! munge -n </dev/null >/dev/null 2>&1; then
  if id munge >/dev/null 2>&1; then runuser -u munge -- /usr/sbin/munged; else /usr/sbin/munged --force; fi
fi

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# -c: a fresh controller forgets the jobs and node states of an earlier session.
running "$state/slurmctld.pid" || /usr/sbin/slurmctld -c -f "$conf"
running "$state/slurmd.pid" || /usr/sbin/slurmd -f "$conf"

for _ in $(seq 60); do
  if sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "slurm: one-node cluster up on $host (config $conf, state $state)"
    exit 0
  fi
  sleep 1
done
echo "slurm: the node did not come up; see $state/slurmctld.log and $state/slurmd.log" >&2
sinfo >&2 || true
exit 1
