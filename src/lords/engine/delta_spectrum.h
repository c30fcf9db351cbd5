// The singular-value spectrum of a fine-tuning update ΔW of one linear (N, K): the LoRDS paper's
// Fig. 3 (App. C) claims LoRDS PEFT's multiplicative update is nearly full rank, like full
// fine-tuning, while QLoRA's is rank r. TUNED is recognised by what it holds:
//   LoRDS PEFT  a lords checkpoint with BASE's codes Q:       ΔW = levels[Q] ⊙ (B'A' − BA)
//   QLoRA       a directory with adapters.safetensors (docs/FORMAT.md: "<name>.lora_A" (r, K),
//               "<name>.lora_B" (N, r), metadata lora.alpha and lora.rank, or peft's lora_alpha and
//               lora_rank), beside its base checkpoint, which must store this layer exactly as
//               BASE does:                                     ΔW = (alpha / r) B_lora A_lora
//   dense       an HF directory or a GGUF file:                ΔW = W_tuned − Ŵ_base
// ΔW is formed in fp64 from the stored values (products by dgemm), so an update of rank k has
// exactly k singular values above rounding. Singular values: LAPACK dgesdd, values only.
// Reported per update: σ (all, descending), ‖ΔW‖_F, the effective ranks r90 / r99 (fewest σ holding
// 90 % / 99 % of the energy Σσ²), the numerical rank (σ_i > max(N, K)·ε_f32·σ_1, numpy's
// matrix_rank tolerance for fp32 data: weights are never stored more precisely) and the stable
// rank ‖ΔW‖_F² / σ_1².
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lords/engine/checkpoint.h"

namespace lords::engine {

enum class DeltaKind { Lords, Lora, Dense };
const char* delta_kind_name(DeltaKind kind);  // "lords" | "lora" | "dense"

struct Delta {
  DeltaKind kind = DeltaKind::Dense;
  std::string layer;  // HF name in BASE
  int64_t N = 0, K = 0;
  int64_t adapter_rank = 0;  // lords: r of B', A'; lora: r; dense: 0
  std::vector<double> dW;    // (N, K)
};

// layer as an HF name ("model.layers.0.self_attn.q_proj.weight"; ".weight" may be left off) or an
// internal one ("blk.0.attn_q.weight") -> the HF name of a quantized layer of base. Error{Usage}
// naming the checkpoint and a few of its layers otherwise.
std::string resolve_layer(const Checkpoint& base, const std::string& layer);

// Throws Error naming the file for a missing layer or adapter, shapes that differ from BASE, codes
// (or, for LoRA, any stored tensor of the layer) that differ where they must match, and a BASE that
// is not a LoRDS checkpoint when TUNED is one.
Delta load_delta(const Checkpoint& base, const std::string& tuned_path, const std::string& layer);

struct Spectrum {
  std::string label;  // legend / table name
  std::string path;   // TUNED
  DeltaKind kind = DeltaKind::Dense;
  int64_t N = 0, K = 0, adapter_rank = 0;
  std::vector<double> sigma;  // min(N, K), descending
  double fro = 0;             // ‖ΔW‖_F
  int64_t rank90 = 0, rank99 = 0, numerical_rank = 0;
  double stable_rank = 0;  // 0 when ΔW = 0
};

// All singular values of A (N, K) row-major, descending; A is overwritten.
std::vector<double> singular_values(std::vector<double> A, int64_t N, int64_t K);
Spectrum delta_spectrum(const Delta& delta, const std::string& label, const std::string& path);

nlohmann::json spectra_json(const std::string& base,
                            const std::string& layer,
                            const std::vector<Spectrum>& spectra);
std::string spectra_text(const nlohmann::json& report);  // the table `lords inspect --delta` prints

}  // namespace lords::engine
