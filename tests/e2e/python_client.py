"""Calls softserve from stock Python tooling: stubs generated from our protos with protoc and
grpc_python_plugin (Debian's protobuf-compiler-grpc), then a client-streaming UploadPrompt and a
Generate whose output ids must equal the expected ids given on the command line.

Usage: python_client.py PROTO_ROOT TARGET API_KEY PROMPT_FILE INPUT_IDS EXPECTED_IDS
(ids comma-separated). Exit 0 on success; prints what differed otherwise.
"""
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    proto_root, target, key, prompt_file, input_ids, expected = sys.argv[1:7]
    out = tempfile.mkdtemp(prefix="softserve_py_")
    plugin = shutil.which("grpc_python_plugin")
    subprocess.check_call(["protoc", "-I" + proto_root, "--python_out=" + out, "--grpc_out=" + out,
                           "--plugin=protoc-gen-grpc=" + plugin, "softserve/v1/softserve.proto"])
    sys.path.insert(0, out)
    import grpc
    from softserve.v1 import softserve_pb2 as pb
    from softserve.v1 import softserve_pb2_grpc as rpc

    channel = grpc.insecure_channel(target)
    metadata = [("authorization", "Bearer " + key)]
    data = open(prompt_file, "rb").read()

    def upload_messages():
        yield pb.UploadPromptRequest(header=pb.UploadHeader(
            name="py-prompt", format=pb.PROMPT_FORMAT_RESIDUAL, total_bytes=len(data)))
        for i in range(0, len(data), 4096):
            yield pb.UploadPromptRequest(chunk=data[i:i + 4096])

    stored = rpc.PromptServiceStub(channel).UploadPrompt(upload_messages(), metadata=metadata, timeout=30)
    print("uploaded", stored.name, stored.version, stored.rows, "x", stored.dim)
    request = pb.GenerateRequest(
        inputs=[pb.Input(ids=pb.TokenIds(ids=[int(x) for x in input_ids.split(",")]))],
        prompt=pb.PromptRef(name="py-prompt"),
        parameters=pb.DecodingParameters(max_new_tokens=12))
    reply = rpc.InferenceServiceStub(channel).Generate(request, metadata=metadata, timeout=30)
    got = list(reply.results[0].output_ids)
    want = [int(x) for x in expected.split(",")]
    if got != want:
        print("output ids differ: got", got, "want", want)
        return 1
    try:
        rpc.ModelServiceStub(channel).GetModelInfo(pb.GetModelInfoRequest(), metadata=[("authorization", "Bearer wrong")])
        print("a wrong key was accepted")
        return 1
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAUTHENTICATED:
            print("wrong key gave", e.code())
            return 1
    print("python client OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
