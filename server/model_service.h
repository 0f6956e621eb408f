// softserve.v1.ModelService: what model is served, where, with which limits.
#ifndef SOFTSERVE_SERVER_MODEL_SERVICE_H_
#define SOFTSERVE_SERVER_MODEL_SERVICE_H_

#include "server/service_context.h"
#include "softserve/v1/softserve.grpc.pb.h"

namespace softserve::server {

class ModelServiceImpl final : public ::softserve::v1::ModelService::CallbackService {
 public:
  explicit ModelServiceImpl(const ServiceContext* sc) : sc_(sc) {}
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const ::softserve::v1::GetModelInfoRequest* request,
                                         ::softserve::v1::ModelInfo* response) override;

 private:
  const ServiceContext* sc_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_MODEL_SERVICE_H_
