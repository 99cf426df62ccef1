# Sourced by test.sh and ./spegel demo: installs (idempotently, through apt) the Debian packages that the
# real-parts tests and the local cluster use. Defines install_packages; returns non-zero when something is
# missing and cannot be installed. Callers print their own summaries.

# Command name -> Debian package.
declare -A SPEGEL_NEEDED=(
  [containerd]=containerd
  [ctr]=containerd
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [setsid]=util-linux
  [mount]=mount
  [umount]=mount
)

# install_packages [NAME] [EXTRA ...]: NAME prefixes the messages (default "spegel"); each EXTRA is COMMAND=PACKAGE
# (installed when COMMAND is not on PATH) or a bare PACKAGE with no command to look for (checked with dpkg -s).
install_packages() {
  local who="${1:-spegel}"
  shift || true
  local -A needed=()
  local cmd
  for cmd in "${!SPEGEL_NEEDED[@]}"; do needed[$cmd]="${SPEGEL_NEEDED[$cmd]}"; done
  local extra
  local missing=()
  for extra in "$@"; do
    if [[ "$extra" == *=* ]]; then
      needed[${extra%%=*}]="${extra#*=}"
    else
      dpkg -s "$extra" >/dev/null 2>&1 || missing+=("$extra")
    fi
  done
  for cmd in "${!needed[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${needed[$cmd]}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "$who: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "$who: need root to apt-get install ${missing[*]}" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
