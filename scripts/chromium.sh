#!/usr/bin/env bash
# Print the path of a headless Chromium for the report test; install Debian's
# chromium-headless-shell when there is none (needs root and the apt mirror).
set -euo pipefail
for bin in chromium-headless-shell chromium chromium-browser google-chrome; do
  if path=$(command -v "$bin"); then echo "$path"; exit 0; fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq chromium-headless-shell || { apt-get update -qq && apt-get install -y -qq chromium-headless-shell; }; } >&2
  command -v chromium-headless-shell && exit 0
fi
echo "no headless Chromium and it cannot be installed here" >&2
exit 1
