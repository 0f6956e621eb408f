"""softserve.v1 messages and stubs, generated from proto/softserve/v1/softserve.proto by protoc and
grpc_python_plugin (scripts/gen-python-stubs.sh); tests/python/check_stubs.py checks they match."""
