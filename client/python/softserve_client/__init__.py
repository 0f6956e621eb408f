"""A thin, typed Python client for softserve's gRPC API (docs/API.md).

    from softserve_client import Client
    with Client("127.0.0.1:50051", api_key="...") as c:
        c.upload_prompt("sentiment", "adapter_dir")
        print(c.generate("great movie", prompt="sentiment")[0].text)

Every call attaches the API key and a deadline (`timeout` seconds). Failures raise
grpc.RpcError carrying the server's status code and message. Inputs are text (tokenized by the
server, eos appended) or lists of token ids (used as given).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import grpc

from softserve.v1 import softserve_pb2 as pb
from softserve.v1 import softserve_pb2_grpc as rpc

__all__ = ["Client", "Generation", "StreamPiece", "TargetScore", "ScoreResult", "PromptInfo", "read_prompt"]

Input = Union[str, Sequence[int]]

_FINISH = {
    pb.FINISH_REASON_EOS: "eos",
    pb.FINISH_REASON_MAX_TOKENS: "max_tokens",
    pb.FINISH_REASON_STOP_SEQUENCE: "stop_sequence",
    pb.FINISH_REASON_TIME_LIMIT: "time_limit",
    pb.FINISH_REASON_ERROR: "error",
    pb.FINISH_REASON_CANCELLED: "cancelled",
}
_FORMATS = {"raw": pb.PROMPT_FORMAT_RAW, "peft": pb.PROMPT_FORMAT_PEFT, "residual": pb.PROMPT_FORMAT_RESIDUAL}


@dataclasses.dataclass
class Generation:
    """One input's output."""
    text: str
    output_ids: List[int]
    token_logprobs: List[float]
    score: float
    finish_reason: str  # eos, max_tokens, stop_sequence, time_limit, cancelled or error
    input_tokens: int
    stop_sequence: str = ""
    error_code: Optional[grpc.StatusCode] = None  # finish_reason "error": this input's own problem
    error_message: str = ""

    @staticmethod
    def from_proto(g: pb.Generation) -> "Generation":
        code = None
        if g.finish_reason == pb.FINISH_REASON_ERROR:
            code = next((c for c in grpc.StatusCode if c.value[0] == g.error_code), grpc.StatusCode.UNKNOWN)
        return Generation(text=g.text, output_ids=list(g.output_ids), token_logprobs=list(g.token_logprobs),
                          score=g.score, finish_reason=_FINISH.get(g.finish_reason, "unspecified"),
                          input_tokens=g.input_tokens, stop_sequence=g.stop_sequence, error_code=code,
                          error_message=g.error_message)


@dataclasses.dataclass
class StreamPiece:
    """One streamed message: a token as it is chosen, or an input's final result."""
    index: int            # which input
    text: str             # the text this message adds to that input's output
    token_id: Optional[int] = None
    logprob: Optional[float] = None
    final: Optional[Generation] = None  # set on each input's last message


@dataclasses.dataclass
class TargetScore:
    target_ids: List[int]
    total_logprob: float
    token_logprobs: List[float]


@dataclasses.dataclass
class ScoreResult:
    scores: List[TargetScore]
    best: int


@dataclasses.dataclass
class PromptInfo:
    tenant: str
    name: str
    version: int
    rows: int
    dim: int
    format: str
    checksum_sha256: str

    @staticmethod
    def from_proto(p: pb.Prompt) -> "PromptInfo":
        fmt = {v: k for k, v in _FORMATS.items()}.get(p.format, "unspecified")
        return PromptInfo(p.tenant, p.name, p.version, p.rows, p.dim, fmt, p.checksum_sha256)


def _safetensors_tensor_names(data: bytes) -> List[str]:
    if len(data) < 8:
        return []
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + n])
    except ValueError:
        return []
    return [k for k in header if k != "__metadata__"]


def read_prompt(path: str, fmt: str = "auto"):
    """Reads a prompt as users keep them: a PEFT adapter directory (adapter_config.json and
    adapter_model.safetensors), a residual checkpoint (safetensors with mlp.* tensors) or a raw
    [rows, d_model] safetensors matrix. Returns (format enum, file bytes, adapter config text)."""
    if os.path.isdir(path):
        if fmt not in ("auto", "peft"):
            raise ValueError(f"{path} is a directory: only a PEFT adapter directory can be uploaded")
        config = os.path.join(path, "adapter_config.json")
        weights = os.path.join(path, "adapter_model.safetensors")
        if not os.path.exists(config):
            raise FileNotFoundError(f"{config} not found (not a PEFT adapter directory)")
        if not os.path.exists(weights):
            if os.path.exists(os.path.join(path, "adapter_model.bin")):
                raise ValueError(f"{path} holds only adapter_model.bin; save the adapter with safe_serialization=True")
            raise FileNotFoundError(f"{weights} not found")
        with open(config, encoding="utf-8") as f, open(weights, "rb") as w:
            return pb.PROMPT_FORMAT_PEFT, w.read(), f.read()
    with open(path, "rb") as f:
        data = f.read()
    if fmt == "auto":
        fmt = "residual" if "mlp.down.weight" in _safetensors_tensor_names(data) else "raw"
    if fmt not in ("raw", "residual"):
        raise ValueError("format must be auto, raw, peft or residual")
    return _FORMATS[fmt], data, ""


def _input(x: Input) -> pb.Input:
    if isinstance(x, str):
        return pb.Input(text=x)
    return pb.Input(ids=pb.TokenIds(ids=[int(i) for i in x]))


class Client:
    """A connection to one softserve server. Thread-safe (gRPC channels are)."""

    def __init__(self, target: str = "127.0.0.1:50051", api_key: Optional[str] = None, *,
                 timeout: float = 60.0, root_certificates: Optional[bytes] = None,
                 channel: Optional[grpc.Channel] = None):
        if channel is None:
            if root_certificates is not None:
                channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates))
            else:
                channel = grpc.insecure_channel(target)
        self._channel = channel
        self._metadata = [("authorization", "Bearer " + api_key)] if api_key else []
        self._timeout = timeout
        self._prompts = rpc.PromptServiceStub(channel)
        self._inference = rpc.InferenceServiceStub(channel)
        self._models = rpc.ModelServiceStub(channel)
        self._training = rpc.TrainingServiceStub(channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # Prompts ------------------------------------------------------------------------------

    def upload_prompt(self, name: str, path: str, fmt: str = "auto", *, tenant: str = "",
                      chunk_bytes: int = 1 << 20) -> PromptInfo:
        """Uploads a prompt file or PEFT directory (read_prompt) as a new version of `name`."""
        fmt_enum, data, config = read_prompt(path, fmt)
        header = pb.UploadHeader(name=name, format=fmt_enum, tenant=tenant, peft_adapter_config=config,
                                 total_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())

        def messages():
            yield pb.UploadPromptRequest(header=header)
            for i in range(0, len(data), chunk_bytes):
                yield pb.UploadPromptRequest(chunk=data[i:i + chunk_bytes])

        reply = self._prompts.UploadPrompt(messages(), metadata=self._metadata, timeout=self._timeout)
        return PromptInfo.from_proto(reply)

    def list_prompts(self, name_prefix: str = "") -> List[PromptInfo]:
        out, token = [], ""
        while True:
            page = self._prompts.ListPrompts(
                pb.ListPromptsRequest(name_prefix=name_prefix, page_size=1000, page_token=token),
                metadata=self._metadata, timeout=self._timeout)
            out.extend(PromptInfo.from_proto(p) for p in page.prompts)
            token = page.next_page_token
            if not token:
                return out

    def delete_prompt(self, name: str, version: int = 0) -> int:
        """Deletes one version (0: every version); returns how many were deleted."""
        reply = self._prompts.DeletePrompt(pb.DeletePromptRequest(name=name, version=version),
                                           metadata=self._metadata, timeout=self._timeout)
        return reply.deleted_versions

    # Inference ----------------------------------------------------------------------------

    def _generate_request(self, inputs, prompt: Optional[str], version: int, params: dict) -> pb.GenerateRequest:
        if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        stops = params.pop("stop_sequences", None) or []
        mode = params.pop("mode", None)
        if mode is None:
            mode = "sample" if "temperature" in params or "top_p" in params or "top_k" in params else (
                "beam" if "num_beams" in params else "greedy")
        decoding = pb.DecodingParameters(mode={"greedy": pb.DECODING_MODE_GREEDY, "beam": pb.DECODING_MODE_BEAM,
                                               "sample": pb.DECODING_MODE_SAMPLE}[mode], **params)
        decoding.stop_sequences.extend(stops)
        request = pb.GenerateRequest(inputs=[_input(x) for x in inputs], parameters=decoding)
        if prompt:
            request.prompt.CopyFrom(pb.PromptRef(name=prompt, version=version))
        return request

    def _call_metadata(self, request_id: Optional[str]):
        return self._metadata + [("x-request-id", request_id)] if request_id else self._metadata

    def generate(self, inputs: Union[Input, Sequence[Input]], prompt: Optional[str] = None, version: int = 0,
                 *, request_id: Optional[str] = None, **params) -> List[Generation]:
        """Generates for one input or several (one Generation each, in order). `params` are
        DecodingParameters fields (max_new_tokens, num_beams, temperature, top_p, top_k, seed,
        return_logprobs, top_logprobs, repetition_penalty, stop_sequences, time_limit_ms, ...);
        `mode` is greedy, beam or sample (default: sample when a sampling field is given, beam
        when num_beams is, else greedy). `request_id` is sent as x-request-id, so that `cancel`
        can end the call early from elsewhere."""
        request = self._generate_request(inputs, prompt, version, dict(params))
        reply = self._inference.Generate(request, metadata=self._call_metadata(request_id), timeout=self._timeout)
        return [Generation.from_proto(g) for g in reply.results]

    def stream(self, inputs: Union[Input, Sequence[Input]], prompt: Optional[str] = None, version: int = 0,
               *, request_id: Optional[str] = None, **params) -> Iterator[StreamPiece]:
        """As generate, yielding each token as the server chooses it (greedy and sampling), then
        each input's final result."""
        request = self._generate_request(inputs, prompt, version, dict(params))
        for m in self._inference.GenerateStream(request, metadata=self._call_metadata(request_id),
                                                timeout=self._timeout):
            if m.HasField("final"):
                yield StreamPiece(index=m.input_index, text=m.text_delta, final=Generation.from_proto(m.final))
            else:
                yield StreamPiece(index=m.input_index, text=m.text_delta, token_id=m.token_id, logprob=m.logprob)

    def cancel(self, request_id: str) -> int:
        """Ends your generations sent with this request id early: each returns what it has, with
        finish_reason "CANCELLED". Returns how many calls were ended; NOT_FOUND when none runs."""
        reply = self._inference.CancelGeneration(pb.CancelGenerationRequest(request_id=request_id),
                                                 metadata=self._metadata, timeout=self._timeout)
        return reply.calls

    def score(self, input: Input, targets: Sequence[Input], prompt: Optional[str] = None,
              version: int = 0) -> ScoreResult:
        """Log-likelihood of each target given the input (text targets get eos appended)."""
        request = pb.ScoreRequest(input=_input(input), targets=[_input(t) for t in targets])
        if prompt:
            request.prompt.CopyFrom(pb.PromptRef(name=prompt, version=version))
        reply = self._inference.Score(request, metadata=self._metadata, timeout=self._timeout)
        return ScoreResult([TargetScore(list(s.target_ids), s.total_logprob, list(s.token_logprobs))
                            for s in reply.scores], reply.best)

    # Training -----------------------------------------------------------------------------

    def train(self, prompt_name: str, examples: Sequence[Tuple[Input, Input]],
              dev: Sequence[Tuple[Input, Input]] = (), *, init_prompt: Optional[str] = None,
              init_version: int = 0, **options) -> pb.TrainingJob:
        """Starts a training job on the server: (input, target) pairs of text or token ids;
        `options` are TrainingOptions fields (method, prompt_length, init, class_labels,
        optimizer, lr, steps, epochs, batch_size, no_shuffle, seed, eval_every, patience, ...).
        The trained prompt becomes the next version of `prompt_name` when the job succeeds."""
        request = pb.TrainPromptRequest(
            prompt_name=prompt_name,
            train=[pb.TrainingExample(input=_input(i), target=_input(t)) for i, t in examples],
            dev=[pb.TrainingExample(input=_input(i), target=_input(t)) for i, t in dev],
            options=pb.TrainingOptions(**options))
        if init_prompt:
            request.init_prompt.CopyFrom(pb.PromptRef(name=init_prompt, version=init_version))
        return self._training.TrainPrompt(request, metadata=self._metadata, timeout=self._timeout)

    def training_job(self, job_id: str) -> pb.TrainingJob:
        return self._training.GetTrainingJob(pb.TrainingJobRef(id=job_id), metadata=self._metadata,
                                             timeout=self._timeout)

    def watch_training_job(self, job_id: str, timeout: float = 7 * 24 * 3600.0) -> Iterator[pb.TrainingJob]:
        """Yields the job's state as it changes, until it ends (the last one is final)."""
        yield from self._training.WatchTrainingJob(pb.TrainingJobRef(id=job_id), metadata=self._metadata,
                                                   timeout=timeout)

    def cancel_training_job(self, job_id: str) -> pb.TrainingJob:
        return self._training.CancelTrainingJob(pb.TrainingJobRef(id=job_id), metadata=self._metadata,
                                                timeout=self._timeout)

    def list_training_jobs(self) -> List[pb.TrainingJob]:
        return list(self._training.ListTrainingJobs(pb.ListTrainingJobsRequest(), metadata=self._metadata,
                                                    timeout=self._timeout).jobs)

    def model_info(self) -> pb.ModelInfo:
        return self._models.GetModelInfo(pb.GetModelInfoRequest(), metadata=self._metadata, timeout=self._timeout)
