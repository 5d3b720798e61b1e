#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace crm {

// The whole file, or INVALID_ARGUMENT naming the setting it came from ("tls_cert_file").
inline absl::StatusOr<std::string> ReadSettingFile(const std::string& path, const char* setting) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  if (!in) return absl::InvalidArgumentError(absl::StrCat(setting, ": cannot read ", path));
  return content.str();
}

}  // namespace crm
