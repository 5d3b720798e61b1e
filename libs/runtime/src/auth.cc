#include "crm/runtime/auth.h"

#include <jwt.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "crm/common/files.h"
#include "crm/common/status_macros.h"
#include "nlohmann/json.hpp"

namespace crm::runtime {
namespace {

struct JwtDeleter {
  void operator()(jwt_t* jwt) const { jwt_free(jwt); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtDeleter>;

absl::Status Unauthenticated(const std::string& why) {
  return absl::UnauthenticatedError(absl::StrCat("authentication failed: ", why));
}

bool AudienceMatches(jwt_t* jwt, const std::string& audience) {
  if (const char* single = jwt_get_grant(jwt, "aud")) return audience == single;
  char* json = jwt_get_grants_json(jwt, "aud");  // an array of audiences
  if (json == nullptr) return false;
  const nlohmann::json parsed = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  free(json);
  if (!parsed.is_array()) return false;
  for (const auto& entry : parsed) {
    if (entry.is_string() && entry.get<std::string>() == audience) return true;
  }
  return false;
}

// The `alg` of a token's header, or JWT_ALG_INVAL when the header is not readable JSON.
jwt_alg_t HeaderAlgorithm(const std::string& token) {
  const size_t dot = token.find('.');
  std::string header;
  if (dot == std::string::npos || !absl::WebSafeBase64Unescape(token.substr(0, dot), &header)) {
    return JWT_ALG_INVAL;
  }
  const nlohmann::json parsed = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("alg") || !parsed["alg"].is_string()) {
    return JWT_ALG_INVAL;
  }
  return jwt_str_alg(parsed["alg"].get<std::string>().c_str());
}

absl::StatusOr<std::string> Sign(const TokenClaims& claims, jwt_alg_t alg, std::string_view key) {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return absl::InternalError("jwt_new failed");
  JwtPtr jwt(raw);
  const long iat = static_cast<long>(absl::ToUnixSeconds(claims.issued_at));
  const long exp = static_cast<long>(absl::ToUnixSeconds(claims.issued_at + claims.ttl));
  if (jwt_add_grant(jwt.get(), "sub", claims.subject.c_str()) != 0 ||
      jwt_add_grant(jwt.get(), "scope", absl::StrJoin(claims.scopes, " ").c_str()) != 0 ||
      jwt_add_grant(jwt.get(), "kind", claims.kind.c_str()) != 0 ||
      jwt_add_grant(jwt.get(), "iss", claims.issuer.c_str()) != 0 ||
      jwt_add_grant(jwt.get(), "aud", claims.audience.c_str()) != 0 ||
      jwt_add_grant_int(jwt.get(), "iat", iat) != 0 ||
      jwt_add_grant_int(jwt.get(), "exp", exp) != 0 ||
      (claims.not_before != absl::InfinitePast() &&
       jwt_add_grant_int(jwt.get(), "nbf",
                         static_cast<long>(absl::ToUnixSeconds(claims.not_before))) != 0) ||
      jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(key.data()),
                  static_cast<int>(key.size())) != 0) {
    return absl::InvalidArgumentError("cannot build token (is the key valid?)");
  }
  char* encoded = jwt_encode_str(jwt.get());
  if (encoded == nullptr)
    return absl::InvalidArgumentError("cannot sign token (is the key valid?)");
  std::string token(encoded);
  free(encoded);
  return token;
}

}  // namespace

absl::Status Authorize(const Principal& principal, std::string_view scope) {
  if (principal.scopes.contains(std::string(scope)) || principal.scopes.contains(kAdminScope)) {
    return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("token of ", principal.subject, " lacks scope ", std::string(scope)));
}

absl::StatusOr<std::unique_ptr<TokenVerifier>> TokenVerifier::Create(const AuthOptions& options) {
  std::string public_key;
  if (!options.rs256_public_key_file.empty()) {
    auto read = ReadSettingFile(options.rs256_public_key_file, "jwt_public_key_file");
    if (!read.ok()) return read.status();
    if (read->empty()) return absl::InvalidArgumentError("jwt_public_key_file: the file is empty");
    public_key = *std::move(read);
  }
  if (options.hs256_secret.empty() && public_key.empty()) {
    return absl::InvalidArgumentError(
        "jwt_hs256_secret or jwt_public_key_file: one is required to verify tokens");
  }
  return std::unique_ptr<TokenVerifier>(new TokenVerifier(options, std::move(public_key)));
}

absl::StatusOr<Principal> TokenVerifier::Verify(std::string_view authorization,
                                                absl::Time now) const {
  if (authorization.empty()) return Unauthenticated("missing authorization: Bearer <token>");
  constexpr absl::string_view kPrefix = "Bearer ";
  const absl::string_view header(authorization.data(), authorization.size());
  if (!absl::StartsWithIgnoreCase(header, kPrefix)) {
    return Unauthenticated("authorization must be: Bearer <token>");
  }
  const std::string token(absl::StripAsciiWhitespace(header.substr(kPrefix.size())));
  if (token.empty()) return Unauthenticated("authorization must be: Bearer <token>");

  auto check_time = [&](const Verified& verified) -> absl::StatusOr<Principal> {
    if (verified.expires < now) return Unauthenticated("token expired");
    if (verified.not_before > now) return Unauthenticated("token not valid yet");
    return verified.principal;
  };
  {
    absl::ReaderMutexLock lock(&remembered_mu_);
    if (auto it = remembered_.find(token); it != remembered_.end()) return check_time(it->second);
  }
  CRM_ASSIGN_OR_RETURN(Verified verified, VerifySignatureAndClaims(token));
  absl::StatusOr<Principal> principal = check_time(verified);
  absl::MutexLock lock(&remembered_mu_);
  if (remembered_.size() >= kRememberedTokens) remembered_.clear();
  remembered_.emplace(token, std::move(verified));
  return principal;
}

absl::StatusOr<TokenVerifier::Verified> TokenVerifier::VerifySignatureAndClaims(
    const std::string& token) const {
  // The algorithm comes from the token header: peek at it, pick our key for that algorithm,
  // and refuse any other, so a public key can never be used as an HMAC secret.
  const jwt_alg_t alg = HeaderAlgorithm(token);
  if (alg == JWT_ALG_INVAL) return Unauthenticated("malformed token");
  const std::string* key = nullptr;
  if (alg == JWT_ALG_HS256 && !options_.hs256_secret.empty()) key = &options_.hs256_secret;
  if (alg == JWT_ALG_RS256 && !public_key_pem_.empty()) key = &public_key_pem_;
  if (key == nullptr) {
    return Unauthenticated(absl::StrCat("token algorithm ", jwt_alg_str(alg), " is not accepted"));
  }
  jwt_t* raw = nullptr;
  if (jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(key->data()),
                 static_cast<int>(key->size())) != 0 ||
      raw == nullptr) {
    return Unauthenticated("invalid token signature");
  }
  JwtPtr jwt(raw);
  if (jwt_get_alg(jwt.get()) != alg) return Unauthenticated("token algorithm changed");

  Verified verified;
  const long exp = jwt_get_grant_int(jwt.get(), "exp");
  if (exp <= 0) return Unauthenticated("token has no exp");
  verified.expires = absl::FromUnixSeconds(exp) + options_.leeway;
  const long nbf = jwt_get_grant_int(jwt.get(), "nbf");
  verified.not_before =
      nbf > 0 ? absl::FromUnixSeconds(nbf) - options_.leeway : absl::InfinitePast();
  const char* iss = jwt_get_grant(jwt.get(), "iss");
  if (iss == nullptr || options_.issuer != iss) return Unauthenticated("token issuer not accepted");
  if (!AudienceMatches(jwt.get(), options_.audience)) {
    return Unauthenticated("token audience not accepted");
  }
  const char* sub = jwt_get_grant(jwt.get(), "sub");
  if (sub == nullptr || *sub == '\0') return Unauthenticated("token has no subject");

  Principal& principal = verified.principal;
  principal.subject = sub;
  if (const char* scope = jwt_get_grant(jwt.get(), "scope")) {
    for (absl::string_view s : absl::StrSplit(scope, ' ', absl::SkipEmpty())) {
      principal.scopes.insert(std::string(s));
    }
  }
  if (const char* kind = jwt_get_grant(jwt.get(), "kind")) {
    if (std::string_view(kind) == "service") {
      principal.kind = crm::common::v1::ACTOR_KIND_SERVICE;
    } else if (std::string_view(kind) != "user") {
      return Unauthenticated("token kind must be user or service");
    }
  }
  return verified;
}

absl::StatusOr<std::string> SignHs256(const TokenClaims& claims, std::string_view secret) {
  if (secret.empty()) return absl::InvalidArgumentError("jwt_hs256_secret: must not be empty");
  return Sign(claims, JWT_ALG_HS256, secret);
}

absl::StatusOr<std::string> SignRs256(const TokenClaims& claims, std::string_view private_key_pem) {
  return Sign(claims, JWT_ALG_RS256, private_key_pem);
}

}  // namespace crm::runtime
