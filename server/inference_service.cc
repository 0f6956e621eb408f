#include "server/inference_service.h"

#include <chrono>
#include <mutex>

#include "core/engine/cost.h"
#include "server/call.h"
#include "server/convert.h"
#include "server/output_text.h"
#include "server/status_util.h"

namespace softserve::server {
namespace {

void SetPromptUsed(const core::PromptPtr& p, v1::PromptUsed* out) {
  if (!p) return;
  out->set_name(p->key().name);
  out->set_version(p->key().version);
}

std::string Describe(const core::PromptPtr& p, size_t inputs) {
  const std::string label = PromptLabel(p);
  return "inputs=" + std::to_string(inputs) + " prompt=" + (label.empty() ? "-" : label);
}

int64_t Rows(const core::PromptPtr& p) { return p ? p->rows() : 0; }

// What Score and Ensemble share: one input, candidate targets, and an in-flight slot (costed for
// `prompts` scoring every target, or by `generation_cost` when it is >= 0) that `call` then
// holds. Returns the first error among them (in that order); on success fills `common` and
// `target_ids`.
core::Status PrepareScored(const ServiceContext& sc, UnaryCall* call, const v1::Input& input,
                           const google::protobuf::RepeatedPtrField<v1::Input>& targets,
                           const std::vector<core::PromptPtr>& prompts, const core::DecodingParams* generation,
                           const grpc::ServerContextBase& context, core::RequestCommon* common,
                           std::vector<std::vector<int64_t>>* target_ids) {
  SOFTSERVE_ASSIGN_OR_RETURN(auto input_ids, ToIds(input, sc.tokenizer, "the input"));
  for (int i = 0; i < targets.size(); ++i) {
    SOFTSERVE_ASSIGN_OR_RETURN(auto ids, ToIds(targets[i], sc.tokenizer, "a target"));
    target_ids->push_back(std::move(ids));
  }
  const int64_t input_tokens = static_cast<int64_t>(input_ids.size());
  int64_t cost = 0;
  if (generation != nullptr && target_ids->empty()) {
    for (const core::PromptPtr& p : prompts) cost += core::GenerationCostTokens(Rows(p), input_tokens, *generation);
  } else {
    std::vector<int64_t> rows;
    for (const core::PromptPtr& p : prompts) rows.push_back(Rows(p));
    cost = core::ScoringCostTokens(rows, input_tokens, *target_ids);
  }
  SOFTSERVE_ASSIGN_OR_RETURN(auto slot, sc.inflight->Acquire(*call->caller().tenant, cost));
  call->HoldSlot(std::move(slot));
  *common = {call->caller().name(), std::move(input_ids), DeadlineOf(context), call->cancel()};
  return core::OkStatus();
}

}  // namespace

core::StatusOr<core::PromptPtr> ResolvePrompt(const ServiceContext& sc, const std::string& tenant,
                                              const v1::PromptRef* ref, bool required) {
  if (ref != nullptr && ref->version() < 0) {
    return core::InvalidArgumentError("prompt version " + std::to_string(ref->version()) + " is negative (0 = latest)");
  }
  if (ref == nullptr || ref->name().empty()) {
    if (ref != nullptr && ref->version() != 0) {
      return core::InvalidArgumentError("prompt version " + std::to_string(ref->version()) +
                                        " given without a prompt name; name the prompt or leave both empty");
    }
    if (required) return core::InvalidArgumentError("a prompt name is required");
    return core::PromptPtr();
  }
  auto p = sc.registry->Get(tenant, ref->name(), ref->version());
  if (!p.ok()) return p.status();  // NotFound: never says whether another tenant has the name
  return *p;
}

core::StatusOr<PreparedGeneration> PrepareGeneration(const ServiceContext& sc, const Caller& caller,
                                                     const v1::GenerateRequest& request, bool streaming,
                                                     const grpc::ServerContextBase& context) {
  if (request.inputs_size() == 0) return core::InvalidArgumentError("no inputs: give at least one");
  if (request.inputs_size() > sc.config->max_inputs_per_request) {
    return core::InvalidArgumentError(std::to_string(request.inputs_size()) + " inputs in one request; the limit is " +
                                      std::to_string(sc.config->max_inputs_per_request));
  }
  PreparedGeneration g;
  SOFTSERVE_ASSIGN_OR_RETURN(g.prompt, ResolvePrompt(sc, caller.name(), request.has_prompt() ? &request.prompt() : nullptr, false));
  SOFTSERVE_ASSIGN_OR_RETURN(g.params, ToDecodingParams(request.parameters()));
  const int64_t keep = request.parameters().truncate_input_tokens();
  if (keep < 0) {
    return core::InvalidArgumentError("truncate_input_tokens is " + std::to_string(keep) +
                                      "; give the number of last input tokens to keep, or 0 for no truncation");
  }
  const v1::DecodingParameters& params = request.parameters();
  g.stop_sequences.assign(params.stop_sequences().begin(), params.stop_sequences().end());
  SOFTSERVE_RETURN_IF_ERROR(ValidateStopSequences(g.stop_sequences));
  if (!g.stop_sequences.empty() && sc.tokenizer == nullptr) {
    return core::FailedPreconditionError("stop sequences are matched on text, and this server has no tokenizer");
  }
  if (params.time_limit_ms() < 0) {
    return core::InvalidArgumentError("time_limit_ms is " + std::to_string(params.time_limit_ms()) +
                                      "; give milliseconds > 0, or 0 for none");
  }
  // Parameter problems are the call's, whatever the number of inputs.
  SOFTSERVE_RETURN_IF_ERROR(sc.engine->ValidateDecoding(g.params, streaming, !g.stop_sequences.empty()));
  if (params.time_limit_ms() > 0) g.time_limit = core::Clock::now() + std::chrono::milliseconds(params.time_limit_ms());
  int64_t cost = 0;
  for (int i = 0; i < request.inputs_size(); ++i) {
    auto ids = ToIds(request.inputs(i), sc.tokenizer, "an input");
    if (!ids.ok()) {
      core::Status e = ids.status().WithPrefix("input " + std::to_string(i));
      if (request.inputs_size() == 1) return e;  // one input: its problem is the call's
      g.input_errors.push_back(std::move(e));
      g.inputs.emplace_back();
      continue;
    }
    if (keep > 0 && static_cast<int64_t>(ids->size()) > keep) ids->erase(ids->begin(), ids->end() - keep);
    cost += core::GenerationCostTokens(Rows(g.prompt), static_cast<int64_t>(ids->size()), g.params);
    g.inputs.push_back(std::move(ids).value());
    g.input_errors.push_back(core::OkStatus());
  }
  SOFTSERVE_ASSIGN_OR_RETURN(g.slot, sc.inflight->Acquire(*caller.tenant, cost));
  g.deadline = DeadlineOf(context);
  return g;
}

core::GenerationRequest EngineRequest(const std::string& tenant, PreparedGeneration* p, size_t i,
                                      const core::CancelFlag& cancel, const core::CancelFlag& end_early) {
  core::GenerationRequest g;
  g.common = {tenant, std::move(p->inputs[i]), p->deadline, cancel};
  g.prompt = p->prompt;
  g.params = p->params;
  g.time_limit = p->time_limit;
  g.end_early = end_early;
  return g;
}

std::unique_ptr<ActiveGenerations::Registration> RegisterGeneration(const ServiceContext& sc, const CallRecord& record,
                                                                    const core::CancelFlag& end_early) {
  if (sc.active == nullptr) return nullptr;
  return sc.active->Register(record.tenant, record.ids.request_id, end_early);
}

bool EndsOnlyItsInput(const core::Status& s) {
  return s.code() != core::StatusCode::kDeadlineExceeded && s.code() != core::StatusCode::kCancelled &&
         s.code() != core::StatusCode::kUnavailable;
}

grpc::ServerUnaryReactor* InferenceServiceImpl::Generate(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::GenerateRequest, v1::GenerateResponse>(
      sc_, "Generate", true, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext* ctx, const v1::GenerateRequest& req,
             v1::GenerateResponse* resp) { DoGenerate(call, ctx, req, resp); });
}

namespace {

// One Generate call: its inputs run as separate engine requests; the call completes when the
// last one does. With several inputs, an input's own error is reported in its Generation and
// the others complete; the call's deadline, its cancellation and shutdown end the call.
class UnaryGeneration {
 public:
  UnaryGeneration(const ServiceContext* sc, UnaryCall* call, v1::GenerateResponse* response, PreparedGeneration p)
      : sc_(sc), call_(call), response_(response), prepared_(std::move(p)), n_(prepared_.inputs.size()),
        results_(n_), errors_(prepared_.input_errors), pending_(static_cast<int>(n_) + 1) {
    for (const auto& ids : prepared_.inputs) input_tokens_.push_back(static_cast<int>(ids.size()));
  }

  static void Start(std::shared_ptr<UnaryGeneration> self) {
    UnaryCall* call = self->call_;
    call->HoldSlot(std::move(self->prepared_.slot));
    call->record().prompt = PromptLabel(self->prepared_.prompt);
    call->record().input_tokens = 0;
    for (int t : self->input_tokens_) call->record().input_tokens += t;
    self->registration_ = RegisterGeneration(*self->sc_, call->record(), self->end_early_);
    for (size_t i = 0; i < self->n_; ++i) {
      if (!self->errors_[i].ok()) {
        self->Done(static_cast<int>(i), self->errors_[i]);
        continue;
      }
      core::GenerationRequest g =
          EngineRequest(call->caller().name(), &self->prepared_, i, call->cancel(), self->end_early_);
      if (!self->prepared_.stop_sequences.empty()) {
        // Engine thread only: the output's text so far decides.
        auto text = std::make_shared<OutputText>(self->sc_->tokenizer, self->prepared_.stop_sequences);
        g.stop = [text](int64_t token) {
          text->Add(token);
          return text->stopped();
        };
      }
      self->sc_->engine->Submit(std::move(g), [self, i](core::StatusOr<core::GenerationResult> r) {
        self->Done(static_cast<int>(i), std::move(r));
      });
    }
    self->Done(-1, core::GenerationResult());  // the submission loop's hold
  }

 private:
  void Done(int i, core::StatusOr<core::GenerationResult> r) {
    bool last;
    bool call_failed = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (i >= 0 && r.ok()) {
        results_[i] = std::move(r).value();
      } else if (i >= 0 && n_ > 1 && EndsOnlyItsInput(r.status())) {
        errors_[i] = r.status();
      } else if (i >= 0) {
        if (error_.ok()) error_ = r.status();
        call_failed = true;
      }
      last = --pending_ == 0;
    }
    if (call_failed) call_->cancel()->store(true);  // the call is over: stop the other inputs
    if (last) Finish();
  }

  void Finish() {
    registration_.reset();
    if (error_.ok()) {
      CallRecord& record = call_->record();
      for (size_t k = 0; k < n_; ++k) {
        v1::Generation* out = response_->add_results();
        if (!errors_[k].ok()) {
          ToProto(errors_[k], out);
          continue;
        }
        ToProto(results_[k], sc_->tokenizer, input_tokens_[k], out, prepared_.stop_sequences);
        sc_->metrics->RecordGeneration(results_[k].queue_seconds, results_[k].first_token_seconds);
        record.output_tokens = std::max<int64_t>(record.output_tokens, 0) + results_[k].output_ids.size();
        record.queue_seconds = std::max(record.queue_seconds, results_[k].queue_seconds);
      }
      SetPromptUsed(prepared_.prompt, response_->mutable_prompt());
    }
    call_->Complete(error_, Describe(prepared_.prompt, n_));
  }

  const ServiceContext* sc_;
  UnaryCall* call_;
  v1::GenerateResponse* response_;
  PreparedGeneration prepared_;
  const size_t n_;
  std::vector<int> input_tokens_;
  std::mutex mu_;
  std::vector<core::GenerationResult> results_;
  std::vector<core::Status> errors_;
  core::Status error_;
  int pending_;
  const core::CancelFlag end_early_ = core::NewCancelFlag();
  std::unique_ptr<ActiveGenerations::Registration> registration_;
};

}  // namespace

void InferenceServiceImpl::DoGenerate(UnaryCall* call, grpc::CallbackServerContext* context,
                                      const v1::GenerateRequest& request, v1::GenerateResponse* response) {
  auto prepared = PrepareGeneration(*sc_, call->caller(), request, /*streaming=*/false, *context);
  if (!prepared.ok()) return call->Complete(prepared.status());
  UnaryGeneration::Start(std::make_shared<UnaryGeneration>(sc_, call, response, std::move(prepared).value()));
}

grpc::ServerUnaryReactor* InferenceServiceImpl::Score(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::ScoreRequest, v1::ScoreResponse>(
      sc_, "Score", true, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext* ctx, const v1::ScoreRequest& req, v1::ScoreResponse* resp) {
        DoScore(call, ctx, req, resp);
      });
}

void InferenceServiceImpl::DoScore(UnaryCall* call, grpc::CallbackServerContext* context,
                                   const v1::ScoreRequest& request, v1::ScoreResponse* response) {
  core::ScoreRequest s;
  auto prompt = ResolvePrompt(*sc_, call->caller().name(), request.has_prompt() ? &request.prompt() : nullptr, false);
  core::Status st = prompt.status();
  if (st.ok()) {
    st = PrepareScored(*sc_, call, request.input(), request.targets(), {*prompt}, nullptr, *context, &s.common,
                       &s.targets);
  }
  if (!st.ok()) return call->Complete(st);
  s.prompt = *prompt;
  const std::string detail = Describe(*prompt, 1) + " targets=" + std::to_string(s.targets.size());
  call->record().prompt = PromptLabel(*prompt);
  call->record().input_tokens = static_cast<int64_t>(s.common.input_ids.size());
  auto ids = std::make_shared<std::vector<std::vector<int64_t>>>(s.targets);
  core::PromptPtr used = *prompt;
  sc_->engine->SubmitScore(std::move(s), [call, response, ids, used, detail](core::StatusOr<core::ScoreResult> r) {
    if (r.ok()) {
      ToProto(*r, *ids, response);
      SetPromptUsed(used, response->mutable_prompt());
    }
    call->Complete(r.status(), detail);
  });
}

grpc::ServerUnaryReactor* InferenceServiceImpl::Ensemble(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::EnsembleRequest, v1::EnsembleResponse>(
      sc_, "Ensemble", true, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext* ctx, const v1::EnsembleRequest& req,
             v1::EnsembleResponse* resp) { DoEnsemble(call, ctx, req, resp); });
}

void InferenceServiceImpl::DoEnsemble(UnaryCall* call, grpc::CallbackServerContext* context,
                                      const v1::EnsembleRequest& request, v1::EnsembleResponse* response) {
  core::EnsembleRequest e;
  for (const v1::PromptRef& ref : request.prompts()) {
    auto p = ResolvePrompt(*sc_, call->caller().name(), &ref, true);
    if (!p.ok()) return call->Complete(p.status());
    e.prompts.push_back(*p);
  }
  auto params = ToDecodingParams(request.parameters());
  if (!params.ok()) return call->Complete(params.status());
  if (request.parameters().stop_sequences_size() > 0 || request.parameters().time_limit_ms() != 0) {
    return call->Complete(core::InvalidArgumentError(
        "stop_sequences and time_limit_ms apply to Generate and GenerateStream, not to Ensemble"));
  }
  e.params = *params;
  if (core::Status st = PrepareScored(*sc_, call, request.input(), request.targets(), e.prompts, &e.params, *context,
                                      &e.common, &e.targets);
      !st.ok()) {
    return call->Complete(st);
  }
  const int input_tokens = static_cast<int>(e.common.input_ids.size());
  auto prompts = std::make_shared<std::vector<core::PromptPtr>>(e.prompts);
  auto ids = std::make_shared<std::vector<std::vector<int64_t>>>(e.targets);
  const std::string detail = "prompts=" + std::to_string(e.prompts.size());
  const core::Tokenizer* tok = sc_->tokenizer;
  std::function<std::string(const std::vector<int64_t>&)> text_of;
  if (tok != nullptr) {
    text_of = [tok](const std::vector<int64_t>& ids) {
      auto t = tok->Decode(ids);
      return t.ok() ? *t : std::string();
    };
  }
  sc_->engine->SubmitEnsemble(
      std::move(e),
      [this, call, response, prompts, ids, input_tokens, detail](core::StatusOr<core::EnsembleResult> r) {
        if (r.ok()) {
          for (const core::GenerationResult& m : r->members) ToProto(m, sc_->tokenizer, input_tokens, response->add_members());
          response->set_winner(r->winner);
          response->set_votes(r->votes);
          if (r->winner >= 0) *response->mutable_result() = response->members(r->winner);
          for (const core::ScoreResult& s : r->member_scores) ToProto(s, *ids, response->add_member_scores());
          response->mutable_summed_logprobs()->Add(r->summed_logprobs.begin(), r->summed_logprobs.end());
          response->set_best(r->best);
          for (const core::PromptPtr& p : *prompts) SetPromptUsed(p, response->add_prompts());
        }
        call->Complete(r.status(), detail);
      },
      text_of);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::Explain(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::ExplainRequest, v1::ExplainResponse>(
      sc_, "Explain", true, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext* ctx, const v1::ExplainRequest& req,
             v1::ExplainResponse* resp) { DoExplain(call, ctx, req, resp); });
}

void InferenceServiceImpl::DoExplain(UnaryCall* call, grpc::CallbackServerContext* context,
                                     const v1::ExplainRequest& request, v1::ExplainResponse* response) {
  auto prompt = ResolvePrompt(*sc_, call->caller().name(), &request.prompt(), true);
  if (!prompt.ok()) return call->Complete(prompt.status());
  auto slot = sc_->inflight->Acquire(*call->caller().tenant, (*prompt)->rows());
  if (!slot.ok()) return call->Complete(slot.status());
  call->HoldSlot(std::move(slot).value());
  core::ExplainRequest e;
  e.common.tenant = call->caller().name();
  e.common.deadline = DeadlineOf(*context);
  e.common.cancel = call->cancel();
  e.prompt = *prompt;
  e.top_k = request.top_k() == 0 ? 5 : request.top_k();
  core::PromptPtr used = *prompt;
  sc_->engine->SubmitExplain(std::move(e), [this, call, response, used](core::StatusOr<core::ExplainResult> r) {
    if (r.ok()) {
      for (const auto& position : r->positions) {
        v1::PositionNeighbors* pos = response->add_positions();
        for (const core::TokenSimilarity& t : position) {
          v1::Neighbor* nb = pos->add_neighbors();
          nb->set_token_id(t.token);
          nb->set_similarity(t.similarity);
          if (sc_->tokenizer != nullptr) nb->set_piece(sc_->tokenizer->IdToPiece(t.token));
        }
      }
      SetPromptUsed(used, response->mutable_prompt());
    }
    call->Complete(r.status(), "prompt=" + used->key().name);
  });
}

grpc::ServerUnaryReactor* InferenceServiceImpl::Tokenize(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<v1::TokenizeRequest, v1::TokenizeResponse>(
      sc_, "Tokenize", false, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const v1::TokenizeRequest& req,
             v1::TokenizeResponse* resp) { DoTokenize(call, req, resp); });
}

void InferenceServiceImpl::DoTokenize(UnaryCall* call, const v1::TokenizeRequest& request,
                                      v1::TokenizeResponse* response) {
  if (sc_->tokenizer == nullptr) return call->Complete(core::FailedPreconditionError("this server's model has no tokenizer"));
  core::Status status;
  if (request.has_ids()) {
    std::vector<int64_t> ids(request.ids().ids().begin(), request.ids().ids().end());
    auto text = sc_->tokenizer->Decode(ids);
    status = text.status();
    if (text.ok()) response->set_text(*text);
  } else {
    auto ids = sc_->tokenizer->Encode(request.text());
    status = ids.status();
    if (ids.ok()) {
      response->mutable_ids()->Add(ids->begin(), ids->end());
      for (int64_t id : *ids) response->add_pieces(sc_->tokenizer->IdToPiece(id));
      response->set_text(request.text());
    }
  }
  call->Complete(status);
}

grpc::ServerUnaryReactor* InferenceServiceImpl::CancelGeneration(grpc::CallbackServerContext* context,
                                                                 const grpc::ByteBuffer* request,
                                                                 grpc::ByteBuffer* response) {
  return ServeUnary<v1::CancelGenerationRequest, v1::CancelGenerationResponse>(
      sc_, "CancelGeneration", /*inference=*/false, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const v1::CancelGenerationRequest& req,
             v1::CancelGenerationResponse* resp) {
        const std::string& id = req.request_id();
        if (id.empty()) return call->Complete(core::InvalidArgumentError("request_id is empty: give the x-request-id of the call to cancel"));
        if (id.size() > 128) return call->Complete(core::InvalidArgumentError("request_id is longer than 128 characters, so no call has it"));
        const int64_t n = sc_->active == nullptr ? 0 : sc_->active->EndEarly(call->caller().name(), id);
        if (n == 0) {
          return call->Complete(core::NotFoundError("no Generate or GenerateStream call with request id '" + id +
                                                    "' is in progress for this tenant (it may have finished already)"));
        }
        resp->set_calls(n);
        call->Complete(core::OkStatus(), "cancelled=" + id);
      });
}

}  // namespace softserve::server
