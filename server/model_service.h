// softserve.v1.ModelService: what model is served, with which limits. A tenant sees its own
// prompt count and limits; server-wide load (queue depth, running rows) and the model's path
// on the server's disk only go to admin keys.
#ifndef SOFTSERVE_SERVER_MODEL_SERVICE_H_
#define SOFTSERVE_SERVER_MODEL_SERVICE_H_

#include "server/call.h"
#include "server/service_context.h"
#include "softserve/v1/softserve.grpc.pb.h"

namespace softserve::server {

class ModelServiceImpl final
    : public ::softserve::v1::ModelService::WithRawCallbackMethod_GetModelInfo<::softserve::v1::ModelService::Service> {
 public:
  explicit ModelServiceImpl(const ServiceContext* sc) : sc_(sc) {}
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;

 private:
  void Fill(const Caller& caller, ::softserve::v1::ModelInfo* r) const;
  const ServiceContext* sc_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_MODEL_SERVICE_H_
