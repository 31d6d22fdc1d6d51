/*
 * Inner paths of a sandbox's binds and symlinks (see inner-paths.h). Pure string work, no system calls.
 */
#include "inner-paths.h"

#include "system-error.h"

namespace hearth {

void AddDirChain(const std::string &root, const std::string &rel, bool include_last, std::vector<std::string> &dirs,
                 std::set<std::string> &seen) {
  size_t pos = 1;
  while (true) {
    size_t next = rel.find('/', pos);
    bool last = next == std::string::npos;
    if (last && !include_last) break;
    std::string prefix = last ? rel : rel.substr(0, next);
    if (seen.insert(prefix).second) dirs.push_back(root + prefix);
    if (last) break;
    pos = next + 1;
  }
}

bool ValidInnerPath(const std::string &p) {
  if (p.size() < 2 || p[0] != '/' || p.back() == '/') return false;
  size_t pos = 1;
  while (pos <= p.size()) {
    size_t next = p.find('/', pos);
    if (next == std::string::npos) next = p.size();
    std::string comp = p.substr(pos, next - pos);
    if (comp.empty() || comp == "." || comp == "..") return false;
    pos = next + 1;
  }
  return true;
}

bool ValidInnerPaths(Napi::Env env, const std::vector<std::pair<std::string, std::string>> &pairs, const char *what) {
  for (const auto &pair : pairs) {
    if (!ValidInnerPath(pair.second)) {
      ThrowArgError(env, std::string(what) + " must be a normalised absolute path: " + pair.second);
      return false;
    }
  }
  return true;
}

}  // namespace hearth
