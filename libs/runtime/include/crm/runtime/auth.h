#pragma once

// Bearer-token authentication (JWT: HS256 with a shared dev secret, RS256 with a public key)
// and scope-based authorization. The token subject is the only source of an event's actor.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "crm/common/v1/common.pb.h"

namespace crm::runtime {

// Who is calling, as proven by a verified token.
struct Principal {
  std::string subject;                      // `sub`: becomes the event's actor_id
  absl::flat_hash_set<std::string> scopes;  // `scope`, space-separated in the token
  crm::common::v1::ActorKind kind = crm::common::v1::ACTOR_KIND_USER;  // `kind`: user | service
};

inline constexpr char kAdminScope[] = "admin";

// OK when the principal holds `scope` (or admin), else PERMISSION_DENIED naming the scope.
absl::Status Authorize(const Principal& principal, std::string_view scope);

struct AuthOptions {
  std::string hs256_secret;                   // CRM_JWT_HS256_SECRET (development)
  std::string rs256_public_key_file;          // CRM_JWT_PUBLIC_KEY_FILE (production keys)
  std::string issuer = "crm-dev";             // CRM_JWT_ISSUER
  std::string audience = "crm";               // CRM_JWT_AUDIENCE
  absl::Duration leeway = absl::Seconds(30);  // clock skew allowed on exp/nbf
};

class TokenVerifier {
 public:
  // Needs a secret or a readable public key file (INVALID_ARGUMENT naming the setting).
  static absl::StatusOr<std::unique_ptr<TokenVerifier>> Create(const AuthOptions& options);

  // Verifies "Bearer <jwt>" (the authorization header's value). Missing, malformed, forged,
  // expired or foreign (issuer/audience) tokens are UNAUTHENTICATED. A token whose signature
  // and claims were verified once is remembered (clients send the same token for its whole
  // life, and checking a signature costs more than the rest of a small call); its validity
  // period is checked against `now` on every call.
  absl::StatusOr<Principal> Verify(std::string_view authorization, absl::Time now) const;

  // At most this many tokens are remembered; a full memory starts over.
  static constexpr size_t kRememberedTokens = 4096;

 private:
  // What a token proves once its signature and claims are verified; the time checks are
  // left to each call.
  struct Verified {
    Principal principal;
    absl::Time expires;     // exp + leeway
    absl::Time not_before;  // nbf - leeway, or the infinite past
  };

  TokenVerifier(AuthOptions options, std::string public_key_pem)
      : options_(std::move(options)), public_key_pem_(std::move(public_key_pem)) {}
  absl::StatusOr<Verified> VerifySignatureAndClaims(const std::string& token) const;

  const AuthOptions options_;
  const std::string public_key_pem_;
  mutable absl::Mutex remembered_mu_;
  mutable absl::flat_hash_map<std::string, Verified> remembered_
      ABSL_GUARDED_BY(remembered_mu_);
};

// Token minting, for crmctl and tests (HS256 with the dev secret, or RS256 with a private key).
struct TokenClaims {
  std::string subject;
  std::vector<std::string> scopes;
  std::string kind = "user";
  std::string issuer = "crm-dev";
  std::string audience = "crm";
  absl::Time issued_at = absl::Now();
  absl::Duration ttl = absl::Hours(12);
  absl::Time not_before = absl::InfinitePast();  // `nbf`, left out when infinite
};
absl::StatusOr<std::string> SignHs256(const TokenClaims& claims, std::string_view secret);
absl::StatusOr<std::string> SignRs256(const TokenClaims& claims, std::string_view private_key_pem);

}  // namespace crm::runtime
