#!/usr/bin/env bash
# Starts a single-node Slurm (slurmctld + slurmd, no munge, no accounting) for batch tests and
# local use, with its configuration and state under $SELFCAL_SLURM_DIR (default /tmp/selfcal-slurm).
# Idempotent: if the controller already answers, it only prints the SLURM_CONF to export.
# Prints `export SLURM_CONF=...` on its last line.
set -euo pipefail
dir=${SELFCAL_SLURM_DIR:-/tmp/selfcal-slurm}
conf="$dir/slurm.conf"
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
export SLURM_CONF="$conf"

if [ -f "$conf" ] && timeout 5 scontrol ping 2>/dev/null | grep -q "is UP"; then
  echo "start-slurm: already running"
  echo "export SLURM_CONF=$conf"
  exit 0
fi
command -v slurmctld >/dev/null || { echo "start-slurm: slurmctld not installed (apt-get install slurm-wlm)" >&2; exit 1; }

host=$(hostname -s)
node=$(slurmd -C | head -1 | sed 's/UpTime=.*//')
user=$(id -un)
cat > "$conf" <<CONF
ClusterName=selfcal
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=${user}
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerParameters=batch_sched_delay=0
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
ReturnToService=2
KillWait=10
MaxArraySize=10001
MpiDefault=none
$node
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
sleep 0.3
nohup slurmctld -D -f "$conf" > "$dir/log/slurmctld.out" 2>&1 &
nohup slurmd -D -f "$conf" > "$dir/log/slurmd.out" 2>&1 &

deadline=$((SECONDS + 30))
until timeout 3 scontrol ping 2>/dev/null | grep -q "is UP"; do
  if [ $SECONDS -ge $deadline ]; then
    echo "start-slurm: controller did not come up within 30 s; see $dir/log" >&2
    tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmctld.out" >&2 || true
    exit 1
  fi
  pgrep -x slurmctld >/dev/null || { echo "start-slurm: slurmctld died; see $dir/log" >&2; tail -20 "$dir/log/slurmctld.out" "$dir/log/slurmctld.log" >&2 || true; exit 1; }
  sleep 0.2
done
# Wait for the node to be idle.
until timeout 3 sinfo -h -o %t 2>/dev/null | grep -qE "idle|mix|alloc"; do
  if [ $SECONDS -ge $deadline ]; then echo "start-slurm: node not idle within 30 s" >&2; sinfo >&2 || true; exit 1; fi
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 0.3
done
echo "start-slurm: up ($(sinfo -h -o '%P %t %c' | head -1))"
echo "export SLURM_CONF=$conf"
