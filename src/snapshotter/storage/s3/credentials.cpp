#include "snapshotter/storage/s3/credentials.hpp"

#include "snapshotter/storage/s3/xml.hpp"
#include "snapshotter/util/fs.hpp"
#include "snapshotter/util/redact.hpp"
#include "snapshotter/util/text.hpp"

#include <algorithm>
#include <cstdlib>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace snapshotter::storage {
namespace {

constexpr std::string_view k_ecs_host = "http://169.254.170.2";
constexpr std::string_view k_imds_endpoint = "http://169.254.169.254";

std::optional<std::string> env_value(const AwsEnvironment& env, std::string_view name) {
    auto v = env.getenv(name);
    if (!v || v->empty())
        return std::nullopt;
    return v;
}

std::string home_path(const AwsEnvironment& env, std::string_view var, std::string_view relative) {
    if (auto v = env_value(env, var)) {
        if (v->starts_with("~/"))
            if (auto home = env_value(env, "HOME"))
                return *home + v->substr(1);
        return *v;
    }
    auto home = env_value(env, "HOME").value_or("");
    return home + "/" + std::string(relative);
}

// Register every secret of `c` so that no log line or message can show it.
sigv4::Credentials registered(sigv4::Credentials c) {
    register_secret(c.secret_access_key);
    register_secret(c.session_token);
    return c;
}

// The host of an http(s) URL, without port and brackets.
std::string url_host(std::string_view url) {
    auto scheme = url.find("://");
    if (scheme == std::string_view::npos)
        return {};
    std::string_view rest = url.substr(scheme + 3);
    rest = rest.substr(0, rest.find_first_of("/?#"));
    if (auto at = rest.rfind('@'); at != std::string_view::npos)
        rest = rest.substr(at + 1);
    if (rest.starts_with('[')) {
        auto close = rest.find(']');
        return std::string(rest.substr(1, close == std::string_view::npos ? rest.npos : close - 1));
    }
    return std::string(rest.substr(0, rest.find(':')));
}

// The SDKs allow plain http for container credentials only on loopback and
// the ECS/EKS link-local addresses.
bool is_allowed_container_url(std::string_view url) {
    if (url.starts_with("https://"))
        return true;
    if (!url.starts_with("http://"))
        return false;
    std::string host = url_host(url);
    return host == "localhost" || host.starts_with("127.") || host == "::1" || host == "169.254.170.2" ||
           host == "169.254.170.23" || host == "fd00:ec2::23";
}

// Credentials from the JSON document the container and instance endpoints
// serve (AccessKeyId, SecretAccessKey, Token, Expiration).
Result<sigv4::Credentials> credentials_from_json(std::string_view body, std::string_view source) {
    auto doc = nlohmann::json::parse(body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object())
        return fail(Error::storage(fmt::format("{}: the credentials response is not JSON", source)));
    auto text = [&](const char* name) -> std::string {
        auto it = doc.find(name);
        return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (auto code = text("Code"); !code.empty() && code != "Success")
        return fail(Error::storage(fmt::format("{}: credentials endpoint answered Code {}", source, code)));
    sigv4::Credentials c{text("AccessKeyId"), text("SecretAccessKey"), text("Token"), std::nullopt};
    register_secret(c.secret_access_key);
    register_secret(c.session_token);
    if (c.access_key_id.empty() || c.secret_access_key.empty())
        return fail(Error::storage(
            fmt::format("{}: the credentials response lacks AccessKeyId or SecretAccessKey", source)));
    if (auto exp = text("Expiration"); !exp.empty())
        c.expiration = parse_aws_time(exp);
    return c;
}

std::string describe_http_failure(const http::Response& r) {
    auto code = xml::first(r.body, "Code");
    auto message = xml::first(r.body, "Message");
    std::string out = fmt::format("HTTP {}", r.status);
    if (code)
        out += " " + *code;
    if (message)
        out += ": " + *message;
    return redact(out);
}

} // namespace

AwsEnvironment AwsEnvironment::system() {
    AwsEnvironment env;
    env.getenv = [](std::string_view name) -> std::optional<std::string> {
        const char* v = std::getenv(std::string(name).c_str());
        if (v == nullptr)
            return std::nullopt;
        return std::string(v);
    };
    env.fetch = [](const http::Request& request) {
        http::Client client;
        return client.perform(request);
    };
    env.read_file = [](const std::string& path) {
        return snapshotter::read_file(path, std::size_t{1} << 20);
    };
    env.now = [] { return Clock::now(); };
    return env;
}

IniFile parse_ini(std::string_view text) {
    IniFile out;
    std::string section;
    std::string parent; // a key whose value is empty: indented lines below it nest
    bool in_section = false;
    std::size_t start = 0;
    while (start < text.size()) {
        auto nl = text.find('\n', start);
        std::string_view raw = text.substr(start, nl == std::string_view::npos ? text.npos : nl - start);
        start = nl == std::string_view::npos ? text.size() : nl + 1;
        bool indented = !raw.empty() && (raw.front() == ' ' || raw.front() == '\t');
        std::string_view line = trim_space(raw);
        if (line.empty() || line.front() == '#' || line.front() == ';')
            continue;
        if (line.front() == '[') {
            auto close = line.find(']');
            if (close == std::string_view::npos)
                continue;
            section = std::string(trim_space(line.substr(1, close - 1)));
            out[section];
            in_section = true;
            parent.clear();
            continue;
        }
        if (!in_section)
            continue;
        auto eq = line.find('=');
        if (eq == std::string_view::npos)
            continue;
        std::string key(trim_space(line.substr(0, eq)));
        std::string value(trim_space(line.substr(eq + 1)));
        if (indented && !parent.empty()) {
            out[section][parent + "." + key] = value;
            continue;
        }
        // Inline comments need whitespace before them: "key = v # note".
        for (std::string_view marker : {" #", " ;", "\t#", "\t;"})
            if (auto pos = value.find(marker); pos != std::string::npos)
                value = std::string(trim_space(std::string_view(value).substr(0, pos)));
        parent = value.empty() ? key : std::string();
        out[section][key] = value;
    }
    return out;
}

std::string profile_name(const AwsEnvironment& env) {
    if (auto p = env_value(env, "AWS_PROFILE"))
        return *p;
    return "default";
}

std::map<std::string, std::string> load_profile(const AwsEnvironment& env, std::string_view profile) {
    std::map<std::string, std::string> out;
    if (auto config = env.read_file(home_path(env, "AWS_CONFIG_FILE", ".aws/config"))) {
        IniFile ini = parse_ini(*config);
        std::string name = profile == "default" ? "default" : "profile " + std::string(profile);
        auto it = ini.find(name);
        if (it == ini.end() && profile == "default")
            it = ini.find("profile default");
        if (it != ini.end())
            out = it->second;
    }
    if (auto creds = env.read_file(home_path(env, "AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"))) {
        IniFile ini = parse_ini(*creds);
        if (auto it = ini.find(std::string(profile)); it != ini.end())
            for (const auto& [k, v] : it->second)
                out[k] = v;
    }
    return out;
}

std::string resolve_region(const AwsEnvironment& env, std::string_view option) {
    if (!option.empty())
        return std::string(option);
    if (auto r = env_value(env, "AWS_REGION"))
        return *r;
    if (auto r = env_value(env, "AWS_DEFAULT_REGION"))
        return *r;
    auto profile = load_profile(env, profile_name(env));
    if (auto it = profile.find("region"); it != profile.end() && !it->second.empty())
        return it->second;
    return "us-east-1";
}

std::optional<Clock::time_point> parse_aws_time(std::string_view text) {
    text = trim_space(text);
    if (text.size() < 19)
        return std::nullopt;
    std::string_view rest = text.substr(19);
    // Accept "Z", fractional seconds, and a zero offset.
    if (!rest.empty() && rest.front() == '.') {
        std::size_t i = 1;
        while (i < rest.size() && std::isdigit(static_cast<unsigned char>(rest[i])))
            ++i;
        rest.remove_prefix(i);
    }
    if (!(rest.empty() || rest == "Z" || rest == "+00:00" || rest == "+0000"))
        return std::nullopt;
    return parse_rfc3339(std::string(text.substr(0, 19)) + "Z");
}

std::string ca_bundle(const AwsEnvironment& env) {
    return env_value(env, "AWS_CA_BUNDLE").value_or("");
}

ProviderResult credentials_from_env(const AwsEnvironment& env) {
    auto id = env_value(env, "AWS_ACCESS_KEY_ID");
    auto secret = env_value(env, "AWS_SECRET_ACCESS_KEY");
    if (!id || !secret)
        return std::nullopt;
    return ResolvedCredentials{
        registered({*id, *secret, env_value(env, "AWS_SESSION_TOKEN").value_or(""), std::nullopt}),
        "environment"};
}

ProviderResult credentials_from_web_identity(const AwsEnvironment& env) {
    auto token_file = env_value(env, "AWS_WEB_IDENTITY_TOKEN_FILE");
    auto role_arn = env_value(env, "AWS_ROLE_ARN");
    if (!token_file || !role_arn)
        return std::nullopt;
    auto token = env.read_file(*token_file);
    if (!token)
        return fail(token.error().with_context("web identity: AWS_WEB_IDENTITY_TOKEN_FILE"));
    std::string jwt(trim_space(*token));
    register_secret(jwt);
    std::string session =
        env_value(env, "AWS_ROLE_SESSION_NAME")
            .value_or(fmt::format(
                "snapshotter-{}",
                std::chrono::duration_cast<std::chrono::seconds>(env.now().time_since_epoch()).count()));
    std::string endpoint =
        env_value(env, "AWS_ENDPOINT_URL_STS")
            .or_else([&] { return env_value(env, "AWS_ENDPOINT_URL"); })
            .value_or(fmt::format("https://sts.{}.amazonaws.com", resolve_region(env, "")));
    while (endpoint.ends_with('/'))
        endpoint.pop_back();
    // AssumeRoleWithWebIdentity is not signed: the token is the proof.
    std::string body = sigv4::encode_query({{"Action", "AssumeRoleWithWebIdentity"},
                                            {"Version", "2011-06-15"},
                                            {"RoleArn", *role_arn},
                                            {"RoleSessionName", session},
                                            {"WebIdentityToken", jwt}});
    http::Request request;
    request.method = "POST";
    request.url = endpoint + "/";
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                       {"Accept", "application/xml"}};
    request.body = http::as_body(body);
    request.timeout = std::chrono::seconds{30};
    request.ca_bundle = ca_bundle(env);
    auto response = env.fetch(request);
    if (!response)
        return fail(response.error().error.with_context("web identity: STS AssumeRoleWithWebIdentity"));
    if (!response->ok())
        return fail(Error::storage(fmt::format("web identity: STS AssumeRoleWithWebIdentity for {}: {}",
                                               *role_arn, describe_http_failure(*response))));
    auto creds_xml = xml::all(response->body, "Credentials");
    if (creds_xml.empty())
        return fail(Error::storage("web identity: STS answered without Credentials"));
    sigv4::Credentials c{xml::first(creds_xml.front(), "AccessKeyId").value_or(""),
                         xml::first(creds_xml.front(), "SecretAccessKey").value_or(""),
                         xml::first(creds_xml.front(), "SessionToken").value_or(""), std::nullopt};
    c = registered(std::move(c));
    if (c.access_key_id.empty() || c.secret_access_key.empty())
        return fail(Error::storage("web identity: STS answered without AccessKeyId or SecretAccessKey"));
    if (auto exp = xml::first(creds_xml.front(), "Expiration"))
        c.expiration = parse_aws_time(*exp);
    return ResolvedCredentials{std::move(c), "web identity"};
}

ProviderResult credentials_from_profile(const AwsEnvironment& env) {
    std::string name = profile_name(env);
    auto profile = load_profile(env, name);
    auto id = profile.find("aws_access_key_id");
    auto secret = profile.find("aws_secret_access_key");
    if (id != profile.end() && secret != profile.end() && !id->second.empty() && !secret->second.empty()) {
        auto token = profile.find("aws_session_token");
        return ResolvedCredentials{registered({id->second, secret->second,
                                               token != profile.end() ? token->second : "", std::nullopt}),
                                   fmt::format("profile {}", name)};
    }
    if (env_value(env, "AWS_PROFILE") && !profile.empty())
        return fail(Error::storage(fmt::format(
            "profile {}: no aws_access_key_id/aws_secret_access_key (role_arn, sso and credential_process "
            "profiles are not supported)",
            name)));
    if (env_value(env, "AWS_PROFILE"))
        return fail(
            Error::storage(fmt::format("profile {}: not found in the AWS config or credentials file", name)));
    return std::nullopt;
}

ProviderResult credentials_from_container(const AwsEnvironment& env) {
    std::string url;
    if (auto relative = env_value(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"))
        url = std::string(k_ecs_host) + *relative;
    else if (auto full = env_value(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI"))
        url = *full;
    else
        return std::nullopt;
    if (!is_allowed_container_url(url))
        return fail(Error::storage(fmt::format(
            "container credentials: {} must be https or a loopback/ECS address", redact_url(url))));
    http::Request request;
    request.url = url;
    request.connect_timeout = std::chrono::seconds{2};
    request.timeout = std::chrono::seconds{5};
    request.ca_bundle = ca_bundle(env);
    std::optional<std::string> token;
    if (auto file = env_value(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
        auto content = env.read_file(*file);
        if (!content)
            return fail(content.error().with_context(
                "container credentials: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
        token = std::string(trim_space(*content));
    } else if (auto value = env_value(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
        token = *value;
    }
    if (token) {
        register_secret(*token);
        request.headers.emplace_back("Authorization", *token);
    }
    request.headers.emplace_back("Accept", "application/json");
    std::optional<http::HttpError> last_error;
    for (int attempt = 1; attempt <= 3; ++attempt) {
        auto response = env.fetch(request);
        if (!response) {
            last_error = response.error();
            if (!response.error().transport)
                break;
            continue;
        }
        if (response->status >= 500) {
            last_error = http::HttpError{Error::storage(describe_http_failure(*response)), true};
            continue;
        }
        if (!response->ok())
            return fail(Error::storage(fmt::format("container credentials from {}: {}", redact_url(url),
                                                   describe_http_failure(*response))));
        auto c = credentials_from_json(response->body, "container credentials");
        if (!c)
            return fail(c.error());
        return ResolvedCredentials{std::move(*c), "container"};
    }
    return fail(
        last_error->error.with_context(fmt::format("container credentials from {}", redact_url(url))));
}

ProviderResult credentials_from_imds(const AwsEnvironment& env) {
    if (ascii_lower(env_value(env, "AWS_EC2_METADATA_DISABLED").value_or("")) == "true")
        return std::nullopt;
    std::string endpoint =
        env_value(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT").value_or(std::string(k_imds_endpoint));
    while (endpoint.ends_with('/'))
        endpoint.pop_back();
    auto base = [&] {
        http::Request r;
        r.connect_timeout = std::chrono::seconds{1};
        r.timeout = std::chrono::seconds{2};
        return r;
    };
    // IMDSv2: a session token first (a PUT, which a hop limit of 1 keeps
    // inside the instance), then the role name, then its credentials.
    http::Request token_request = base();
    token_request.method = "PUT";
    token_request.url = endpoint + "/latest/api/token";
    token_request.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
    auto token = env.fetch(token_request);
    if (!token) {
        // No metadata service here: the chain simply has nothing.
        spdlog::debug("instance metadata: {}", token.error().error.message);
        return std::nullopt;
    }
    if (!token->ok())
        return fail(
            Error::storage(fmt::format("instance metadata: token request answered HTTP {}", token->status)));
    std::string session(trim_space(token->body));
    register_secret(session);

    http::Request role_request = base();
    role_request.url = endpoint + "/latest/meta-data/iam/security-credentials/";
    role_request.headers = {{"X-aws-ec2-metadata-token", session}};
    auto role = env.fetch(role_request);
    if (!role)
        return fail(role.error().error.with_context("instance metadata: role name"));
    if (role->status == 404)
        return fail(Error::storage("instance metadata: no IAM role is attached to this instance"));
    if (!role->ok())
        return fail(Error::storage(
            fmt::format("instance metadata: role name request answered HTTP {}", role->status)));
    std::string role_name(trim_space(std::string_view(role->body).substr(0, role->body.find('\n'))));
    if (role_name.empty())
        return fail(Error::storage("instance metadata: empty role name"));

    http::Request creds_request = base();
    creds_request.url = endpoint + "/latest/meta-data/iam/security-credentials/" + role_name;
    creds_request.headers = {{"X-aws-ec2-metadata-token", session}};
    auto creds = env.fetch(creds_request);
    if (!creds)
        return fail(creds.error().error.with_context("instance metadata: role credentials"));
    if (!creds->ok())
        return fail(Error::storage(fmt::format("instance metadata: credentials of role {} answered HTTP {}",
                                               role_name, creds->status)));
    auto c = credentials_from_json(creds->body, "instance metadata");
    if (!c)
        return fail(c.error());
    return ResolvedCredentials{std::move(*c), "instance metadata"};
}

Result<ResolvedCredentials> resolve_credentials(const AwsEnvironment& env) {
    using Provider = ProviderResult (*)(const AwsEnvironment&);
    // The AWS SDK order.
    constexpr Provider k_chain[] = {credentials_from_env, credentials_from_web_identity,
                                    credentials_from_profile, credentials_from_container,
                                    credentials_from_imds};
    for (Provider provider : k_chain) {
        auto found = provider(env);
        if (!found)
            return fail(found.error());
        if (*found) {
            spdlog::debug("AWS credentials from {} (access key {})", (*found)->provider,
                          (*found)->credentials.access_key_id);
            return std::move(**found);
        }
    }
    return fail(Error::storage("no AWS credentials found (environment, web identity, profile, container and "
                               "instance metadata were tried)"));
}

CredentialCache::CredentialCache(AwsEnvironment env, std::chrono::seconds refresh_window)
    : m_env(std::move(env)), m_refresh_window(refresh_window) {}

Result<sigv4::Credentials> CredentialCache::get() {
    std::lock_guard lock(m_mutex);
    auto now = m_env.now();
    if (m_current) {
        const auto& exp = m_current->credentials.expiration;
        if (!exp || now + m_refresh_window < *exp)
            return m_current->credentials;
    }
    auto fresh = resolve_credentials(m_env);
    if (!fresh) {
        if (m_current && m_current->credentials.expiration && now < *m_current->credentials.expiration) {
            spdlog::warn("refreshing AWS credentials failed, keeping the current ones until they expire: {}",
                         fresh.error().message);
            return m_current->credentials;
        }
        return fail(fresh.error());
    }
    if (m_current)
        spdlog::info("AWS credentials refreshed from {}", fresh->provider);
    m_current = std::move(*fresh);
    return m_current->credentials;
}

void CredentialCache::invalidate() {
    std::lock_guard lock(m_mutex);
    m_current.reset();
}

} // namespace snapshotter::storage
