#include "http/server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <exception>

#include "core/log.h"
#include "http/task_queue.h"
#include "tls/profile.h"

namespace gw::http {

namespace {

using core::ErrorCode;

std::shared_ptr<spdlog::logger> log() { return core::logger("http"); }

/// httplib's TaskQueue interface over our ElasticTaskQueue (httplib owns and deletes it).
class ElasticQueueAdapter : public httplib::TaskQueue {
 public:
  ElasticQueueAdapter(std::size_t min_threads, std::size_t max_threads)
      : queue_(min_threads, max_threads, std::chrono::seconds(30)) {}
  void enqueue(std::function<void()> fn) override { queue_.enqueue(std::move(fn)); }
  void shutdown() override { queue_.shutdown(); }

 private:
  ElasticTaskQueue queue_;
};

/// Headers httplib adds to the request for its own use, not sent by the client.
bool is_internal_header(const std::string& name) {
  return name == "REMOTE_ADDR" || name == "REMOTE_PORT" || name == "LOCAL_ADDR" ||
         name == "LOCAL_PORT";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// application/x-www-form-urlencoded decoding of one query component.
std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
               hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

/// The query string of the request target, parsed by us: httplib also puts url-encoded form
/// bodies into its params, and a form field is not a query parameter.
std::multimap<std::string, std::string> parse_query(const std::string& target) {
  std::multimap<std::string, std::string> out;
  const auto q = target.find('?');
  if (q == std::string::npos) return out;
  std::string_view rest(target);
  rest.remove_prefix(q + 1);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    if (!pair.empty()) {
      const auto eq = pair.find('=');
      out.emplace(url_decode(pair.substr(0, eq)),
                  eq == std::string_view::npos ? std::string() : url_decode(pair.substr(eq + 1)));
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return out;
}

/// Canonical text of an address: dotted quad for IPv4 (mapped or not), RFC 5952 for IPv6.
std::string address_text(const config::IpAddress& a) {
  char text[INET6_ADDRSTRLEN] = {};
  const bool v4 = std::all_of(a.begin(), a.begin() + 10, [](std::uint8_t b) { return b == 0; }) &&
                  a[10] == 0xff && a[11] == 0xff;
  if (v4) {
    ::inet_ntop(AF_INET, a.data() + 12, text, sizeof text);
  } else {
    ::inet_ntop(AF_INET6, a.data(), text, sizeof text);
  }
  return text;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool trusted(const config::IpAddress& a, const std::vector<config::IpNetwork>& proxies) {
  return std::any_of(proxies.begin(), proxies.end(),
                     [&](const config::IpNetwork& n) { return n.contains(a); });
}

/// Hops of X-Forwarded-For read at most: a chain of trusted proxies is short.
constexpr int kMaxForwardedHops = 32;

Request to_request(const httplib::Request& req, const std::vector<config::IpNetwork>& proxies,
                   std::atomic<bool>& warned) {
  Request r;
  r.method = req.method;
  r.path = req.path;
  r.query = parse_query(req.target);
  for (const auto& [name, value] : req.headers) {
    if (is_internal_header(name)) continue;
    auto [it, inserted] = r.headers.emplace(lower(name), value);
    // Repeated headers are one comma-separated list (RFC 9110 5.3); two Authorization headers
    // then make a malformed one, which is refused.
    if (!inserted) it->second += ", " + value;
  }
  r.content_type = req.get_header_value("Content-Type");
  const auto client = client_address(req.remote_addr, r.header("x-forwarded-for"), proxies);
  if (client.malformed && !warned.exchange(true)) {
    // Once: the header is the proxy's doing (or a client's behind it), not worth a line each.
    log()->warn(
        "event=x_forwarded_for_malformed peer={} (the TCP peer is used as the client; "
        "logged once)",
        req.remote_addr);
  }
  r.client_ip = client.ip;
  if (client.forwarded) {
    r.peer_address = client.ip;  // the proxy does not say which port the client used
  } else {
    const bool v6 = req.remote_addr.find(':') != std::string::npos;
    r.peer_address = (v6 ? "[" + req.remote_addr + "]" : req.remote_addr) + ":" +
                     std::to_string(req.remote_port);
  }
  return r;
}

void to_httplib(const Response& response, httplib::Response& res) {
  res.status = response.status;
  for (const auto& [name, value] : response.headers) res.set_header(name, value);
  if (response.stream) {
    // Pieces of at most 256 KiB, read as the client takes them: memory stays bounded.
    auto stream = response.stream;
    res.set_content_provider(
        static_cast<std::size_t>(stream->size), response.content_type,
        [stream](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
          std::vector<std::uint8_t> buffer(std::min<std::size_t>(length, 256 * 1024));
          auto n = stream->read(offset, buffer);
          if (!n.ok() || *n == 0) {
            if (!n.ok()) {
              core::logger("http")->error("event=stream_failed reason=\"{}\"", n.error().message);
            }
            return false;  // ends the response: the client sees a short body
          }
          return sink.write(reinterpret_cast<const char*>(buffer.data()), *n);
        });
    return;
  }
  if (!response.body.empty()) res.set_content(response.body, response.content_type);
}

void write_error(httplib::Response& res, int status, const std::string& code,
                 const std::string& message) {
  res.headers.erase("Content-Type");
  to_httplib(error_response(status, code, message), res);
}

/// The JSON body of an error httplib produced itself (bad request line, URI too long…).
std::pair<std::string, std::string> describe_status(int status) {
  switch (status) {
    case 400:
      return {"invalid_argument", "malformed HTTP request"};
    case 404:
      return {"not_found", "no such resource"};
    case 413:
      return {"too_large", "request body too large"};
    case 414:
      return {"too_large", "request URI too long"};
    case 416:
      return {"invalid_argument", "range not satisfiable"};
    default:
      return {"internal", "internal error"};
  }
}

std::optional<std::uint64_t> content_length(const httplib::Request& req) {
  if (!req.has_header("Content-Length")) return std::nullopt;
  const std::string text = req.get_header_value("Content-Length");
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || ptr != text.data() + text.size()) return UINT64_MAX;
  return n;
}

/// Why a body could not be read.
enum class BodyError { kNone, kTooLarge, kDuplicatePart, kUnreadable };

/// Reads the body into `out` through httplib's reader, counting every byte (decompressed,
/// de-chunked, across multipart parts) against `limit`.
BodyError read_body(const httplib::Request& req, const httplib::ContentReader& reader,
                    std::size_t limit, Request& out) {
  const auto length = content_length(req);
  if (!length && !req.has_header("Transfer-Encoding")) return BodyError::kNone;  // empty body
  if (length && *length > limit) return BodyError::kTooLarge;
  std::size_t total = 0;
  BodyError error = BodyError::kNone;
  auto count = [&](std::size_t n) {
    total += n;
    if (total > limit) error = BodyError::kTooLarge;
    return error == BodyError::kNone;
  };
  bool ok = false;
  if (req.is_multipart_form_data()) {
    FilePart* current = nullptr;
    ok = reader(
        [&](const httplib::MultipartFormData& part) {
          auto [it, inserted] =
              out.files.emplace(part.name, FilePart{part.filename, part.content_type, {}});
          if (!inserted) error = BodyError::kDuplicatePart;
          current = &it->second;
          return inserted && count(part.name.size() + part.filename.size());
        },
        [&](const char* data, std::size_t n) {
          if (!count(n)) return false;
          current->content.append(data, n);
          return true;
        });
  } else {
    ok = reader([&](const char* data, std::size_t n) {
      if (!count(n)) return false;
      out.body.append(data, n);
      return true;
    });
  }
  if (error != BodyError::kNone) return error;
  return ok ? BodyError::kNone : BodyError::kUnreadable;
}

/// ClientHello callback of the HTTPS listener: every connection switches to the current
/// snapshot, so a reloaded certificate serves the next handshake without a restart.
int use_current_context(SSL* ssl, int* alert, void* arg) {
  const auto* holder = static_cast<const tls::TlsContextHolder*>(arg);
  const auto snapshot = holder->current();
  // SSL_set_SSL_CTX takes its own reference: the connection keeps the context it started with.
  if (SSL_set_SSL_CTX(ssl, snapshot->native()) == nullptr) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

}  // namespace

ClientAddress client_address(const std::string& peer_ip,
                             const std::optional<std::string>& forwarded_for,
                             const std::vector<config::IpNetwork>& trusted_proxies) {
  ClientAddress out;
  out.ip = peer_ip;
  if (trusted_proxies.empty() || !forwarded_for || trim(*forwarded_for).empty()) return out;
  const auto peer = config::parse_ip_address(peer_ip);
  if (!peer.ok() || !trusted(*peer, trusted_proxies)) return out;
  std::string_view rest = *forwarded_for;
  std::optional<config::IpAddress> client;
  for (int hop = 0; hop < kMaxForwardedHops; ++hop) {
    const auto comma = rest.rfind(',');
    const std::string_view text =
        trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    const auto address = config::parse_ip_address(text);
    if (!address.ok()) {
      out.malformed = true;
      return out;
    }
    client = *address;
    if (!trusted(*address, trusted_proxies) || comma == std::string_view::npos) break;
    rest = rest.substr(0, comma);
    if (hop + 1 == kMaxForwardedHops) {
      out.malformed = true;  // more trusted hops than any real chain has
      return out;
    }
  }
  out.ip = address_text(*client);
  out.forwarded = true;
  return out;
}

config::Tls https_tls_config(const config::HttpTls& tls) {
  config::Tls t;
  t.enabled = true;
  t.cert_file = tls.cert_file;
  t.key_file = tls.key_file;
  t.peer_certificate = config::PeerCertificate::kNone;
  return t;
}

Server::Server(ServerOptions options, const Dispatcher& dispatcher)
    : options_(std::move(options)), dispatcher_(dispatcher) {}

Server::~Server() { stop(); }

core::Result<std::unique_ptr<Server>> Server::create(ServerOptions options,
                                                     const Dispatcher& dispatcher) {
  std::unique_ptr<Server> s(new Server(std::move(options), dispatcher));
  if (s->options_.tls.enabled) {
    auto holder = tls::TlsContextHolder::create(https_tls_config(s->options_.tls));
    if (!holder.ok()) {
      return core::make_error(holder.error().code, "http.tls: " + holder.error().message);
    }
    s->tls_ = std::move(holder).value();
    const auto profile = s->tls_->current()->profile();
    auto* holder_ptr = s->tls_.get();
    s->server_ = std::make_unique<httplib::SSLServer>([profile, holder_ptr](SSL_CTX& ctx) {
      // The listener's own context only carries the protocol settings (every connection
      // switches to the snapshot in its ClientHello), but it gets the certificate too, so a
      // handshake never starts without one.
      if (!tls::apply_profile(&ctx, profile).ok()) return false;
      SSL_CTX_set_session_cache_mode(&ctx, SSL_SESS_CACHE_OFF);
      SSL_CTX_set_options(&ctx, SSL_OP_NO_TICKET);
      SSL_CTX_set_num_tickets(&ctx, 0);
      SSL_CTX* current = holder_ptr->current()->native();
      if (SSL_CTX_use_certificate(&ctx, SSL_CTX_get0_certificate(current)) != 1 ||
          SSL_CTX_use_PrivateKey(&ctx, SSL_CTX_get0_privatekey(current)) != 1) {
        return false;
      }
      SSL_CTX_set_client_hello_cb(&ctx, use_current_context, holder_ptr);
      return true;
    });
    if (!s->server_->is_valid()) {
      return core::make_error(ErrorCode::kTls, "http.tls: cannot set up the HTTPS context");
    }
  } else {
    s->server_ = std::make_unique<httplib::Server>();
  }
  s->install_handlers();
  const auto& o = s->options_;
  const int port = o.port == 0 ? s->server_->bind_to_any_port(o.bind)
                               : (s->server_->bind_to_port(o.bind, o.port) ? o.port : -1);
  if (port <= 0) {
    return core::make_error(ErrorCode::kIo,
                            "http: cannot listen on " + o.bind + ":" + std::to_string(o.port) +
                                " (address in use, or not an address of this host)");
  }
  s->port_ = static_cast<std::uint16_t>(port);
  return s;
}

void Server::install_handlers() {
  auto& svr = *server_;
  // A thread per connection being served, `threads` kept ready and up to `max_threads`: a few
  // slow clients (httplib 0.11 has no deadline for a whole request) cannot take every thread.
  svr.new_task_queue = [min = options_.threads, max = options_.max_threads] {
    return new ElasticQueueAdapter(min, max);
  };
  // Slow or idle clients must not hold the few threads for long.
  svr.set_read_timeout(10, 0);
  svr.set_write_timeout(10, 0);
  svr.set_keep_alive_timeout(2);  // an idle keep-alive connection also delays stop() this long
  svr.set_keep_alive_max_count(100);
  svr.set_payload_max_length(options_.max_body_bytes);
  // httplib's default sets SO_REUSEPORT, which lets a second process bind the same port and
  // silently take half the connections. SO_REUSEADDR alone: restart without TIME_WAIT trouble.
  svr.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });

  const bool https = tls_ != nullptr;
  // CORS only for the configured origins (exact match); nothing at all otherwise. The token
  // travels in the Authorization header, never in a cookie, so no Allow-Credentials.
  auto cors_origin = [origins = options_.cors_origins](const httplib::Request& req) {
    const auto origin = req.get_header_value("Origin");
    const bool allowed =
        !origin.empty() && std::find(origins.begin(), origins.end(), origin) != origins.end();
    return allowed ? origin : std::string();
  };
  // Every response, httplib's own errors included.
  const bool cors = !options_.cors_origins.empty();
  svr.set_post_routing_handler(
      [https, cors, cors_origin](const httplib::Request& req, httplib::Response& res) {
        if (const auto origin = cors_origin(req); !origin.empty()) {
          res.set_header("Access-Control-Allow-Origin", origin);
          res.set_header("Access-Control-Expose-Headers", "Retry-After, Allow");
        }
        if (cors) res.set_header("Vary", "Origin");  // caches must not mix origins' answers
        res.set_header("X-Content-Type-Options", "nosniff");
        res.set_header("X-Frame-Options", "DENY");
        res.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
        res.set_header("Referrer-Policy", "no-referrer");
        res.set_header("Cache-Control", "no-store");
        if (https) res.set_header("Strict-Transport-Security", "max-age=31536000");
      });
  // Errors httplib answers by itself (malformed request, URI too long…) get our JSON shape.
  // Always "Handled": that is what makes httplib set Content-Length on responses it writes
  // without a handler (the 413 to an Expect: 100-continue), so clients do not wait for a close.
  svr.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (res.body.empty()) {
          const auto [code, message] = describe_status(res.status);
          write_error(res, res.status, code, message);
        }
        return httplib::Server::HandlerResponse::Handled;
      }));
  svr.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                               std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log()->error("event=http_exception method={} path={} what=\"{}\"", req.method, req.path, what);
    write_error(res, 500, "internal", "internal error (details are in the gateway log)");
  });
  // A declared oversize body is refused before the client sends it.
  const std::size_t limit = options_.max_body_bytes;
  svr.set_expect_100_continue_handler([limit](const httplib::Request& req, httplib::Response& res) {
    const auto length = content_length(req);
    if (length && *length > limit) {
      write_error(res, 413, "too_large", "request body over " + std::to_string(limit) + " bytes");
      res.set_header("Connection", "close");  // the client may send the body anyway
      return 413;
    }
    return 100;
  });
  svr.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    // The path only: query strings may hold patient names or IDs (study searches).
    const auto level = res.status >= 500                              ? spdlog::level::warn
                       : (req.path == "/health" && res.status == 200) ? spdlog::level::debug
                                                                      : spdlog::level::info;
    log()->log(level, "event=http_request method={} path={} status={} peer={}", req.method,
               req.path, res.status, req.remote_addr);
  });

  auto serve = [this](Request request, httplib::Response& res) {
    Response response = dispatcher_.handle(request);
    to_httplib(response, res);
  };
  const std::string all = ".*";
  auto to_request_of = [this](const httplib::Request& req) {
    return to_request(req, options_.trusted_proxies, warned_forwarded_for_);
  };
  auto without_body = [serve, to_request_of](const httplib::Request& req, httplib::Response& res) {
    serve(to_request_of(req), res);
  };
  auto with_body = [serve, to_request_of, limit](const httplib::Request& req,
                                                 httplib::Response& res,
                                                 const httplib::ContentReader& reader) {
    Request request = to_request_of(req);
    switch (read_body(req, reader, limit, request)) {
      case BodyError::kNone:
        serve(std::move(request), res);
        return;
      case BodyError::kTooLarge:
        // What was not read is still on the connection: end it after this answer.
        write_error(res, 413, "too_large", "request body over " + std::to_string(limit) + " bytes");
        res.set_header("Connection", "close");
        return;
      case BodyError::kDuplicatePart:
        write_error(res, 400, "invalid_argument", "a multipart field appears twice");
        res.set_header("Connection", "close");  // the rest of the body was not read
        return;
      case BodyError::kUnreadable:
        write_error(res, 400, "invalid_argument", "the request body could not be read");
        res.set_header("Connection", "close");
        return;
    }
  };
  using ReaderHandler = httplib::Server::HandlerWithContentReader;
  svr.Get(all, without_body);
  // A CORS preflight from an allowed origin is answered here, without a token (browsers send
  // none with it); any other OPTIONS request goes to the router like every request.
  svr.Options(all,
              [without_body, cors_origin](const httplib::Request& req, httplib::Response& res) {
                if (!cors_origin(req).empty() && req.has_header("Access-Control-Request-Method")) {
                  res.status = 204;
                  res.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE");
                  res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
                  res.set_header("Access-Control-Max-Age", "600");
                  return;
                }
                without_body(req, res);
              });
  svr.Post(all, ReaderHandler(with_body));
  svr.Put(all, ReaderHandler(with_body));
  svr.Patch(all, ReaderHandler(with_body));
  svr.Delete(all, ReaderHandler(with_body));
}

void Server::start() {
  if (thread_.joinable()) return;
  log()->info("event=http_listening bind={} port={} tls={}", options_.bind, port_,
              https() ? "true" : "false");
  thread_ = std::jthread([this] { server_->listen_after_bind(); });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so a stop() right
  // after start() cannot be lost (bounded: the loop starts at once on a bound socket).
  for (int i = 0; i < 5000 && !server_->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Server::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

core::Status Server::reload_tls(const config::HttpTls& tls) {
  if (!tls_) return core::make_error(ErrorCode::kUnsupported, "http.tls is not enabled");
  GW_RETURN_IF_ERROR(tls_->reload(https_tls_config(tls)));
  const auto snapshot = tls_->current();
  log()->info("event=https_tls_reloaded subject=\"{}\" serial={}", snapshot->certificate_subject(),
              snapshot->certificate_serial());
  return {};
}

}  // namespace gw::http
