#include "crm/service/commands.h"

#include <algorithm>
#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "crm/common/uuid.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace crm::service {
namespace {

std::string Sha256Hex(std::string_view bytes, size_t digest_bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest),
                                                  std::min<size_t>(size, digest_bytes)));
}

}  // namespace

std::string Fingerprint(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream out(&stream);
    out.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&out);
  }
  return Sha256Hex(bytes, EVP_MAX_MD_SIZE);
}

std::string DerivedId(std::string_view prefix, std::string_view seed) {
  return std::string(prefix) + Sha256Hex(seed, 12);
}

std::string IdForCreate(std::string_view prefix, std::string_view kind,
                        const std::string& request_id) {
  if (request_id.empty()) return NewUuid();
  return DerivedId(prefix, std::string(kind) + "/" + request_id);
}

absl::StatusOr<int> PageSize(int32_t requested, int fallback, int max) {
  if (requested == 0) return fallback;
  if (requested < 0 || requested > max) {
    return InvalidField("page_size", absl::StrCat("must be 1 to ", max));
  }
  return requested;
}

std::string EncodePageToken(const std::string& resume_key) {
  return absl::WebSafeBase64Escape(resume_key);
}

absl::StatusOr<std::string> DecodePageToken(const std::string& token) {
  std::string resume_key;
  if (!token.empty() && !absl::WebSafeBase64Unescape(token, &resume_key)) {
    return InvalidField("page_token", "not a token this service issued");
  }
  return resume_key;
}

absl::StatusOr<std::string> ScanIndexPage(
    const eventstore::EventStore& store, const std::vector<std::string>& prefixes,
    const std::string& page_token, int page_size,
    const std::function<absl::StatusOr<Offer>(const std::string& key, const std::string& id)>&
        offer,
    const std::string& start_after) {
  CRM_ASSIGN_OR_RETURN(std::string resume, DecodePageToken(page_token));
  // A token names a key of the listing it came from; any other key would resume elsewhere.
  if (!resume.empty() && std::none_of(prefixes.begin(), prefixes.end(), [&](const auto& prefix) {
        return resume.rfind(prefix, 0) == 0;
      })) {
    return InvalidField("page_token", "not a token of this listing (same filters, same method)");
  }
  if (resume.empty()) resume = start_after;
  size_t budget = static_cast<size_t>(page_size) * 10;
  int taken = 0;
  std::string last_key;
  for (const std::string& prefix : prefixes) {  // in key order
    const bool resumes_here = resume.rfind(prefix, 0) == 0;
    if (!resume.empty() && !resumes_here && resume > prefix) continue;  // finished earlier
    std::string after = resumes_here ? resume : "";
    while (taken < page_size && budget > 0) {
      CRM_ASSIGN_OR_RETURN(
          auto rows, store.Scan(eventstore::Table::kIndex, {.prefix = prefix, .start_after = after},
                                std::min<size_t>(budget, 256)));
      if (rows.empty()) break;
      for (const auto& [key, value] : rows) {
        --budget;
        last_key = after = key;
        CRM_ASSIGN_OR_RETURN(Offer offered, offer(key, key.substr(key.rfind('/') + 1)));
        if (offered == Offer::kDone) return std::string();
        taken += offered == Offer::kTaken ? 1 : 0;
        if (taken == page_size || budget == 0) break;
      }
    }
    if (taken == page_size || budget == 0) return EncodePageToken(last_key);
  }
  return std::string();
}

}  // namespace crm::service
