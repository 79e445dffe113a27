#!/usr/bin/env bash
# Installs the system libraries spiral-gym needs, where they are missing (Debian/Ubuntu):
#   libcairo2-dev, pkg-config  - to compile pycairo (it has no Linux wheel)
#   libegl1, libgl1, libgl1-mesa-dri, libosmesa6 - offscreen MuJoCo rendering (EGL or OSMesa)
#                                          without a display or GPU
set -euo pipefail
packages=(libcairo2-dev pkg-config libegl1 libgl1 libgl1-mesa-dri libosmesa6)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
  echo "spiral-gym needs these system packages: ${missing[*]} (or your system's equivalents)." >&2
  echo "No apt-get here: install them with your package manager, then run make again." >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
