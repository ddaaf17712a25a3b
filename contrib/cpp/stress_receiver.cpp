//go:build ignore

// The line above keeps the Go tool from treating this file as cgo source of
// package cpp; it is an ordinary comment to a C++ compiler.
//
// stress_receiver: several client threads push valid tokens and garbage at
// one TokenReceiver while another thread polls latest(), then the receiver
// is stopped with clients still connecting; for a run under ThreadSanitizer
// and under AddressSanitizer with UndefinedBehaviorSanitizer (cpp_test.go
// builds and runs both):
//
//   g++ -std=c++17 -g -O1 -pthread -fsanitize=thread stress_receiver.cpp -o stress
//   ./stress /tmp/stress.sock 300
//
// Each client checks its answer: OK for a valid token, ERROR: ... for
// anything else, nothing when it hung up first.

#include "token_receiver.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::int64_t kNow = 1762983055;

int dial(const std::string& path) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr;
    socklen_t len = 0;
    if (fd < 0 || !trs::detail::make_unix_addr(path, addr, len) ||
        ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
        if (fd >= 0) ::close(fd);
        return -1;
    }
    return fd;
}

// push sends payload, half-closes unless hang_up, and returns the answer.
std::string push(const std::string& path, const std::string& payload, bool hang_up) {
    const int fd = dial(path);
    if (fd < 0) {
        return "dial failed";
    }
    std::size_t off = 0;
    while (off < payload.size()) {
        const ssize_t n = ::send(fd, payload.data() + off, payload.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    std::string answer;
    if (!hang_up) {
        ::shutdown(fd, SHUT_WR);
        char buf[128];
        ssize_t n;
        while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
            answer.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return answer;
}

std::string valid(int i) {
    return "{\"access_token\": \"I0.stress-" + std::to_string(i) + "@\", \"refresh_token\": \"r-" + std::to_string(i) +
           "\", \"expires_at\": " + std::to_string(kNow + 1800) + ", \"future\": [1, {\"x\": null}]}";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s SOCKET_PATH ROUNDS\n", argv[0]);
        return 2;
    }
    const std::string path = argv[1];
    const int rounds = std::atoi(argv[2]);
    std::atomic<long> tokens{0}, errors{0}, failures{0};

    trs::TokenReceiver::Options opts;
    opts.address = path;
    opts.max_size = 512;
    opts.read_timeout = std::chrono::milliseconds(2000);
    opts.now = [] { return kNow; };
    opts.on_token = [&](const trs::Token&) { tokens.fetch_add(1); };
    opts.on_error = [&](const std::string&) { errors.fetch_add(1); };
    trs::TokenReceiver receiver(std::move(opts));
    std::string err;
    if (!receiver.start(&err)) {
        std::fprintf(stderr, "stress_receiver: %s\n", err.c_str());
        return 1;
    }

    std::atomic<bool> done{false};
    std::thread poller([&] {
        while (!done.load()) {
            if (auto t = receiver.latest()) {
                if (t->access_token.empty()) failures.fetch_add(1);
            }
            (void)receiver.bound_address();
            (void)receiver.running();
        }
    });

    std::vector<std::thread> clients;
    constexpr int kinds = 5;
    long want_tokens = 0, want_errors = 0;
    for (int c = 0; c < 4; ++c) {
        for (int i = 0; i < rounds; ++i) {
            const int kind = (i + c) % kinds;
            want_tokens += kind == 0;
            want_errors += kind >= 1 && kind <= 3;
        }
        clients.emplace_back([&, c] {
            for (int i = 0; i < rounds; ++i) {
                std::string answer;
                bool ok = true;
                switch ((i + c) % kinds) {
                case 0:
                    answer = push(path, valid(i), false);
                    ok = answer == "OK";
                    break;
                case 1:
                    answer = push(path, "{\"access_token\": 7}", false);
                    ok = answer.rfind("ERROR: ", 0) == 0;
                    break;
                case 2:
                    answer = push(path, std::string(2000, 'x'), false);
                    ok = answer == "ERROR: message larger than 512 bytes";
                    break;
                case 3:
                    answer = push(path, valid(i).substr(0, static_cast<std::size_t>(i % 40)), false);
                    ok = answer.rfind("ERROR: ", 0) == 0;
                    break;
                default:
                    (void)push(path, valid(i), true);  // hangs up without reading
                }
                if (!ok) {
                    std::fprintf(stderr, "stress_receiver: client %d round %d: answer %s\n", c, i, answer.c_str());
                    failures.fetch_add(1);
                }
            }
        });
    }
    for (auto& t : clients) t.join();

    // Stop while a client is connected and silent: stop() must not wait
    // for its read_timeout, and must leave no socket file.
    const int silent = dial(path);
    receiver.stop();
    if (silent >= 0) ::close(silent);
    done.store(true);
    poller.join();

    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) {
        std::fprintf(stderr, "stress_receiver: socket file left behind\n");
        failures.fetch_add(1);
    }
    // The hung-up valid tokens may or may not have been taken.
    if (tokens.load() < want_tokens || errors.load() != want_errors) {
        std::fprintf(stderr, "stress_receiver: %ld tokens (want >= %ld), %ld errors (want %ld)\n", tokens.load(),
                     want_tokens, errors.load(), want_errors);
        failures.fetch_add(1);
    }
    std::printf("stress_receiver: %ld tokens, %ld rejected, %ld failures\n", tokens.load(), errors.load(),
                failures.load());
    return failures.load() == 0 ? 0 : 1;
}
