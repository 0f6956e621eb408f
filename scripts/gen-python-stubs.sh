#!/usr/bin/env bash
# Regenerates the Python stubs the client package ships (client/python/softserve/v1) from
# proto/softserve/v1/softserve.proto, with protoc and grpc_python_plugin (Debian's
# protobuf-compiler-grpc). Run after changing the proto; CTest's python_stubs_current checks.
set -euo pipefail
cd "$(dirname "$0")/.."
protoc -Iproto --python_out=client/python --grpc_out=client/python \
  --plugin=protoc-gen-grpc="$(command -v grpc_python_plugin)" softserve/v1/softserve.proto
echo "gen-python-stubs: client/python/softserve/v1 regenerated"
