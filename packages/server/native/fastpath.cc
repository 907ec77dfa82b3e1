// The media path's per-packet work that JavaScript cannot do cheaply: AES-GCM sealing and opening of
// SRTP (RFC 7714) with one OpenSSL context per key, reused for every packet, and the datagrams of a turn
// of the event loop sent with sendmmsg(2), each destination's in as few messages as UDP GSO allows. Node's own OpenSSL (its exported symbols) does the
// cryptography, so both paths use the same library.
#include <napi.h>
#include <openssl/evp.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <vector>
#include <algorithm>
#include <array>
#include <netinet/udp.h>

namespace {

constexpr size_t kKeyBytes = 16;
constexpr size_t kSaltBytes = 12;
constexpr size_t kTagBytes = 16;

Napi::Value Fail(Napi::Env env, const char* message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

// An AES-128-GCM context for `key` (info[0]), encrypting or decrypting, and the salt (info[1]) its IVs
// take: the first 12 bytes (a session salt may be derived longer, as for AES-CM). Null after throwing.
EVP_CIPHER_CTX* NewGcmContext(const Napi::CallbackInfo& info, bool encrypt, uint8_t* salt_out) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsBuffer()) {
    Fail(env, "(key, salt): two buffers");
    return nullptr;
  }
  auto key = info[0].As<Napi::Buffer<uint8_t>>();
  auto salt = info[1].As<Napi::Buffer<uint8_t>>();
  if (key.Length() != kKeyBytes || salt.Length() < kSaltBytes) {
    Fail(env, "a 16-byte key and a salt of at least 12 bytes");
    return nullptr;
  }
  std::memcpy(salt_out, salt.Data(), kSaltBytes);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  const int ok = ctx == nullptr ? 0
                 : encrypt      ? EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr, key.Data(), nullptr)
                                : EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr, key.Data(), nullptr);
  if (ok != 1) {
    if (ctx != nullptr) EVP_CIPHER_CTX_free(ctx);
    Fail(env, "OpenSSL refused the key");
    return nullptr;
  }
  return ctx;
}

// IV = salt XOR (0x0000 || SSRC || ROC || SEQ), RFC 7714 section 8.1.
void WriteIv(const uint8_t* salt, uint32_t ssrc, uint32_t roc, uint32_t seq, uint8_t* iv) {
  const uint8_t fields[kSaltBytes] = {0, 0,
                                      uint8_t(ssrc >> 24), uint8_t(ssrc >> 16), uint8_t(ssrc >> 8), uint8_t(ssrc),
                                      uint8_t(roc >> 24), uint8_t(roc >> 16), uint8_t(roc >> 8), uint8_t(roc),
                                      uint8_t(seq >> 8), uint8_t(seq)};
  for (size_t i = 0; i < kSaltBytes; i++) iv[i] = fields[i] ^ salt[i];
}

// An ObjectWrap around one AES-128-GCM context (encrypting or decrypting) for its key, and the salt its IVs take.
template <typename Self, bool kEncrypt>
class GcmContextWrap : public Napi::ObjectWrap<Self> {
 public:
  explicit GcmContextWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<Self>(info), ctx_(NewGcmContext(info, kEncrypt, salt_)) {}

  ~GcmContextWrap() override {
    if (ctx_ != nullptr) EVP_CIPHER_CTX_free(ctx_);
  }

 protected:
  // The IV of the packet whose SSRC, rollover counter and sequence number are info[first..first + 3).
  void IvOf(const Napi::CallbackInfo& info, size_t first, uint8_t* iv) const {
    WriteIv(salt_, info[first].As<Napi::Number>().Uint32Value(), info[first + 1].As<Napi::Number>().Uint32Value(),
            info[first + 2].As<Napi::Number>().Uint32Value(), iv);
  }

  // The salt first: the context's initializer fills it.
  uint8_t salt_[kSaltBytes] = {};
  EVP_CIPHER_CTX* ctx_;
};

class GcmSealer : public GcmContextWrap<GcmSealer, true> {
 public:
  using GcmContextWrap::GcmContextWrap;

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "GcmSealer", {InstanceMethod("seal", &GcmSealer::Seal)});
  }

 private:
  // seal(datagram, headerBytes, prefix, prefixLength, payload, payloadStart, ssrc, rolloverCounter, sequenceNumber):
  // datagram[headerBytes..] = AES-GCM(prefix[0..prefixLength] ++ payload[payloadStart..]) ++ tag, the header
  // (datagram[0..headerBytes]) authenticated. The datagram is exactly that long.
  Napi::Value Seal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 9 || !info[0].IsBuffer() || !info[2].IsBuffer() || !info[4].IsBuffer()) {
      return Fail(env, "seal: datagram, headerBytes, prefix, prefixLength, payload, payloadStart, ssrc, rolloverCounter, sequenceNumber");
    }
    auto datagram = info[0].As<Napi::Buffer<uint8_t>>();
    auto prefix = info[2].As<Napi::Buffer<uint8_t>>();
    auto payload = info[4].As<Napi::Buffer<uint8_t>>();
    const size_t header_bytes = info[1].As<Napi::Number>().Uint32Value();
    const size_t prefix_bytes = info[3].As<Napi::Number>().Uint32Value();
    const size_t payload_start = info[5].As<Napi::Number>().Uint32Value();
    if (prefix_bytes > prefix.Length() || payload_start > payload.Length()) return Fail(env, "seal: prefix or payload out of range");
    const size_t body_bytes = prefix_bytes + payload.Length() - payload_start;
    if (header_bytes + body_bytes + kTagBytes != datagram.Length()) return Fail(env, "seal: datagram length");

    uint8_t iv[kSaltBytes];
    IvOf(info, 6, iv);
    uint8_t* out = datagram.Data();
    int written = 0;
    bool ok = EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, iv) == 1 &&
              EVP_EncryptUpdate(ctx_, nullptr, &written, out, int(header_bytes)) == 1;
    uint8_t* at = out + header_bytes;
    if (ok && prefix_bytes > 0) {
      ok = EVP_EncryptUpdate(ctx_, at, &written, prefix.Data(), int(prefix_bytes)) == 1;
      at += written;
    }
    if (ok && payload.Length() > payload_start) {
      ok = EVP_EncryptUpdate(ctx_, at, &written, payload.Data() + payload_start, int(payload.Length() - payload_start)) == 1;
      at += written;
    }
    if (ok) {
      ok = EVP_EncryptFinal_ex(ctx_, at, &written) == 1;
      at += written;
    }
    if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, int(kTagBytes), at) == 1;
    if (!ok) return Fail(env, "seal: OpenSSL failed");
    return env.Undefined();
  }
};

// The receiving side: AES-128-GCM SRTP opened with one OpenSSL context per key.
class GcmOpener : public GcmContextWrap<GcmOpener, false> {
 public:
  using GcmContextWrap::GcmContextWrap;

  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "GcmOpener", {InstanceMethod("open", &GcmOpener::Open)});
  }

 private:
  // open(plain, packet, headerBytes, ssrc, rolloverCounter, sequenceNumber): whether `packet` (header,
  // ciphertext, tag) authenticates; if so `plain` (packet's length less the tag) holds its header and payload.
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 6 || !info[0].IsBuffer() || !info[1].IsBuffer()) {
      return Fail(env, "open: plain, packet, headerBytes, ssrc, rolloverCounter, sequenceNumber");
    }
    auto plain = info[0].As<Napi::Buffer<uint8_t>>();
    auto packet = info[1].As<Napi::Buffer<uint8_t>>();
    const size_t header_bytes = info[2].As<Napi::Number>().Uint32Value();
    if (packet.Length() < header_bytes + kTagBytes || plain.Length() != packet.Length() - kTagBytes) {
      return Fail(env, "open: lengths");
    }
    uint8_t iv[kSaltBytes];
    IvOf(info, 3, iv);
    const uint8_t* in = packet.Data();
    const size_t body_bytes = packet.Length() - kTagBytes - header_bytes;
    uint8_t tag[kTagBytes];
    std::memcpy(tag, in + header_bytes + body_bytes, kTagBytes);
    std::memcpy(plain.Data(), in, header_bytes);
    int written = 0;
    bool ok = EVP_DecryptInit_ex(ctx_, nullptr, nullptr, nullptr, iv) == 1 &&
              EVP_DecryptUpdate(ctx_, nullptr, &written, in, int(header_bytes)) == 1;
    if (ok && body_bytes > 0) ok = EVP_DecryptUpdate(ctx_, plain.Data() + header_bytes, &written, in + header_bytes, int(body_bytes)) == 1;
    if (ok) ok = EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, int(kTagBytes), tag) == 1;
    // Final fails when the tag does not match: the packet is not authentic.
    if (ok) ok = EVP_DecryptFinal_ex(ctx_, plain.Data() + header_bytes + body_bytes, &written) == 1;
    return Napi::Boolean::New(env, ok);
  }
};

// UDP generic segmentation offload (Linux 4.18+): several datagrams to one address go down the stack
// as one, and are cut into datagrams of `segment` bytes (the last may be shorter) at the end. Off once
// the kernel or the route refuses it.
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
constexpr size_t kMaxSegments = 64;      // the kernel's UDP_MAX_SEGMENTS
constexpr size_t kMaxGsoBytes = 65000;   // under an IPv4 datagram's limit
bool gso_usable = true;

// One message of a batch: datagrams [first, first + segments) of `order`, to one address.
struct Run {
  uint32_t first;
  uint32_t segments;
  uint16_t segment_bytes;  // 0: no segmentation (one datagram)
};

// sendBatch(fd, datagrams, count, addresses, ports, unsent): sends datagrams[0..count) to IPv4
// addresses (host order) and ports, never blocking. A destination's datagrams keep their order; runs
// of them of one size (the last may be smaller) leave as one message with UDP_SEGMENT, the rest one
// message each, all in sendmmsg(2) calls. A datagram the kernel refuses alone counts as sent, as a
// send of its own would. Returns how many were not sent (the socket's buffer is full), marked 1 in
// `unsent` (a Uint8Array of at least `count`): the caller queues those.
Napi::Value SendBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[1].IsArray() || !info[3].IsTypedArray() || !info[4].IsTypedArray() || !info[5].IsTypedArray()) {
    return Fail(env, "sendBatch: fd, datagrams, count, addresses (Uint32Array), ports (Uint16Array), unsent (Uint8Array)");
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  auto datagrams = info[1].As<Napi::Array>();
  const uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  auto addresses = info[3].As<Napi::Uint32Array>();
  auto ports = info[4].As<Napi::Uint16Array>();
  auto unsent = info[5].As<Napi::Uint8Array>();
  if (count > datagrams.Length() || count > addresses.ElementLength() || count > ports.ElementLength() ||
      count > unsent.ElementLength()) {
    return Fail(env, "sendBatch: count out of range");
  }
  thread_local std::vector<iovec> datagram_vectors;
  thread_local std::vector<uint32_t> order;
  thread_local std::vector<iovec> vectors;
  thread_local std::vector<Run> runs;
  thread_local std::vector<mmsghdr> messages;
  thread_local std::vector<sockaddr_in> targets;
  thread_local std::vector<std::array<uint8_t, CMSG_SPACE(sizeof(uint16_t))>> controls;
  datagram_vectors.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value value = datagrams[i];
    if (!value.IsBuffer()) return Fail(env, "sendBatch: a datagram is not a buffer");
    auto datagram = value.As<Napi::Buffer<uint8_t>>();
    datagram_vectors[i] = {datagram.Data(), datagram.Length()};
    unsent[i] = 0;
  }
  // By destination, each one's datagrams in their order.
  order.resize(count);
  for (uint32_t i = 0; i < count; i++) order[i] = i;
  const auto destination = [&](uint32_t i) { return (uint64_t(addresses[i]) << 16) | ports[i]; };
  if (gso_usable) std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return destination(a) < destination(b); });
  // Runs: one size, the last of a run may be smaller.
  runs.clear();
  vectors.resize(count);
  for (uint32_t at = 0; at < count;) {
    const uint32_t i = order[at];
    const size_t size = datagram_vectors[i].iov_len;
    uint32_t segments = 1;
    size_t bytes = size;
    if (gso_usable && size > 0) {
      while (at + segments < count && segments < kMaxSegments) {
        const uint32_t next = order[at + segments];
        const size_t next_size = datagram_vectors[next].iov_len;
        if (destination(next) != destination(i) || next_size == 0 || next_size > size || bytes + next_size > kMaxGsoBytes) break;
        segments++;
        bytes += next_size;
        if (next_size < size) break;  // a shorter one ends the run
      }
    }
    for (uint32_t k = 0; k < segments; k++) vectors[at + k] = datagram_vectors[order[at + k]];
    runs.push_back({at, segments, segments > 1 ? uint16_t(size) : uint16_t(0)});
    at += segments;
  }
  messages.resize(runs.size());
  targets.resize(runs.size());
  controls.resize(runs.size());
  for (size_t r = 0; r < runs.size(); r++) {
    const Run& run = runs[r];
    const uint32_t i = order[run.first];
    sockaddr_in& target = targets[r];
    std::memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons(ports[i]);
    target.sin_addr.s_addr = htonl(addresses[i]);
    msghdr& header = messages[r].msg_hdr;
    std::memset(&messages[r], 0, sizeof(mmsghdr));
    header.msg_name = &target;
    header.msg_namelen = sizeof target;
    header.msg_iov = &vectors[run.first];
    header.msg_iovlen = run.segments;
    if (run.segment_bytes > 0) {
      header.msg_control = controls[r].data();
      header.msg_controllen = controls[r].size();
      cmsghdr* control = CMSG_FIRSTHDR(&header);
      control->cmsg_level = SOL_UDP;
      control->cmsg_type = UDP_SEGMENT;
      control->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      std::memcpy(CMSG_DATA(control), &run.segment_bytes, sizeof(uint16_t));
    }
  }
  size_t handled = 0;
  uint32_t left = 0;
  while (handled < runs.size()) {
    const int sent = sendmmsg(fd, messages.data() + handled, unsigned(runs.size() - handled), MSG_DONTWAIT);
    if (sent > 0) {
      handled += size_t(sent);
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      break;
    } else if (messages[handled].msg_hdr.msg_controllen > 0 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
      // Segmentation refused (no checksum offload on the route, an old kernel): the run goes one
      // datagram a message, as every later batch does.
      gso_usable = false;
      const Run& run = runs[handled];
      for (uint32_t k = 0; k < run.segments; k++) {
        msghdr single = {};
        single.msg_name = messages[handled].msg_hdr.msg_name;
        single.msg_namelen = sizeof(sockaddr_in);
        single.msg_iov = &vectors[run.first + k];
        single.msg_iovlen = 1;
        while (sendmsg(fd, &single, MSG_DONTWAIT) < 0 && errno == EINTR) {
        }
      }
      handled++;
    } else {
      handled++;  // this message alone is refused (e.g. a firewall's rule): the others still go
    }
  }
  for (size_t r = handled; r < runs.size(); r++) {
    for (uint32_t k = 0; k < runs[r].segments; k++) unsent[order[runs[r].first + k]] = 1;
    left += runs[r].segments;
  }
  return Napi::Number::New(env, left);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("GcmSealer", GcmSealer::Define(env));
  exports.Set("GcmOpener", GcmOpener::Define(env));
  exports.Set("sendBatch", Napi::Function::New(env, SendBatch));
  exports.Set("gsoUsable", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), gso_usable); }));
  return exports;
}

}  // namespace

NODE_API_MODULE(fastpath, Init)
