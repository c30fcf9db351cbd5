// Outputs appear whole or not at all. A command writes into a temporary sibling ("<path>.tmp-<pid>")
// and renames it onto the final path only when everything succeeded; the destructor of an uncommitted
// output deletes the temporary, so errors and exceptions leave nothing half-written behind.
#pragma once

#include <string>

namespace lords {

// A directory output (a checkpoint). Refuses an existing non-empty target unless overwrite is allowed,
// in which case the old directory is replaced only at commit time.
class AtomicDir {
 public:
  enum class Existing { Refuse, Replace };
  AtomicDir(std::string final_path, Existing existing);
  ~AtomicDir();
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;

  const std::string& tmp_path() const { return tmp_; }  // write files in here
  std::string file(const std::string& name) const { return tmp_ + "/" + name; }
  void commit();

 private:
  std::string final_, tmp_;
  Existing existing_;
  bool committed_ = false;
};

// Writes a whole small file (JSON, text) atomically: temp + fsync + rename.
void write_file_atomic(const std::string& path, const std::string& contents);

// Copies a file (used for tokenizer files); the destination is written atomically.
void copy_file_atomic(const std::string& from, const std::string& to);

}  // namespace lords
