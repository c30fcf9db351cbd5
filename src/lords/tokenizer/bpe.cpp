#include "lords/tokenizer/bpe.h"

#include <mutex>
#include <queue>

#include "lords/core/error.h"
#include "lords/tokenizer/utf8.h"

namespace lords::tok {
namespace {

// Pieces longer than this are rare (long runs of one character) and not worth caching.
constexpr size_t kCacheMaxPieceBytes = 64;
// Bound on cached pieces; past it new pieces are encoded but not stored (HF's Cache does the same).
constexpr size_t kCacheCapacity = size_t{1} << 17;

struct ByteTable {
  std::array<uint32_t, 256> to_cp{};
  std::array<std::string, 256> to_text{};
  std::array<int16_t, 324> from_cp{};  // code point -> byte; the table's image is below U+0144

  ByteTable() {
    from_cp.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
      to_cp[b] = printable ? b : next++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
      append_utf8(to_cp[b], &to_text[b]);
    }
    LORDS_ASSERT(next == 324);
  }
};

const ByteTable& byte_table() {
  static const ByteTable table;
  return table;
}

}  // namespace

struct BpeModel::Cache {
  std::mutex mu;
  std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> map;
};

uint32_t byte_to_unicode(uint8_t b) {
  return byte_table().to_cp[b];
}

std::string byte_level_decode(std::string_view token_text) {
  const ByteTable& t = byte_table();
  std::string out;
  for (size_t i = 0; i < token_text.size();) {
    size_t len = 0;
    const uint32_t cp = decode_utf8(token_text, i, &len);
    if (cp >= t.from_cp.size() || t.from_cp[cp] < 0) return std::string(token_text);
    out.push_back(static_cast<char>(t.from_cp[cp]));
    i += len;
  }
  return out;
}

BpeModel::BpeModel(StringIdMap vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options,
                   const std::string& source)
    : vocab_(std::move(vocab)), options_(options), cache_(std::make_shared<Cache>()) {
  const ByteTable& t = byte_table();
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(t.to_text[b]);
    byte_id_[b] = it == vocab_.end() ? -1 : it->second;
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = vocab_.find(a), ib = vocab_.find(b), iab = vocab_.find(a + b);
    LORDS_CHECK(ia != vocab_.end() && ib != vocab_.end() && iab != vocab_.end(),
                ErrorKind::Format,
                "[tokenizer] {}: merge {} '{} {}' uses a token that is not in the vocab",
                source,
                rank,
                a,
                b);
    // A repeated pair keeps its last rank, as HF's HashMap collect does.
    merges_[(uint64_t(uint32_t(ia->second)) << 32) | uint32_t(ib->second)] =
        Merge{static_cast<int32_t>(rank), iab->second};
  }
}

std::optional<int32_t> BpeModel::find(std::string_view token_text) const {
  auto it = vocab_.find(token_text);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const BpeModel::Merge* BpeModel::find_merge(int32_t a, int32_t b) const {
  auto it = merges_.find((uint64_t(uint32_t(a)) << 32) | uint32_t(b));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::encode_piece(std::string_view piece, std::vector<int32_t>* out) const {
  const bool cacheable = piece.size() <= kCacheMaxPieceBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mu);
    auto it = cache_->map.find(piece);
    if (it != cache_->map.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out->size();
  bool whole = false;
  if (options_.ignore_merges) {
    std::string text;
    for (char c : piece) text += byte_table().to_text[static_cast<uint8_t>(c)];
    if (auto id = find(text)) {
      out->push_back(*id);
      whole = true;
    }
  }
  if (!whole) merge_all(piece, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_->mu);
    if (cache_->map.size() < kCacheCapacity) {
      cache_->map.emplace(std::string(piece),
                          std::vector<int32_t>(out->begin() + first, out->end()));
    }
  }
}

void BpeModel::merge_all(std::string_view piece, std::vector<int32_t>* out) const {
  // Symbols form a doubly linked list over the bytes; a merged-away symbol gets id -1.
  struct Symbol {
    int32_t id, prev, next;
  };
  std::vector<Symbol> sym;
  sym.reserve(piece.size());
  for (char c : piece) {
    int32_t id = byte_id_[static_cast<uint8_t>(c)];
    if (id < 0) {
      if (!options_.unk_id) continue;  // HF drops a char it cannot spell when there is no unk token
      id = *options_.unk_id;
    }
    const auto i = static_cast<int32_t>(sym.size());
    sym.push_back({id, i - 1, i + 1});
  }
  if (sym.empty()) return;
  sym.back().next = -1;

  // Candidate merges; the top is the lowest rank, then the leftmost position (HF's Merge ordering).
  struct Cand {
    int32_t rank, pos, new_id;
    bool operator<(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand> queue;
  for (size_t i = 0; i + 1 < sym.size(); ++i) {
    if (const Merge* m = find_merge(sym[i].id, sym[i + 1].id)) {
      queue.push({m->rank, static_cast<int32_t>(i), m->new_id});
    }
  }
  while (!queue.empty()) {
    const Cand top = queue.top();
    queue.pop();
    Symbol& cur = sym[top.pos];
    if (cur.id < 0 || cur.next < 0) continue;
    // Stale entry: one side has been merged since it was queued.
    const Merge* m = find_merge(cur.id, sym[cur.next].id);
    if (m == nullptr || m->new_id != top.new_id) continue;
    const int32_t right = cur.next;
    cur.id = top.new_id;
    cur.next = sym[right].next;
    sym[right].id = -1;
    if (cur.next >= 0) sym[cur.next].prev = top.pos;
    if (cur.prev >= 0) {
      if (const Merge* ml = find_merge(sym[cur.prev].id, cur.id))
        queue.push({ml->rank, cur.prev, ml->new_id});
    }
    if (cur.next >= 0) {
      if (const Merge* mr = find_merge(cur.id, sym[cur.next].id))
        queue.push({mr->rank, top.pos, mr->new_id});
    }
  }
  for (const Symbol& s : sym) {
    if (s.id >= 0) out->push_back(s.id);
  }
}

}  // namespace lords::tok
