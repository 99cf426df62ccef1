#!/usr/bin/env bash
# Installs what the tests need (idempotently), builds with warnings as errors, runs every test project,
# and ends with one line totalling them all: "N passed, N failed[, N skipped]".
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
CONFIG="${SPEGEL_CONFIGURATION:-Release}"

# Debian packages the real-parts tests use (scripts/install-deps.sh: containerd, docker-registry, skopeo,
# util-linux, mount), plus kubectl for the deploy tests, chromium and a font (no command to look for) for the
# cluster page screenshot, redis-server for the cluster tool's Dapr transport, clang with zlib's headers for the
# registry's Native AOT publish, faketime (libfaketime) for the clock-skew tests, and nginx and wrk for the
# benchmark harness's smoke run.
# shellcheck source=scripts/install-deps.sh
source "$ROOT/scripts/install-deps.sh"

if ! install_packages test.sh kubectl=kubectl chromium=chromium redis-server=redis-server clang=clang faketime=faketime nginx=nginx-light wrk=wrk fonts-dejavu-core zlib1g-dev; then
  echo "0 passed, 1 failed"
  exit 1
fi
# The Debian package may start a system containerd; the tests run their own instances and need none.

echo "test.sh: building ($CONFIG, warnings as errors)"
if ! dotnet build Spegel.Dapr.sln -c "$CONFIG" -nologo -clp:NoSummary -v quiet; then
  echo "test.sh: build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
dotnet test Spegel.Dapr.sln -c "$CONFIG" --no-build -nologo --blame-hang-timeout 5m -- RunConfiguration.TreatNoTestsAsError=true 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# Sum the per-project summaries ("Passed!  - Failed: 0, Passed: 17, Skipped: 0, Total: 17, ...").
read -r passed failed skipped projects < <(awk '
  /(Passed|Failed)! +- Failed: / {
    gsub(",", "");
    for (i = 1; i <= NF; i++) {
      if ($i == "Failed:") f += $(i + 1);
      if ($i == "Passed:") p += $(i + 1);
      if ($i == "Skipped:") s += $(i + 1);
    }
    n++
  }
  END { printf "%d %d %d %d\n", p, f, s, n }' "$log")

if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  # A test host that crashed or hung prints no summary: count it as a failure rather than pass silently.
  echo "test.sh: dotnet test exited $status without a failed test in its summaries (crash, hang or no tests)"
  failed=1
fi
if [ "$passed" -eq 0 ]; then
  echo "test.sh: no test ran"
  failed=$((failed > 0 ? failed : 1))
fi

line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "test.sh: $projects test projects"
echo "$line"
[ "$failed" -eq 0 ]
