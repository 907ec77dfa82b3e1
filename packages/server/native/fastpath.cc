// The media path's per-packet work that JavaScript cannot do cheaply: AES-GCM sealing and opening of
// SRTP (RFC 7714) with one OpenSSL context per key, reused for every packet, and the datagrams of a turn
// of the event loop sent with one sendmmsg(2). Node's own OpenSSL (its exported symbols) does the
// cryptography, so both paths use the same library.
#include <napi.h>
#include <openssl/evp.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <vector>

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

// sendBatch(fd, datagrams, count, addresses, ports): sends datagrams[0..count) to IPv4 addresses
// (host order) and ports with sendmmsg(2), never blocking. Returns how many were handled: sent, or
// refused by the kernel for that datagram alone (as a send of its own would be). Fewer than `count`
// means the socket's buffer is full; the caller queues the rest.
Napi::Value SendBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5 || !info[1].IsArray() || !info[3].IsTypedArray() || !info[4].IsTypedArray()) {
    return Fail(env, "sendBatch: fd, datagrams, count, addresses (Uint32Array), ports (Uint16Array)");
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  auto datagrams = info[1].As<Napi::Array>();
  const uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  auto addresses = info[3].As<Napi::Uint32Array>();
  auto ports = info[4].As<Napi::Uint16Array>();
  if (count > datagrams.Length() || count > addresses.ElementLength() || count > ports.ElementLength()) {
    return Fail(env, "sendBatch: count out of range");
  }
  thread_local std::vector<mmsghdr> messages;
  thread_local std::vector<iovec> vectors;
  thread_local std::vector<sockaddr_in> targets;
  messages.resize(count);
  vectors.resize(count);
  targets.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value value = datagrams[i];
    if (!value.IsBuffer()) return Fail(env, "sendBatch: a datagram is not a buffer");
    auto datagram = value.As<Napi::Buffer<uint8_t>>();
    vectors[i] = {datagram.Data(), datagram.Length()};
    sockaddr_in& target = targets[i];
    std::memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons(ports[i]);
    target.sin_addr.s_addr = htonl(addresses[i]);
    std::memset(&messages[i], 0, sizeof(mmsghdr));
    messages[i].msg_hdr.msg_name = &target;
    messages[i].msg_hdr.msg_namelen = sizeof target;
    messages[i].msg_hdr.msg_iov = &vectors[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  uint32_t handled = 0;
  while (handled < count) {
    const int sent = sendmmsg(fd, messages.data() + handled, count - handled, MSG_DONTWAIT);
    if (sent > 0) {
      handled += uint32_t(sent);
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      break;
    } else {
      handled++;  // this datagram alone is refused (e.g. a firewall's rule): the others still go
    }
  }
  return Napi::Number::New(env, handled);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("GcmSealer", GcmSealer::Define(env));
  exports.Set("GcmOpener", GcmOpener::Define(env));
  exports.Set("sendBatch", Napi::Function::New(env, SendBatch));
  return exports;
}

}  // namespace

NODE_API_MODULE(fastpath, Init)
