#!/usr/bin/env bash
# Install what kvcache needs to build, test and run, and nothing that is already there.
#   scripts/setup.sh          install missing Debian packages (as root, with apt-get)
#   scripts/setup.sh --check  exit 0 when nothing is missing, 1 otherwise; installs nothing
# ONNX Runtime itself is found or fetched by CMake (see scripts/fetch-onnxruntime.sh).
set -euo pipefail

packages=(
  build-essential cmake pkg-config   # compiler, build system
  libcjson-dev                       # config.json
  libcmocka-dev                      # unit tests
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev  # ONNX protobuf (onnx.proto) for the model writer
  libpcre2-dev                       # tokenizer.json pre-tokenizer patterns (Split regex)
  libutf8proc-dev                    # tokenizer.json normalizers (NFC, NFKC, ...)
  uthash-dev                         # tokenizer vocabulary and merge tables
  libxxhash-dev                      # state files: checksum and model fingerprint
  libmicrohttpd-dev                  # kvcache serve: the HTTP server
  nginx                              # tests/test_serve_nginx.sh: a balancer before two servers
  python3                            # tests: chat through a pty, the server's hostile clients
  clang                              # libFuzzer harnesses (make fuzz, and a short run in make test)
  gnuplot-nox                        # benchmark plots
  valgrind                           # leak test that sees into ONNX Runtime
  strace                             # tests/test_model_files.sh: which files kvcache opens
  npm                                # fetches ONNX Runtime's library (npm pack)
  git                                # make bench-scale: llama.cpp's source is a git bundle
  python3-numpy python3-yaml         # make bench-scale: llama.cpp's gguf-py writes the GGUF
  ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# A Node.js from elsewhere (nvm, a tarball) serves as well as Debian's npm.
if [[ " ${missing[*]-} " == *" npm "* ]] && command -v npm >/dev/null; then
  missing=("${missing[@]/npm/}")
  read -r -a missing <<<"${missing[*]}"
fi

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "${1-}" = --check ]; then
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  cat >&2 <<MSG
setup: these Debian packages are missing: ${missing[*]}
setup: run this as root (or ask your administrator), then run make again:
  sudo apt-get update && sudo apt-get install -y ${missing[*]}
MSG
  exit 1
fi

echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
