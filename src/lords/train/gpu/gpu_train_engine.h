// The trainable model's forward and backward on the GPU (TrainModel with device cuda). The host
// TrainModel<float> stays the owner of every parameter, gradient and the checkpoint format: the engine
// holds device copies of the frozen weights (uploaded once) and of the trainable tensors, and around
// each call
//   - uploads the host parameter values (the optimizer, AdamW on the host, changed them),
//   - runs the layer loop of train_model.cpp on the device (same ops, same order, fp32, one stream),
//   - adds the device gradients into the host gradients (so the host's accumulate contract holds).
// The transfers are the trainable tensors only: for PEFT and QLoRA a few MB per call; QAT moves its
// latent weights (the model's size) both ways, still small next to the compute.
// Not reentrant; one engine per TrainModel.
#pragma once

#include <cstdint>
#include <memory>

#include "lords/train/grad_cross_entropy.h"
#include "lords/train/train_model.h"

namespace lords::train {

class GpuTrainEngine;

// Uploads m's weights. Throws Error{Unsupported} without a usable GPU.
std::shared_ptr<GpuTrainEngine> make_gpu_train_engine(const TrainModel<float>& m);

// The three calls TrainModel forwards (arguments already checked by TrainModel).
CrossEntropyResult gpu_forward_backward(GpuTrainEngine& e, TrainModel<float>& m, const int32_t* tokens,
                                        const int32_t* targets, const float* weights, int64_t B, int64_t T,
                                        float grad_scale);
CrossEntropyResult gpu_eval_loss(GpuTrainEngine& e, TrainModel<float>& m, const int32_t* tokens,
                                 const int32_t* targets, const float* weights, int64_t B, int64_t T);
void gpu_forward_logits(GpuTrainEngine& e, TrainModel<float>& m, float* logits, const int32_t* tokens, int64_t B,
                        int64_t T);

}  // namespace lords::train
