/*
 * Paths inside a sandbox, as spawn() takes them: checks of a bind's or symlink's inner path, and the
 * directory chain that must exist in the root before it can be bound.
 */
#ifndef HEARTH_INNER_PATHS_H_
#define HEARTH_INNER_PATHS_H_

#include <napi.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace hearth {

/* "/a/b/c" -> "/a", "/a/b", "/a/b/c" appended (once each) to dirs. `rel` is absolute, normalised. */
void AddDirChain(const std::string &root, const std::string &rel, bool include_last, std::vector<std::string> &dirs,
                 std::set<std::string> &seen);

/* An absolute path without empty, "." or ".." components and without a trailing slash. */
bool ValidInnerPath(const std::string &p);

/* Checks the inner path (second of each pair); throws a TypeError naming `what` on the first bad one. */
bool ValidInnerPaths(Napi::Env env, const std::vector<std::pair<std::string, std::string>> &pairs, const char *what);

}  // namespace hearth

#endif  // HEARTH_INNER_PATHS_H_
