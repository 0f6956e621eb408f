// softserve.v1.TrainingService: prompt-training jobs (training_jobs.h) for the calling tenant.
// Requests arrive as raw bytes (raw_message.h) so that malformed ones get INVALID_ARGUMENT.
// A tenant reaches only its own jobs; another tenant's job id is NOT_FOUND.
#ifndef SOFTSERVE_SERVER_TRAINING_SERVICE_H_
#define SOFTSERVE_SERVER_TRAINING_SERVICE_H_

#include "server/call.h"
#include "server/service_context.h"
#include "server/training_jobs.h"
#include "softserve/v1/softserve.grpc.pb.h"

namespace softserve::server {

using RawTrainingService = v1::TrainingService::WithRawCallbackMethod_TrainPrompt<
    v1::TrainingService::WithRawCallbackMethod_GetTrainingJob<v1::TrainingService::WithRawCallbackMethod_WatchTrainingJob<
        v1::TrainingService::WithRawCallbackMethod_CancelTrainingJob<
            v1::TrainingService::WithRawCallbackMethod_ListTrainingJobs<v1::TrainingService::Service>>>>>;

class TrainingServiceImpl final : public RawTrainingService {
 public:
  // `jobs` must outlive the service.
  TrainingServiceImpl(const ServiceContext* sc, TrainingJobs* jobs) : sc_(sc), jobs_(jobs) {}

  grpc::ServerUnaryReactor* TrainPrompt(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* GetTrainingJob(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchTrainingJob(grpc::CallbackServerContext* context,
                                                               const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* CancelTrainingJob(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                              grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListTrainingJobs(grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) override;

 private:
  const ServiceContext* sc_;
  TrainingJobs* jobs_;
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_TRAINING_SERVICE_H_
