#pragma once
/// \file
/// The CUDA backend in one include: device tensors and masks, `Masked` of device tensors with
/// device pruning (Keepmax-Cut, Random-Cut, global thresholds), one-launch masked optimizers,
/// cuSPARSE products for pruned fully connected layers, weight histograms, and the events that
/// order them across streams.

#include "dsd/backend/cuda/device_buffer.cuh"
#include "dsd/backend/cuda/device_mask.cuh"
#include "dsd/backend/cuda/device_tensor.cuh"
#include "dsd/backend/cuda/error.cuh"
#include "dsd/backend/cuda/event.cuh"
#include "dsd/backend/cuda/histogram.cuh"
#include "dsd/backend/cuda/libraries.cuh"
#include "dsd/backend/cuda/masked.cuh"
#include "dsd/backend/cuda/optim.cuh"
#include "dsd/backend/cuda/owned.cuh"
#include "dsd/backend/cuda/select.cuh"
#include "dsd/backend/cuda/sparse_linear.cuh"
