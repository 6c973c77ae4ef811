#!/usr/bin/env bash
# Installs the system packages fp4sim needs on Debian/Ubuntu, only those that
# are missing (idempotent). Used by scripts/run.sh and scripts/test.sh.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libmpfr-dev libgmp-dev libssl-dev libcjson-dev
      librandom123-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "fp4sim: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
