#!/bin/sh
# Install the browser the report's browser test drives: Debian's chromium package.
#
# The test (tests/test_report_browser.py) runs Playwright against the system Chromium and is
# skipped when Chromium is missing, so this script never fails a build: it installs Chromium
# when it is missing and apt-get can be used as root, and otherwise says in one line that the
# browser test will be skipped. It always exits 0. It never runs `playwright install` (that
# downloads browsers from the network; the system package is what the test launches).

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    echo "install-browser: chromium is already installed."
    exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: installing Debian's chromium with apt-get..."
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
            >/dev/null 2>&1; then
        echo "install-browser: chromium installed."
    else
        echo "install-browser: apt-get could not install chromium; the browser test will be skipped."
    fi
    exit 0
fi

echo "install-browser: chromium is missing and apt-get is not usable as root; the browser test will be skipped."
exit 0
