// Examples and plain text -> token items with a loss weight per token, before cutting to length T.
// A token's weight is the weight of predicting it (the weight of the target it is):
//   ChatML (SmolLM2-Instruct, Qwen2; HF chat template without its default system prompt):
//     [<|im_start|>system\n{system}<|im_end|>\n]                         weight 0, only when given
//     <|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n     weight 0
//     {response}<|im_end|>                                               weight 1
//     \n                                                                 weight 0
//   Plain:  {prompt}\n (weight 0)  {response} (weight 1)  <eos> (weight 1, when the vocab has one)
// BOS goes first (weight 0) when the tokenizer adds one (Llama-3). Each segment is encoded on its
// own, so the prompt/response boundary is a token boundary, exactly as when the model generates
// after the prompt. Plain text is cut into windows of T + 1 tokens that overlap by one token, so
// every token after the first is a target exactly once, all with weight 1.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lords/tokenizer/tokenizer.h"
#include "lords/train/data_jsonl.h"

namespace lords::train {

enum class PromptFormat { ChatMl, Plain };
PromptFormat prompt_format_from_name(
    std::string_view name);  // "chatml" | "plain"; Error{Usage} else
std::string_view prompt_format_name(PromptFormat format);
// ChatML when the vocab has both <|im_start|> and <|im_end|>, else Plain.
PromptFormat default_prompt_format(const Tokenizer& tok);

struct FormatOptions {
  PromptFormat format = PromptFormat::ChatMl;
  std::string system_prompt;  // ChatML: a system turn first when non-empty
};

struct TokenItem {
  std::vector<int32_t> ids;    // (L)
  std::vector<float> weights;  // (L) weight of predicting ids[i]; weights[0] is never used
};

// Throws Error{Usage} for ChatML with a vocab that lacks <|im_start|> / <|im_end|>, and
// Error{Format} (naming source:line of the example) for text the tokenizer refuses.
TokenItem format_example(const Tokenizer& tok,
                         const Example& ex,
                         const FormatOptions& options,
                         const std::string& source);

// Windows of one text: without BOS, stream[iT, iT + T] (T + 1 tokens; the last may be shorter);
// with BOS, [BOS] + stream[iT, iT + T). Texts shorter than two tokens give no window.
std::vector<TokenItem> text_windows(const Tokenizer& tok, std::string_view text, int64_t T);

}  // namespace lords::train
