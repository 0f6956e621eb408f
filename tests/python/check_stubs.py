"""Checks that the Python package's generated stubs describe the current proto: the file
descriptor embedded in client/python/softserve/v1/softserve_pb2.py must equal what protoc makes
of proto/softserve/v1/softserve.proto now (compared as descriptors, not as generated text, so a
different protoc version does not matter). Fix a failure with scripts/gen-python-stubs.sh.

Usage: check_stubs.py REPO_ROOT
"""
import os
import subprocess
import sys
import tempfile


def strip_json_names(messages):
    """protoc's descriptor sets carry json_name, which generated code leaves out."""
    for m in messages:
        for f in m.field:
            f.ClearField("json_name")
        strip_json_names(m.nested_type)


def main():
    root = sys.argv[1]
    sys.path.insert(0, os.path.join(root, "client", "python"))
    from google.protobuf import descriptor_pb2
    from softserve.v1 import softserve_pb2

    shipped = descriptor_pb2.FileDescriptorProto.FromString(softserve_pb2.DESCRIPTOR.serialized_pb)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "set.pb")
        subprocess.check_call(["protoc", "-I" + os.path.join(root, "proto"), "--descriptor_set_out=" + out,
                               "softserve/v1/softserve.proto"])
        with open(out, "rb") as f:
            current = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file[0]
    strip_json_names(current.message_type)
    if shipped != current:
        print("client/python/softserve/v1 is stale: run scripts/gen-python-stubs.sh")
        return 1
    print("python stubs match the proto")
    return 0


if __name__ == "__main__":
    sys.exit(main())
