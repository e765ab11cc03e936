# Sourced by ./marid and scripts/test: makes sure Python, the system packages and .venv are in place.
# As root (CI, containers) it installs what is missing with apt-get; otherwise it says what to install.

MARID_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_apt_updated=""

marid_die() { echo "marid: $*" >&2; exit 1; }

marid_python() {
  local candidate
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  marid_die "Marid needs Python 3.11 or newer (python3 --version shows what you have)."
}

# marid_need_packages PKG... : install the Debian packages that are missing (root) or name them (not root).
marid_need_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    marid_die "missing system packages: ${missing[*]}. Install them with: sudo apt-get install ${missing[*]}"
  fi
  echo "Installing system packages: ${missing[*]} ..." >&2
  if [ -z "$_apt_updated" ]; then apt-get update -qq >&2 || true; _apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || marid_die "apt-get could not install: ${missing[*]}"
}

# marid_venv [EXTRAS] : create or refresh .venv when pyproject.toml (or the extras) changed.
marid_venv() {
  local extras="${1:-}" py stamp want
  py="$(marid_python)"
  want="$(cat "$MARID_ROOT/pyproject.toml" "$MARID_ROOT/agent-runtime/pyproject.toml" | sha256sum | cut -c1-16)-${extras}"
  stamp="$MARID_ROOT/.venv/.marid-installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  if ! "$py" -m venv --help >/dev/null 2>&1 || ! "$py" -c 'import ensurepip' 2>/dev/null; then
    marid_need_packages python3-venv
  fi
  [ -x "$MARID_ROOT/.venv/bin/python" ] || "$py" -m venv "$MARID_ROOT/.venv"
  echo "Installing Marid into .venv ..." >&2
  local target="$MARID_ROOT"
  [ -n "$extras" ] && target="$MARID_ROOT[$extras]"
  # The server and, beside it, the agent runtime (its own distribution: what a sandbox runs).
  "$MARID_ROOT/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$target" -e "$MARID_ROOT/agent-runtime" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  "$MARID_ROOT/.venv/bin/python" -c 'import app, worker, agent_runtime' 2>/dev/null || marid_die "installing Marid failed (see above)"
  echo "$want" > "$stamp"
}
