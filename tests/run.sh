#!/usr/bin/env bash
# Install everything the tests need, then run them. `.ci/run` runs exactly this.
#   - Debian packages: chromium (browser tests), postgresql (the audit store on PostgreSQL),
#     slapd (a throwaway LDAP directory for proxyauth=ldap), haproxy, docker-compose and systemd
#     (they check deploy/'s files), nodejs (runs `guard pac` output)
#   - .venv: guard and pytest;  .venv-clients: the official openai/anthropic SDKs and Playwright,
#     kept apart because they need a newer h11 than mitmproxy allows.
# Arguments go to pytest (e.g. tests/run.sh -k engine -x).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=()
command -v chromium >/dev/null 2>&1 || apt_packages+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || apt_packages+=(postgresql)
command -v curl >/dev/null 2>&1 || apt_packages+=(curl)
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || apt_packages+=(slapd ldap-utils)  # proxyauth=ldap tests
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || apt_packages+=(haproxy)      # tests/deploy
command -v docker-compose >/dev/null 2>&1 || apt_packages+=(docker-compose)
command -v systemd-analyze >/dev/null 2>&1 || apt_packages+=(systemd)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs npm)
# OCR of images: Tesseract with Traditional Chinese data; a CJK font to render the test images.
command -v tesseract >/dev/null 2>&1 || apt_packages+=(tesseract-ocr)
[ -e /usr/share/tesseract-ocr/5/tessdata/chi_tra.traineddata ] || apt_packages+=(tesseract-ocr-chi-tra)
[ -e /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] || apt_packages+=(fonts-noto-cjk)
if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

pip_quiet=(--quiet --disable-pip-version-check)
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install "${pip_quiet[@]}" -e '.[test]'
[ -x .venv-clients/bin/python ] || python3 -m venv .venv-clients
.venv-clients/bin/pip install "${pip_quiet[@]}" -r tests/clients-requirements.txt
[ -x .venv-deploy/bin/python ] || python3 -m venv .venv-deploy
.venv-deploy/bin/pip install "${pip_quiet[@]}" -r tests/deploy/requirements.txt
npm ci --prefix tests/deploy/pac --no-audit --no-fund --loglevel=error >/dev/null  # pac-resolver, for guard pac

# PostgreSQL for the audit store's tests: start Debian's cluster and a role that may create databases.
if [ -z "${GUARD_TEST_POSTGRES_URL:-}" ]; then
  bash tests/start-postgres.sh
  export GUARD_TEST_POSTGRES_URL="postgresql://guard:guard@127.0.0.1:5432/postgres"
fi

export GUARD_CLIENT_PYTHON="$PWD/.venv-clients/bin/python"
export GUARD_REQUIRE_ALL=1  # a missing tool fails the run instead of skipping its tests
exec .venv/bin/python -m pytest "$@"
