#!/usr/bin/env bash
# Stop early, with one sentence, when a folder's disk has too little room for what comes next.
#
#   scripts/disk-space.sh GB FOLDER WHAT
#
# Exits 0 when at least GB gigabytes are free on FOLDER's file system; otherwise says how much is free,
# how much WHAT needs and what to do, and exits 1. A full disk otherwise shows up minutes later as an
# "[Errno 28] No space left on device" in the middle of pip's or Docker's output.
set -euo pipefail

need_gb="$1" folder="$2" what="$3"
free_gb=$(df -Pk "$folder" | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
if [ "$free_gb" -lt "$need_gb" ]; then
    echo "==> Only $free_gb GB of disk is free for $folder, and $what needs about $need_gb GB:" \
         "free some space (docker system prune -a, old virtual environments, /tmp) and run this again" >&2
    exit 1
fi
