#!/usr/bin/env bash
# ONNX Runtime 1.30's usage telemetry stays off in a program that uses kvcache: no device id or
# event database under the cache home, unless the program asked for it with
# ORT_DISABLE_TELEMETRY=0 (then the files appear, which also shows this check would see them).
# The runtime turns its telemetry off by itself under CI variables, so they are removed here.
# usage: test_telemetry.sh KVCACHE
set -euo pipefail
kvcache="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
scrubbed=(env -u ORT_DISABLE_TELEMETRY -u CI -u TF_BUILD -u GITHUB_ACTIONS -u GITLAB_CI -u CIRCLECI
  -u TRAVIS -u JENKINS_URL -u CODEBUILD_BUILD_ID -u BUILDKITE -u TEAMCITY_VERSION -u APPVEYOR
  -u BITBUCKET_BUILD_NUMBER HOME="$tmp/home" XDG_CACHE_HOME="$tmp/cache")
mkdir "$tmp/home" "$tmp/cache"
"$kvcache" build-model -o "$tmp/m" --layers 1 --heads 2 --head-dim 16 --vocab 50 --max-seq 32 \
  >/dev/null
ids=$("${scrubbed[@]}" "$kvcache" generate -m "$tmp/m" --prompt-ids 1,2,3 -n 4 --greedy 2>/dev/null)
[ -n "$ids" ] || fail "generate printed nothing"
written=$(find "$tmp/home" "$tmp/cache" -mindepth 1)
[ -z "$written" ] || fail "with ORT_DISABLE_TELEMETRY unset, ONNX Runtime wrote: $written"
"${scrubbed[@]}" ORT_DISABLE_TELEMETRY=0 "$kvcache" generate -m "$tmp/m" --prompt-ids 1,2,3 -n 4 \
  --greedy >/dev/null 2>&1
[ -f "$tmp/cache/Microsoft/DeveloperTools/.onnxruntime/deviceid" ] ||
  fail "ORT_DISABLE_TELEMETRY=0 (the program's choice) did not keep the runtime's telemetry on," \
    "or the runtime no longer writes \$XDG_CACHE_HOME/Microsoft/DeveloperTools/.onnxruntime/deviceid"
echo "telemetry: off by default, on when asked: ok"
