#include "lords/tokenizer/pre_tokenizer.h"

#include "lords/core/error.h"

namespace lords::tok {

void PreTokenizer::run(std::string_view text,
                       PreTokScratch* scratch,
                       std::vector<std::string_view>* pieces) const {
  pieces->clear();
  pieces->push_back(text);
  for (const PreTokStep& step : steps_) {
    scratch->next.clear();
    for (std::string_view piece : *pieces) {
      if (step.prefix_space == PrefixSpace::Yes && !piece.empty() && piece.front() != ' ') {
        piece = scratch->owned.emplace_back(" " + std::string(piece));
      }
      if (step.split) {
        step.split->split_isolated(piece, scratch->md, &scratch->next);
      } else if (!piece.empty()) {
        scratch->next.push_back(piece);
      }
    }
    pieces->swap(scratch->next);
  }
}

PreTokenizer pre_tokenizer_for_gguf(const std::string& pre,
                                    const std::string& source,
                                    bool* ignore_merges) {
  const std::string where = source + " tokenizer.ggml.pre";
  PreTokenizer p;
  *ignore_merges = false;
  if (pre == "smollm") {
    p.add_step({PrefixSpace::No, Regex(kDigitPattern, PatternKind::Regex, where)});
    p.add_step({PrefixSpace::No, Regex(kGpt2Pattern, PatternKind::Regex, where)});
  } else if (pre == "gpt2" || pre == "gpt-2" || pre == "default") {
    p.add_step({PrefixSpace::No, Regex(kGpt2Pattern, PatternKind::Regex, where)});
  } else if (pre == "llama-bpe" || pre == "llama3") {
    p.add_step({PrefixSpace::No, Regex(kLlama3Pattern, PatternKind::Regex, where)});
    *ignore_merges = true;
  } else if (pre == "qwen2") {
    p.add_step({PrefixSpace::No, Regex(kQwen2Pattern, PatternKind::Regex, where)});
  } else {
    LORDS_FAIL(ErrorKind::Unsupported,
               "[tokenizer] {}: tokenizer.ggml.pre '{}' is not supported "
               "(supported: smollm, gpt2, default, llama-bpe, llama3, qwen2)",
               source,
               pre);
  }
  return p;
}

}  // namespace lords::tok
