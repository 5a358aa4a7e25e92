// The AWS credential chain, in the order the AWS SDKs use: environment, web
// identity (STS AssumeRoleWithWebIdentity), shared credentials and config
// files, ECS container credentials, EC2 instance metadata (IMDSv2). Every
// secret it reads is registered with register_secret() before use.
#pragma once

#include "snapshotter/storage/s3/signer.hpp"
#include "snapshotter/util/error.hpp"
#include "snapshotter/util/http.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace snapshotter::storage {

// Reads an environment variable; nullopt when unset.
using Getenv = std::function<std::optional<std::string>(std::string_view)>;
// Performs one HTTP request (a seam so tests can answer without servers).
using HttpFetch = std::function<http::HttpResult<http::Response>(const http::Request&)>;
// Reads a whole small file (a seam for tests).
using ReadFile = std::function<Result<std::string>(const std::string&)>;

// Where the chain looks: the process environment, the network and the
// file system unless a test injects fakes.
struct AwsEnvironment {
    Getenv getenv;
    HttpFetch fetch;
    ReadFile read_file;
    std::function<Clock::time_point()> now;

    // The real environment, network and files.
    static AwsEnvironment system();
};

// An INI file as sections of key/value pairs; nested (indented) keys under
// `parent =` are stored as "parent.child".
using IniFile = std::map<std::string, std::map<std::string, std::string>>;

// Parse the AWS shared-file INI dialect of `text`: [section] headers,
// `key = value` lines, '#' and ';' comment lines; names are kept as written.
IniFile parse_ini(std::string_view text);

// The settings of one profile merged from the config file (section
// "profile NAME", or "default") and the credentials file (section "NAME"),
// the credentials file winning.
std::map<std::string, std::string> load_profile(const AwsEnvironment& env, std::string_view profile);

// The profile name: AWS_PROFILE, else "default".
std::string profile_name(const AwsEnvironment& env);

// The region: `option` when non-empty, then AWS_REGION, AWS_DEFAULT_REGION,
// the profile's region, and finally us-east-1.
std::string resolve_region(const AwsEnvironment& env, std::string_view option);

// Parse an ISO 8601 UTC timestamp as AWS writes expirations
// ("2026-11-28T08:00:00Z", optionally with fractional seconds).
std::optional<Clock::time_point> parse_aws_time(std::string_view text);

// A provider's one-shot lookup: the credentials and the provider's name, or
// nullopt when the provider is not configured (the chain moves on), or an
// error when it is configured but failed (the chain stops, like the SDKs).
struct ResolvedCredentials {
    sigv4::Credentials credentials;
    std::string provider;
};
using ProviderResult = Result<std::optional<ResolvedCredentials>>;

// AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN).
ProviderResult credentials_from_env(const AwsEnvironment& env);
// AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN exchanged with STS AssumeRoleWithWebIdentity.
ProviderResult credentials_from_web_identity(const AwsEnvironment& env);
// Static keys of the profile (AWS_PROFILE or default) in the shared files.
ProviderResult credentials_from_profile(const AwsEnvironment& env);
// The ECS/EKS container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI).
ProviderResult credentials_from_container(const AwsEnvironment& env);
// EC2 instance metadata, IMDSv2; not configured when disabled or unreachable.
ProviderResult credentials_from_imds(const AwsEnvironment& env);

// The CA bundle to trust from AWS_CA_BUNDLE, or empty for the system's.
std::string ca_bundle(const AwsEnvironment& env);

// Resolve credentials through the whole chain; NotFound-like Storage error
// when no provider is configured.
Result<ResolvedCredentials> resolve_credentials(const AwsEnvironment& env);

// Credentials shared by the threads of one storage: resolved once, then
// refreshed through the chain when temporary credentials come within
// `refresh_window` of their expiry. Thread-safe.
class CredentialCache {
  public:
    // A cache resolving through `env`, refreshing `refresh_window` before expiry.
    explicit CredentialCache(AwsEnvironment env,
                             std::chrono::seconds refresh_window = std::chrono::minutes{5});
    // Current credentials, refreshed first when they are about to expire; a
    // failed refresh keeps credentials that have not expired yet (logged).
    Result<sigv4::Credentials> get();
    // Drop the cached credentials so the next get() resolves again (after a
    // server reported them expired).
    void invalidate();

  private:
    AwsEnvironment m_env;
    std::chrono::seconds m_refresh_window;
    std::mutex m_mutex;
    std::optional<ResolvedCredentials> m_current;
};

} // namespace snapshotter::storage
