#include "server/model_service.h"

#include "server/call.h"

#ifndef SOFTSERVE_VERSION
#define SOFTSERVE_VERSION "dev"
#endif

namespace softserve::server {

grpc::ServerUnaryReactor* ModelServiceImpl::GetModelInfo(grpc::CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return ServeUnary<::softserve::v1::GetModelInfoRequest, ::softserve::v1::ModelInfo>(
      sc_, "GetModelInfo", false, context, request, response,
      [this](UnaryCall* call, grpc::CallbackServerContext*, const ::softserve::v1::GetModelInfoRequest&,
             ::softserve::v1::ModelInfo* r) {
        Fill(call->caller(), r);
        call->Complete(core::OkStatus());
      });
}

void ModelServiceImpl::Fill(const Caller& caller, ::softserve::v1::ModelInfo* r) const {
  const core::T5Config& c = sc_->model_config;
  const core::EngineLimits& e = sc_->engine->limits();
  std::string dir = sc_->config->model_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  r->set_model_dir(caller.admin() ? sc_->config->model_dir : dir.substr(dir.find_last_of('/') + 1));
  r->set_random_weights(sc_->random_weights);
  r->set_vocab_size(c.vocab_size);
  r->set_d_model(c.d_model);
  r->set_d_kv(c.d_kv);
  r->set_d_ff(c.d_ff);
  r->set_num_heads(c.num_heads);
  r->set_num_layers(c.num_layers);
  r->set_num_decoder_layers(c.num_decoder_layers);
  const char* act = c.activation == core::Activation::kRelu ? "relu" : c.activation == core::Activation::kGelu ? "gelu" : "gelu_new";
  r->set_feed_forward_proj((c.gated ? std::string("gated-") : std::string()) + act);
  r->set_tie_word_embeddings(c.tie_word_embeddings);
  const std::string describe = sc_->engine->Describe();
  r->set_device(describe.substr(0, describe.find(' ')));
  r->set_dtype(describe.substr(describe.find(' ') + 1));
  r->set_has_tokenizer(sc_->tokenizer != nullptr);
  r->set_tokenizer_vocab_size(sc_->tokenizer ? sc_->tokenizer->vocab_size() : 0);
  auto* l = r->mutable_limits();
  l->set_max_batch_rows(e.max_rows);
  l->set_max_input_tokens(e.max_input_tokens);
  l->set_max_prompt_rows(e.max_prompt_rows);
  l->set_max_new_tokens(e.max_new_tokens);
  l->set_max_beams(e.max_beams);
  l->set_max_top_logprobs(e.max_top_logprobs);
  l->set_max_score_targets(e.max_score_targets);
  l->set_max_inputs_per_request(sc_->config->max_inputs_per_request);
  l->set_max_upload_bytes(sc_->config->max_upload_bytes);
  l->set_max_queue(e.max_queue);
  l->set_max_ensemble_prompts(e.max_ensemble_prompts);
  l->set_max_target_tokens(e.max_target_tokens);
  l->set_max_score_bytes(e.max_score_bytes);
  l->set_max_tenant_queue_tokens(e.max_tenant_queue_tokens);
  l->set_tenant_max_inflight(caller.tenant->max_inflight);
  l->set_tenant_max_inflight_tokens(caller.tenant->max_inflight_tokens);
  l->set_tenant_max_uploads(caller.tenant->max_uploads);
  r->set_registered_prompts(sc_->registry->Usage(caller.name()).prompts);
  if (caller.admin()) {
    r->set_queue_depth(sc_->engine->queue_depth());
    r->set_running_rows(sc_->engine->running_rows());
  }
  r->set_server_version(SOFTSERVE_VERSION);
  r->set_tenant(caller.name());
  r->set_prompt_store(!sc_->store_connected ? "local"
                      : sc_->store_connected() ? "shared: connected"
                                               : "shared: unreachable");
}

}  // namespace softserve::server
