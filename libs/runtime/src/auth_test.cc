#include "crm/runtime/auth.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "crm/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace crm::runtime {
namespace {

using ::crm::testing::IsOk;
using ::crm::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kSecret[] = "test-secret-test-secret-test-secret";
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TokenClaims Claims(std::vector<std::string> scopes = {"contacts:read"}) {
  return TokenClaims{.subject = "alice", .scopes = std::move(scopes), .issued_at = kNow};
}

std::unique_ptr<TokenVerifier> Hs256Verifier() {
  auto verifier = TokenVerifier::Create({.hs256_secret = kSecret});
  EXPECT_THAT(verifier, IsOk());
  return *std::move(verifier);
}

std::string Bearer(const absl::StatusOr<std::string>& token) {
  EXPECT_THAT(token, IsOk());
  return "Bearer " + token.value_or("");
}

struct RsaKeys {
  std::string private_pem;
  std::string public_pem;
};

RsaKeys GenerateRsaKeys() {
  EVP_PKEY* key = EVP_RSA_gen(2048);
  RsaKeys keys;
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, key, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub, key);
  char* data = nullptr;
  keys.private_pem.assign(data, BIO_get_mem_data(priv, &data));
  keys.public_pem.assign(data, BIO_get_mem_data(pub, &data));
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(key);
  return keys;
}

TEST(TokenVerifierTest, AcceptsAValidHs256TokenAndReadsItsClaims) {
  auto verifier = Hs256Verifier();
  TokenClaims claims = Claims({"contacts:read", "contacts:write"});
  claims.kind = "service";
  auto principal = verifier->Verify(Bearer(SignHs256(claims, kSecret)), kNow + absl::Minutes(1));
  ASSERT_THAT(principal, IsOk());
  EXPECT_EQ(principal->subject, "alice");
  EXPECT_TRUE(principal->scopes.contains("contacts:write"));
  EXPECT_EQ(principal->kind, crm::common::v1::ACTOR_KIND_SERVICE);
  EXPECT_THAT(Authorize(*principal, "contacts:write"), IsOk());
  EXPECT_THAT(Authorize(*principal, "pipeline:write"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("pipeline:write")));
}

TEST(TokenVerifierTest, KindDefaultsToUserAndAdminGrantsEveryScope) {
  auto verifier = Hs256Verifier();
  auto principal = verifier->Verify(Bearer(SignHs256(Claims({"admin"}), kSecret)), kNow);
  ASSERT_THAT(principal, IsOk());
  EXPECT_EQ(principal->kind, crm::common::v1::ACTOR_KIND_USER);
  EXPECT_THAT(Authorize(*principal, "metrics:read"), IsOk());
}

TEST(TokenVerifierTest, RefusesEveryBadToken) {
  auto verifier = Hs256Verifier();
  const std::string good = Bearer(SignHs256(Claims(), kSecret));
  auto refused = [&](const std::string& header, absl::Time now = kNow) {
    return verifier->Verify(header, now);
  };
  EXPECT_THAT(refused(""), StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("missing")));
  EXPECT_THAT(refused("Basic YWxpY2U6cHc="), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(refused("Bearer "), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(refused("Bearer not.a.jwt"), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(refused(good.substr(0, good.size() - 4) + "AAAA"),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("signature")));
  EXPECT_THAT(refused(Bearer(SignHs256(Claims(), "another-secret"))),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("signature")));
  EXPECT_THAT(refused(good, kNow + absl::Hours(13)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
  TokenClaims foreign_issuer = Claims();
  foreign_issuer.issuer = "someone-else";
  EXPECT_THAT(refused(Bearer(SignHs256(foreign_issuer, kSecret))),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("issuer")));
  TokenClaims foreign_audience = Claims();
  foreign_audience.audience = "billing";
  EXPECT_THAT(refused(Bearer(SignHs256(foreign_audience, kSecret))),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("audience")));
  TokenClaims no_subject = Claims();
  no_subject.subject = "";
  EXPECT_THAT(refused(Bearer(SignHs256(no_subject, kSecret))),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("subject")));
  TokenClaims odd_kind = Claims();
  odd_kind.kind = "robot";
  EXPECT_THAT(refused(Bearer(SignHs256(odd_kind, kSecret))),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("kind")));
  // alg "none" with the signature stripped.
  EXPECT_THAT(
      refused("Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
              "eyJzdWIiOiJhbGljZSIsImlzcyI6ImNybS1kZXYiLCJhdWQiOiJjcm0iLCJleHAiOjk5OTk5OTk5OTl9."),
      StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(TokenVerifierTest, Rs256WithAPublicKeyFileAndNoAlgorithmConfusion) {
  crm::testing::TempDir dir;
  const RsaKeys keys = GenerateRsaKeys();
  const std::string key_file = dir.Sub("public.pem");
  std::ofstream(key_file) << keys.public_pem;
  auto verifier = TokenVerifier::Create({.rs256_public_key_file = key_file});
  ASSERT_THAT(verifier, IsOk());

  auto principal = (*verifier)->Verify(Bearer(SignRs256(Claims(), keys.private_pem)), kNow);
  ASSERT_THAT(principal, IsOk());
  EXPECT_EQ(principal->subject, "alice");

  // An attacker who knows the public key signs HS256 with it as the HMAC secret.
  EXPECT_THAT((*verifier)->Verify(Bearer(SignHs256(Claims(), keys.public_pem)), kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("algorithm")));
  // A different private key.
  EXPECT_THAT((*verifier)->Verify(Bearer(SignRs256(Claims(), GenerateRsaKeys().private_pem)), kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("signature")));
}

// A remembered token skips the signature check, never the clock.
TEST(TokenVerifierTest, ARememberedTokenStillExpires) {
  auto verifier = Hs256Verifier();
  const std::string token = Bearer(SignHs256(Claims(), kSecret));  // exp: kNow + 12 h
  EXPECT_THAT(verifier->Verify(token, kNow), IsOk());
  EXPECT_THAT(verifier->Verify(token, kNow + absl::Hours(12) + absl::Seconds(31)),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
  EXPECT_THAT(verifier->Verify(token, kNow + absl::Hours(12) + absl::Seconds(29)), IsOk());
}

TEST(TokenVerifierTest, ARememberedTokenIsStillNotValidBeforeItsTime) {
  auto verifier = Hs256Verifier();
  TokenClaims claims = Claims();
  claims.not_before = kNow + absl::Hours(1);
  const std::string token = Bearer(SignHs256(claims, kSecret));
  EXPECT_THAT(verifier->Verify(token, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not valid yet")));
  EXPECT_THAT(verifier->Verify(token, kNow + absl::Hours(1)), IsOk());
  EXPECT_THAT(verifier->Verify(token, kNow + absl::Minutes(59) + absl::Seconds(31)),
              IsOk());  // the 30 s leeway
  EXPECT_THAT(verifier->Verify(token, kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("not valid yet")));
}

TEST(TokenVerifierTest, ARememberedTokenVouchesForNoOtherToken) {
  auto verifier = Hs256Verifier();
  const std::string good = *SignHs256(Claims({"contacts:read"}), kSecret);
  ASSERT_THAT(verifier->Verify("Bearer " + good, kNow), IsOk());
  // The remembered token's header and signature around another payload (more scopes).
  const std::string other = *SignHs256(Claims({"admin"}), "another-secret");
  const std::vector<std::string> g = absl::StrSplit(good, '.');
  const std::vector<std::string> o = absl::StrSplit(other, '.');
  ASSERT_EQ(g.size(), 3u);
  ASSERT_EQ(o.size(), 3u);
  EXPECT_THAT(verifier->Verify(absl::StrCat("Bearer ", g[0], ".", o[1], ".", g[2]), kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("signature")));
  EXPECT_THAT(verifier->Verify("Bearer " + good.substr(0, good.size() - 4) + "AAAA", kNow),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("signature")));
  // The same token again, with the header's optional whitespace: still alice's.
  auto again = verifier->Verify("bearer  " + good + " ", kNow);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->subject, "alice");
  EXPECT_FALSE(again->scopes.contains("admin"));
}

TEST(TokenVerifierTest, NeedsAKey) {
  EXPECT_THAT(TokenVerifier::Create({}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("jwt_hs256_secret")));
  EXPECT_THAT(TokenVerifier::Create({.rs256_public_key_file = "/nonexistent/key.pem"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("jwt_public_key_file")));
}

}  // namespace
}  // namespace crm::runtime
