# Sourced by the install-*.sh scripts: install Debian packages idempotently.
#
#   apt_install_missing NAME PACKAGE...
#
# installs, with one apt-get update and one apt-get install, only the packages
# that are not installed yet; NAME prefixes the messages. Runs apt-get
# directly as root, through sudo otherwise, and fails clearly without either
# or without apt-get (these scripts are for Debian 12).

apt_is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_install_missing() {
    local name=$1 package
    shift
    local missing=()
    for package in "$@"; do
        apt_is_installed "$package" || missing+=("$package")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "$name: all $# packages already installed" >&2
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$name: missing packages (${missing[*]}) and no apt-get: this script is for Debian 12" >&2
        return 1
    fi
    local as_root=()
    if [[ $(id -u) -ne 0 ]]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "$name: missing packages (${missing[*]}); run as root or install sudo" >&2
            return 1
        fi
        as_root=(sudo)
    fi
    echo "$name: installing ${missing[*]}" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Print the header comment of `script` (lines 2 to `last`) without the "# ".
apt_usage() { sed -n "2,${2}s/^# \{0,1\}//p" "$1"; }
