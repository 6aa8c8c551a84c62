#!/usr/bin/env bash
# Generates the Python stubs of the protos the package uses, from protos/ (and the health protocol in proto/), into
# namra/ (namra/v1, namra/_health). Needs Debian's protobuf-compiler and protobuf-compiler-grpc (grpc_python_plugin).
# CI runs it into a scratch folder and fails when the committed stubs differ.
#
#   bash sdk/python/generate.sh [OUT]    (OUT defaults to sdk/python)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$here}
plugin=$(command -v grpc_python_plugin) || { echo "generate.sh: install protobuf-compiler-grpc (grpc_python_plugin)" >&2; exit 2; }
mkdir -p "$out/namra/v1" "$out/namra/_health"
# The protos a tool provider and the API client need, with what they import. google/api and google/rpc land in
# google/ beside the system's google.protobuf: namespace packages, so no __init__.py there.
protoc -I "$repo/protos" -I "$repo/protos/third_party" -I "$here/proto" \
  --python_out="$out" --grpc_python_out="$out" --plugin=protoc-gen-grpc_python="$plugin" \
  namra/v1/common.proto namra/v1/tool_provider_service.proto namra/v1/agent_definition.proto namra/v1/llm_gateway_service.proto \
  namra/v1/run.proto namra/v1/audit.proto namra/v1/agent_service.proto \
  google/api/annotations.proto google/api/http.proto google/rpc/status.proto google/rpc/error_details.proto \
  namra/_health/health.proto
touch "$out/namra/v1/__init__.py" "$out/namra/_health/__init__.py"
