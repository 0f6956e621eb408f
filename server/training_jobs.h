// Prompt-training jobs of the TrainingService: a tenant's examples and options become a
// core::PromptTrainer run as a background task of the engine (core/engine/background.h), on the
// engine thread, with the model being served (packed weights and all: PackedMatmulWithGrad).
//
// Scheduling: each slice is the forward and backward of `examples_per_slice` examples (or a
// few dev examples' forward); the engine runs slices whenever it has no request, and under load
// within its background time fraction, so a request waits for one slice at most. Jobs take turns.
//
// Lifecycle: QUEUED (submitted, no slice yet) -> RUNNING -> SUCCEEDED / FAILED / CANCELLED.
// When the last step is done (or the dev loss stopped improving for `patience` evaluations), the
// prompt of the best dev loss (the last one without dev examples) is registered, on an upload
// worker, as the next version of the tenant's prompt name: one durable, atomic registry write,
// so a crash leaves either no version or a complete one. Then SUCCEEDED with the version, or
// FAILED with the store's error (a quota, a full disk). Jobs live in memory; a restart forgets
// them.
//
// Limits: jobs queued or running per tenant (TenantConfig::max_training_jobs) and in all
// (TrainingLimits::max_jobs), examples, steps and batch size per job, and the engine's limits
// on prompt rows, input and target tokens.
//
// Threading: every method may be called from any thread. A job's public state is guarded by its
// own mutex; the trainer is touched only on the engine thread (and by Start before submission).
#ifndef SOFTSERVE_SERVER_TRAINING_JOBS_H_
#define SOFTSERVE_SERVER_TRAINING_JOBS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/model/t5_model.h"
#include "server/auth.h"
#include "server/service_context.h"
#include "softserve/v1/softserve.pb.h"

namespace softserve::server {

namespace v1 = ::softserve::v1;

class TrainingJob;

// SUCCEEDED, FAILED or CANCELLED: the job will not change again.
bool TrainingJobEnded(const v1::TrainingJob& j);

class TrainingJobs {
 public:
  // `sc` and `model` (the one the engine serves) must outlive this.
  TrainingJobs(const ServiceContext* sc, std::shared_ptr<const core::T5Model> model);
  ~TrainingJobs();

  // Validates, tokenizes and initialises, then submits the job to the engine. Errors: see
  // TrainingService.TrainPrompt in the proto.
  core::StatusOr<v1::TrainingJob> Start(const Caller& caller, const v1::TrainPromptRequest& request);
  // NotFound unless `tenant` has a job `id`.
  core::StatusOr<v1::TrainingJob> Get(const std::string& tenant, const std::string& id) const;
  core::StatusOr<v1::TrainingJob> Cancel(const std::string& tenant, const std::string& id);
  std::vector<v1::TrainingJob> List(const std::string& tenant) const;

  // Calls `on_change` with the job's state now and after every change until it ends (on the
  // engine or an upload worker thread; it must not block or call back into this). Returns a
  // handle that stops the calls when destroyed. NotFound as Get.
  class Watch {
   public:
    virtual ~Watch() = default;
  };
  core::StatusOr<std::unique_ptr<Watch>> WatchJob(const std::string& tenant, const std::string& id,
                                                   std::function<void(const v1::TrainingJob&)> on_change);

  int64_t active_jobs() const;

 private:
  std::shared_ptr<TrainingJob> Find(const std::string& tenant, const std::string& id) const;
  void Forget(const std::string& tenant);  // ended jobs beyond max_ended_jobs_kept

  const ServiceContext* sc_;
  const std::shared_ptr<const core::T5Model> model_;
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, std::shared_ptr<TrainingJob>>> jobs_;  // tenant -> id -> job
};

}  // namespace softserve::server

#endif  // SOFTSERVE_SERVER_TRAINING_JOBS_H_
