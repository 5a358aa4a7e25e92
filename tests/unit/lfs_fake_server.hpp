// An in-process HTTP/1.1 server on 127.0.0.1 (an ephemeral port) for the
// LFS client's unit tests: one connection at a time, one request per
// connection (Connection: close), answered by a handler the test gives.
// It records every request, headers included, so tests can check where
// credentials went. The integration tests use the real test LFS server.
#pragma once

#include <arpa/inet.h>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace snapshotter::test {

struct FakeRequest {
    std::string method;
    std::string path;
    std::map<std::string, std::string> headers; // names lowercased
    std::string body;
};

struct FakeResponse {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

class FakeHttpServer {
  public:
    using Handler = std::function<FakeResponse(const FakeRequest&)>;

    explicit FakeHttpServer(Handler handler) : m_handler(std::move(handler)) {
        m_listener = ::socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        ::setsockopt(m_listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        ::bind(m_listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(m_listener, 16);
        socklen_t len = sizeof addr;
        ::getsockname(m_listener, reinterpret_cast<sockaddr*>(&addr), &len);
        m_port = ntohs(addr.sin_port);
        m_thread = std::thread([this] { serve(); });
    }
    ~FakeHttpServer() {
        m_stop = true;
        ::shutdown(m_listener, SHUT_RDWR);
        ::close(m_listener);
        m_thread.join();
    }
    FakeHttpServer(const FakeHttpServer&) = delete;
    FakeHttpServer& operator=(const FakeHttpServer&) = delete;

    // "http://127.0.0.1:<port>"
    [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }
    [[nodiscard]] std::vector<FakeRequest> requests() const {
        std::lock_guard lock(m_mutex);
        return m_requests;
    }

  private:
    void serve() {
        while (!m_stop) {
            int fd = ::accept(m_listener, nullptr, nullptr);
            if (fd < 0)
                return;
            handle(fd);
            ::close(fd);
        }
    }

    static bool read_more(int fd, std::string& buffer) {
        char chunk[65536];
        auto n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            return false;
        buffer.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    void handle(int fd) {
        std::string buffer;
        std::size_t head_end;
        while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos)
            if (!read_more(fd, buffer))
                return;
        FakeRequest request;
        std::string head = buffer.substr(0, head_end);
        std::size_t line_end = head.find("\r\n");
        std::string first = head.substr(0, line_end);
        request.method = first.substr(0, first.find(' '));
        request.path = first.substr(first.find(' ') + 1, first.rfind(' ') - first.find(' ') - 1);
        for (std::size_t at = line_end; at != std::string::npos && at < head.size();) {
            std::size_t next = head.find("\r\n", at + 2);
            std::string line = head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
            if (auto colon = line.find(':'); colon != std::string::npos) {
                std::string name = line.substr(0, colon);
                for (auto& c : name)
                    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                std::string value = line.substr(colon + 1);
                value.erase(0, value.find_first_not_of(' '));
                request.headers[name] = value;
            }
            at = next;
        }
        std::size_t length = 0;
        if (auto it = request.headers.find("content-length"); it != request.headers.end())
            length = std::stoul(it->second);
        if (request.headers.contains("expect"))
            ::send(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL);
        request.body = buffer.substr(head_end + 4);
        while (request.body.size() < length) {
            std::string more;
            if (!read_more(fd, more))
                return;
            request.body += more;
        }
        {
            std::lock_guard lock(m_mutex);
            m_requests.push_back(request);
        }
        FakeResponse response = m_handler(request);
        std::string out = "HTTP/1.1 " + std::to_string(response.status) + " X\r\n";
        for (const auto& [name, value] : response.headers)
            out += name + ": " + value + "\r\n";
        out += "Content-Length: " + std::to_string(response.body.size()) + "\r\nConnection: close\r\n\r\n";
        out += response.body;
        for (std::size_t sent = 0; sent < out.size();) {
            auto n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
            if (n <= 0)
                return;
            sent += static_cast<std::size_t>(n);
        }
    }

    Handler m_handler;
    int m_listener = -1;
    int m_port = 0;
    std::atomic<bool> m_stop{false};
    std::thread m_thread;
    mutable std::mutex m_mutex;
    std::vector<FakeRequest> m_requests;
};

} // namespace snapshotter::test
