// TLS from files given in the config: a throwaway CA and server certificate made with openssl;
// a client trusting the CA talks to the server, a plaintext client cannot, and with a client CA
// configured (mTLS) a client without a certificate is refused.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/common/file_util.h"
#include "tests/e2e/server_fixture.h"
#include "tests/testing/reference_data.h"
#include "tests/testing/temp_dir.h"

namespace softserve {
namespace {

class E2eTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(std::system("command -v openssl > /dev/null"), 0) << "openssl is needed (scripts/install-deps.sh installs it)";
    const std::string d = dir_.path();
    const std::string cmd =
        "cd " + d + " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem"
        " && openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr"
        " && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost' > san.ext"
        " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.pem"
        " && openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout client.key -out client.csr"
        " && openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -out client.pem";
    ASSERT_EQ(std::system((cmd + " > /dev/null 2>&1").c_str()), 0);
  }
  client::ClientOptions Options(const testing::ServerProcess& server) {
    client::ClientOptions o;
    o.target = server.target();
    o.api_key = "alice-key";
    o.max_attempts = 1;
    o.timeout = std::chrono::seconds(10);
    return o;
  }
  testing::ScopedTempDir dir_{"softserve_tls"};
};

TEST_F(E2eTlsTest, ServerOnlyTls) {
  testing::ServerOptions so;
  so.model_dir = testing::ReferenceModelDir("t5-tiny-v1_0");
  so.extra_args = {"--tls-cert-file", dir_.File("server.pem"), "--tls-key-file", dir_.File("server.key")};
  so.tls_ca_file = dir_.File("ca.pem");
  testing::ServerProcess server(so);
  client::ClientOptions tls = Options(server);
  tls.tls_root_ca_file = dir_.File("ca.pem");
  auto ok = client::Client::Connect(tls).value->GetModelInfo();
  EXPECT_TRUE(ok.ok()) << ok.status.error_message();
  auto plain = client::Client::Connect(Options(server)).value->GetModelInfo();
  EXPECT_EQ(plain.status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(E2eTlsTest, MutualTlsRequiresAClientCertificate) {
  testing::ServerOptions so;
  so.model_dir = testing::ReferenceModelDir("t5-tiny-v1_0");
  so.extra_args = {"--tls-cert-file", dir_.File("server.pem"), "--tls-key-file", dir_.File("server.key"),
                   "--tls-client-ca-file", dir_.File("ca.pem")};
  so.tls_ca_file = dir_.File("ca.pem");
  so.tls_client_cert_file = dir_.File("client.pem");
  so.tls_client_key_file = dir_.File("client.key");
  testing::ServerProcess server(so);
  client::ClientOptions with_cert = Options(server);
  with_cert.tls_root_ca_file = dir_.File("ca.pem");
  with_cert.tls_client_cert_file = dir_.File("client.pem");
  with_cert.tls_client_key_file = dir_.File("client.key");
  auto ok = client::Client::Connect(with_cert).value->GetModelInfo();
  EXPECT_TRUE(ok.ok()) << ok.status.error_message();
  client::ClientOptions no_cert = Options(server);
  no_cert.tls_root_ca_file = dir_.File("ca.pem");
  EXPECT_FALSE(client::Client::Connect(no_cert).value->GetModelInfo().ok());
}

}  // namespace
}  // namespace softserve
