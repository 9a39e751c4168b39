// qwen.hpp: header-only C++17 RAII wrappers over libqwen's C API (include/qwen.h).
//
//   #include "qwen.hpp"
//
//   qwen::Model model("qwen2.5-0.5b-instruct-q8_0.gguf");
//   qwen::Context ctx(model, {/*n_ctx*/ 4096});
//   std::vector<qwen::Message> chat = {{"system", "You are terse."}, {"user", "Why is the sky blue?"}};
//   std::string reply = ctx.chat(chat, qwen::Sampling{}, 256, [](std::string_view piece) {
//       std::cout << piece << std::flush;
//       return true;  // false stops generation
//   });
//
// Build: c++ -std=c++17 app.cpp -I<qwen.h dir> -I<this dir> -L<lib dir> -lqwen
//
// Every failing C call throws qwen::Error (a std::runtime_error) carrying the qwen_status and qwen_last_error().
// Handles are move-only; a moved-from object is empty (its calls throw QWEN_ERR_INVALID_ARGUMENT). A Model may
// be shared by Contexts on different threads; a Context is used by one thread at a time (cancel() excepted).
// Contexts keep their model alive in the library, so a Model may be destroyed before its Contexts.
//
// Images and audio (qwen::Image, qwen::Audio, Model::load_projector/has_vision, Context::embed_image/embed_audio/
// eval_prompt and the chat overloads taking media) are compiled only when QWEN_VISION_API or QWEN_AUDIO_API is
// defined, by qwen.h or by the includer (-DQWEN_VISION_API) with a qwen.h and libqwen that have the media API.
#ifndef QWEN_HPP
#define QWEN_HPP

#include <qwen.h>

#if defined(QWEN_VISION_API) || defined(QWEN_AUDIO_API)
#define QWEN_HPP_HAS_MEDIA 1
#endif

#include <cstddef>
#include <cstdint>
#include <exception>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace qwen {

// ---- errors ----

/// A libqwen call failed: status() is the negative qwen_status, message() the library's description.
class Error : public std::runtime_error {
public:
    Error(int status, const std::string &message)
        : std::runtime_error(std::string(qwen_status_string(status)) + ": " + message), status_(status), message_(message) {}

    /// The qwen_status, e.g. QWEN_ERR_IO.
    int status() const noexcept { return status_; }
    /// Its name, e.g. "QWEN_ERR_IO".
    const char *status_name() const noexcept { return qwen_status_string(status_); }
    /// qwen_last_error() of the failing call.
    const std::string &message() const noexcept { return message_; }

private:
    int status_;
    std::string message_;
};

namespace detail {

/// Returns a non-negative result; throws Error for a negative status.
template <class T> inline T check(T rc) {
    if (rc < 0) throw Error(static_cast<int>(rc), qwen_last_error());
    return rc;
}

[[noreturn]] inline void invalid(const std::string &message) { throw Error(QWEN_ERR_INVALID_ARGUMENT, message); }

/// A NUL-terminated copy of a string_view (C strings cannot hold NUL bytes).
inline std::string c_string(std::string_view s, const char *what) {
    if (s.find('\0') != std::string_view::npos) invalid(std::string(what) + " contains a NUL byte");
    return std::string(s);
}

inline int32_t to_int32(std::size_t n, const char *what) {
    if (n > static_cast<std::size_t>(INT32_MAX)) invalid(std::string(what) + " is too large");
    return static_cast<int32_t>(n);
}

/// The text of a C call that writes into (buffer, capacity, &needed), starting with capacity bytes and retrying with
/// the room it asks for.
template <class Write> inline std::string written_text(std::size_t capacity, Write write) {
    std::string out(capacity, '\0');
    for (;;) {
        int32_t needed = 0;
        const int rc = write(&out[0], to_int32(out.size(), "text"), &needed);
        if (rc == QWEN_ERR_BUFFER_TOO_SMALL && static_cast<std::size_t>(needed) >= out.size()) {
            out.resize(static_cast<std::size_t>(needed) + 1);
            continue;
        }
        out.resize(static_cast<std::size_t>(check(rc)));
        return out;
    }
}

} // namespace detail

/// Library version, e.g. "0.1.0".
inline std::string version() { return qwen_version(); }

// ---- chat messages and parameters ----

/// One chat message.
struct Message {
    std::string role; ///< "system", "user", "assistant", ...
    std::string content;
};

/// Model loading options (qwen_model_params).
struct ModelParams {
    int32_t threads = 0;  ///< default threads of contexts that set none; 0 = the cores this process may use
    bool use_mmap = true; ///< memory-map the weights (else read them into memory)
};

/// Context options (qwen_context_params); zero keeps the library's default.
struct ContextParams {
    int32_t n_ctx = 0;               ///< KV cache positions; 0 = min(4096, training length)
    int32_t threads = 0;             ///< 0 = the model's setting
    int32_t n_batch = 0;             ///< prompt tokens per forward pass; 0 = 512
    qwen_kv_type kv_type = QWEN_KV_F16;
    bool sliding_window = false;     ///< drop the oldest turns instead of failing with QWEN_ERR_CONTEXT_FULL
};

/// Sampling settings: qwen_sampling_params, initialised to the library's defaults (temperature 0.8, top_k 40,
/// top_p 0.95, min_p 0.05, random seed). Set fields directly; temperature <= 0 is greedy.
struct Sampling : qwen_sampling_params {
    Sampling() : qwen_sampling_params(qwen_sampling_default_params()) {}

    /// Greedy decoding (temperature 0).
    static Sampling greedy() {
        Sampling s;
        s.temperature = 0;
        return s;
    }
    /// The library defaults with a fixed seed.
    static Sampling seeded(uint64_t seed) {
        Sampling s;
        s.seed = seed;
        return s;
    }
};

class Context;
#if defined(QWEN_HPP_HAS_MEDIA)
class Image;
class Audio;
#endif

namespace detail {

/// C views of messages (the strings stay owned by the Message objects).
inline std::vector<qwen_chat_message> c_messages(const std::vector<Message> &messages) {
    std::vector<qwen_chat_message> out;
    out.reserve(messages.size());
    for (const Message &m : messages) {
        if (m.role.find('\0') != std::string::npos || m.content.find('\0') != std::string::npos)
            invalid("chat message contains a NUL byte");
        out.push_back(qwen_chat_message{m.role.c_str(), m.content.c_str()});
    }
    return out;
}

/// Sole owner of a C handle, freed by Free (which, like every qwen_*_free, ignores NULL): the move-only core of
/// Model, Image, Audio and Context. A moved-from Handle is empty.
template <class T, void (*Free)(T *)> class Handle {
public:
    Handle() noexcept = default;
    explicit Handle(T *adopt) noexcept : p_(adopt) {}
    Handle(const Handle &) = delete;
    Handle &operator=(const Handle &) = delete;
    Handle(Handle &&other) noexcept : p_(other.release()) {}
    Handle &operator=(Handle &&other) noexcept {
        if (this != &other) {
            reset();
            p_ = other.release();
        }
        return *this;
    }
    ~Handle() { reset(); }

    void reset() noexcept { Free(release()); }
    T *release() noexcept { return std::exchange(p_, nullptr); }
    T *get() const noexcept { return p_; }
    /// The out-parameter of the C function that creates the handle.
    T **out() noexcept { return &p_; }

private:
    T *p_ = nullptr;
};

/// Calls a C function that creates a T (returned through its last parameter, after args); throws Error if it fails.
template <class T, class Create, class... Args> inline T *create(Create fn, Args... args) {
    T *handle = nullptr;
    check(fn(args..., &handle));
    return handle;
}

} // namespace detail

// ---- model ----

/// A model loaded from a GGUF file or a Hugging Face folder. Move-only.
class Model {
public:
    /// Loads a model. Throws Error (QWEN_ERR_IO for a missing file, QWEN_ERR_FORMAT for a malformed one, ...).
    explicit Model(std::string_view path, const ModelParams &params = {}) {
        qwen_model_params p = qwen_model_default_params();
        p.n_threads = params.threads;
        p.use_mmap = params.use_mmap ? 1 : 0;
        detail::check(qwen_model_load(detail::c_string(path, "path").c_str(), &p, model_.out()));
    }
    /// Takes ownership of a handle from qwen_model_load.
    explicit Model(qwen_model *adopt) noexcept : model_(adopt) {}

    /// Frees the model now (idempotent); contexts made from it stay usable.
    void close() noexcept { model_.reset(); }
    /// Gives up ownership of the handle.
    qwen_model *release() noexcept { return model_.release(); }
    qwen_model *get() const noexcept { return model_.get(); }
    explicit operator bool() const noexcept { return get() != nullptr; }

    int32_t n_vocab() const { return detail::check(qwen_model_n_vocab(get())); }
    int32_t n_embd() const { return detail::check(qwen_model_n_embd(get())); }
    int32_t n_ctx_train() const { return detail::check(qwen_model_n_ctx_train(get())); }
    bool is_eog(int32_t token) const { return detail::check(qwen_token_is_eog(get(), token)) != 0; }

    /// Architecture, weight type, sizes and special tokens.
    qwen_model_details info() const {
        qwen_model_details d{};
        detail::check(qwen_model_info(get(), &d));
        return d;
    }

    /// Token ids of text; special = true turns marker text such as "<|im_start|>" into those tokens.
    std::vector<int32_t> tokenize(std::string_view text, bool special = false) const {
        const std::string s = detail::c_string(text, "text");
        std::vector<int32_t> ids(s.size() + 8); // byte-level BPE: never more tokens than bytes
        for (;;) {
            int32_t needed = 0;
            const int rc = qwen_tokenize(get(), s.c_str(), special ? 1 : 0, ids.data(), detail::to_int32(ids.size(), "text"),
                                         &needed);
            if (rc == QWEN_ERR_BUFFER_TOO_SMALL && static_cast<std::size_t>(needed) > ids.size()) {
                ids.resize(static_cast<std::size_t>(needed));
                continue;
            }
            ids.resize(static_cast<std::size_t>(detail::check(rc)));
            return ids;
        }
    }

    /// The bytes of tokens (special tokens as their text); may end inside a UTF-8 character.
    std::string detokenize(const int32_t *tokens, std::size_t n) const {
        return detail::written_text(16 * n + 16, [&](char *buffer, int32_t capacity, int32_t *needed) {
            return qwen_detokenize(get(), tokens, detail::to_int32(n, "tokens"), buffer, capacity, needed);
        });
    }
    std::string detokenize(const std::vector<int32_t> &tokens) const { return detokenize(tokens.data(), tokens.size()); }

    /// Renders a conversation with the model's chat template.
    std::string apply_chat_template(const std::vector<Message> &messages, bool add_generation_prompt = true) const {
        const std::vector<qwen_chat_message> c = detail::c_messages(messages);
        return detail::written_text(4096, [&](char *buffer, int32_t capacity, int32_t *needed) {
            return qwen_chat_apply_template(get(), c.data(), detail::to_int32(c.size(), "messages"),
                                            add_generation_prompt ? 1 : 0, buffer, capacity, needed);
        });
    }

#if defined(QWEN_HPP_HAS_MEDIA)
    /// Attaches llama.cpp's projector GGUF (mmproj) to a model loaded from its text GGUF (vision or audio encoder).
    /// Call before creating contexts.
    void load_projector(std::string_view path) {
        detail::check(qwen_model_load_projector(get(), detail::c_string(path, "path").c_str()));
    }
    /// True if the model takes images.
    bool has_vision() const { return detail::check(qwen_model_has_vision(get())) != 0; }
    /// True if the model takes audio.
    bool has_audio() const { return detail::check(qwen_model_has_audio(get())) != 0; }
#endif

private:
    detail::Handle<qwen_model, qwen_model_free> model_;
};

// ---- media ----

#if defined(QWEN_HPP_HAS_MEDIA)
/// Decoding options of Image::load / Image::decode (qwen_image_params with the library's defaults).
struct ImageParams : qwen_image_params {
    ImageParams() : qwen_image_params(qwen_image_default_params()) {}
};

/// An image for a vision model (Qwen2-VL, Qwen2.5-VL): decoded like the reference pipeline. Move-only.
class Image {
public:
    /// Decodes a PNG or JPEG file.
    static Image load(std::string_view path, const ImageParams &params = {}) {
        return Image(detail::create<qwen_image>(qwen_image_load_ex, detail::c_string(path, "path").c_str(), &params));
    }
    /// Decodes a PNG or JPEG file held in memory.
    static Image decode(const void *data, std::size_t size, const ImageParams &params = {}) {
        return Image(detail::create<qwen_image>(qwen_image_decode, data, static_cast<int64_t>(size), &params));
    }
    /// From width x height RGB pixels (3 bytes each, rows top to bottom).
    static Image from_rgb8(const uint8_t *rgb, int32_t width, int32_t height) {
        return Image(detail::create<qwen_image>(qwen_image_from_rgb8, rgb, width, height));
    }
    explicit Image(qwen_image *adopt) noexcept : image_(adopt) {}
    void close() noexcept { image_.reset(); }
    qwen_image *get() const noexcept { return image_.get(); }
    explicit operator bool() const noexcept { return get() != nullptr; }

    /// Size in pixels (after the EXIF orientation).
    int32_t width() const { return detail::check(qwen_image_width(get())); }
    int32_t height() const { return detail::check(qwen_image_height(get())); }
    /// Bounds on the pixel count the image is resized to (its token count); 0 = the model's.
    void set_pixel_bounds(int64_t min_pixels, int64_t max_pixels) {
        detail::check(qwen_image_set_pixel_bounds(get(), min_pixels, max_pixels));
    }
    /// Embedding rows the image takes in a prompt of model (QWEN_ERR_UNSUPPORTED if it takes no images).
    int32_t n_tokens(const Model &model) const { return detail::check(qwen_image_n_tokens(model.get(), get())); }

private:
    detail::Handle<qwen_image, qwen_image_free> image_;
};
#endif

#if defined(QWEN_HPP_HAS_MEDIA)
/// Limits of Audio::load / Audio::from_pcm_f32 (qwen_audio_params with the library's defaults).
struct AudioParams : qwen_audio_params {
    AudioParams() : qwen_audio_params(qwen_audio_default_params()) {}
};

/// An audio clip for an audio model (Qwen2-Audio), converted to mono 16 kHz. Move-only.
class Audio {
public:
    /// Decodes an audio file (WAV, FLAC, OGG/Vorbis, Opus, MP3, ... as libsndfile reads them).
    static Audio load(std::string_view path, const AudioParams &params = {}) {
        return Audio(detail::create<qwen_audio>(qwen_audio_load_ex, detail::c_string(path, "path").c_str(), &params));
    }
    /// From interleaved float samples: n_frames frames of channels samples at sample_rate Hz.
    static Audio from_pcm_f32(const float *samples, int64_t n_frames, int32_t channels, int32_t sample_rate,
                              const AudioParams &params = {}) {
        return Audio(detail::create<qwen_audio>(qwen_audio_from_pcm_f32_ex, samples, n_frames, channels, sample_rate,
                                                &params));
    }
    explicit Audio(qwen_audio *adopt) noexcept : audio_(adopt) {}
    void close() noexcept { audio_.reset(); }
    qwen_audio *get() const noexcept { return audio_.get(); }
    explicit operator bool() const noexcept { return get() != nullptr; }

    /// Seconds of audio.
    double duration() const {
        const double d = qwen_audio_duration(get());
        if (d < 0) detail::check(static_cast<int>(d));
        return d;
    }
    /// Embedding rows the clip takes in a prompt of model (QWEN_ERR_UNSUPPORTED if it takes no audio).
    int32_t n_tokens(const Model &model) const { return detail::check(qwen_audio_n_tokens(model.get(), get())); }

private:
    detail::Handle<qwen_audio, qwen_audio_free> audio_;
};
#endif

// ---- context ----

#if defined(QWEN_HPP_HAS_MEDIA)
namespace detail {
/// The C handles of images or clips.
template <class H, class T> inline std::vector<const H *> handles(const std::vector<T> &items) {
    std::vector<const H *> out;
    out.reserve(items.size());
    for (const T &item : items) out.push_back(item.get());
    return out;
}
} // namespace detail
#endif

namespace detail {

/// Bridges qwen_token_callback to a C++ callable. The callable takes (std::string_view piece) or
/// (int32_t token, std::string_view piece) and returns bool (true = continue) or void. An exception thrown by it
/// stops generation and is rethrown by the calling method.
template <class F> struct Trampoline {
    F &f;
    std::string *text; // collects the delivered pieces, if non-null
    std::exception_ptr error{};

    static int call(int32_t token, const char *piece, void *user_data) noexcept {
        auto *self = static_cast<Trampoline *>(user_data);
        try {
            const std::string_view p(piece ? piece : "");
            if (self->text) self->text->append(p);
            if constexpr (std::is_invocable_v<F &, int32_t, std::string_view>) {
                return invoke(self->f, token, p);
            } else {
                static_assert(std::is_invocable_v<F &, std::string_view>,
                              "the callback must take (std::string_view) or (int32_t, std::string_view)");
                if (token < 0 && p.empty()) return 0; // nothing held back at the end
                return invoke(self->f, p);
            }
        } catch (...) {
            self->error = std::current_exception();
            return 1;
        }
    }

    template <class... A> static int invoke(F &f, A... args) {
        using R = std::invoke_result_t<F &, A...>;
        if constexpr (std::is_void_v<R>) {
            f(args...);
            return 0;
        } else {
            static_assert(std::is_convertible_v<R, bool>, "the callback must return bool (true = continue) or void");
            return static_cast<bool>(f(args...)) ? 0 : 1;
        }
    }
};

struct NoCallback {
    void operator()(std::string_view) const noexcept {}
};

} // namespace detail

/// A context of a model: KV cache, scratch memory, threads. Move-only; used by one thread at a time.
class Context {
public:
    explicit Context(const Model &model, const ContextParams &params = {})
        : n_vocab_(model.n_vocab()), n_embd_(model.n_embd()) {
        qwen_context_params p = qwen_context_default_params();
        if (params.n_ctx) p.n_ctx = params.n_ctx;
        if (params.threads) p.n_threads = params.threads;
        if (params.n_batch) p.n_batch = params.n_batch;
        p.kv_type = static_cast<int32_t>(params.kv_type);
        p.sliding_window = params.sliding_window ? 1 : 0;
        detail::check(qwen_context_new(model.get(), &p, ctx_.out()));
    }
    // Moves take the handle and the sizes, not last_token_count().
    Context(Context &&other) noexcept
        : ctx_(std::move(other.ctx_)), n_vocab_(other.n_vocab_), n_embd_(other.n_embd_) {}
    Context &operator=(Context &&other) noexcept {
        ctx_ = std::move(other.ctx_);
        n_vocab_ = other.n_vocab_;
        n_embd_ = other.n_embd_;
        return *this;
    }

    void close() noexcept { ctx_.reset(); }
    qwen_context *get() const noexcept { return ctx_.get(); }
    explicit operator bool() const noexcept { return get() != nullptr; }

    // ---- state ----

    int32_t n_past() const { return detail::check(qwen_context_n_past(get())); }
    int32_t n_ctx() const { return detail::check(qwen_context_n_ctx(get())); }
    int64_t n_evaluated() const { return detail::check(qwen_context_n_evaluated(get())); }
    /// Empties the KV cache (and clears a pending cancellation).
    void reset() { detail::check(qwen_context_reset(get())); }
    /// Makes the running call (or, if none, the next one) fail with QWEN_ERR_CANCELLED. Any thread may call it.
    void cancel() { detail::check(qwen_context_cancel(get())); }

    // ---- evaluation ----

    /// Appends tokens; returns the last position's logits (n_vocab floats).
    std::vector<float> eval_tokens(const int32_t *tokens, std::size_t n) {
        std::vector<float> logits(static_cast<std::size_t>(n_vocab_));
        detail::check(qwen_context_eval_tokens(get(), tokens, detail::to_int32(n, "tokens"), logits.data()));
        return logits;
    }
    std::vector<float> eval_tokens(const std::vector<int32_t> &tokens) { return eval_tokens(tokens.data(), tokens.size()); }

    /// Logits of the last evaluated position.
    std::vector<float> logits() const {
        std::vector<float> out(static_cast<std::size_t>(n_vocab_));
        out.resize(static_cast<std::size_t>(detail::check(qwen_context_logits(get(), out.data(), n_vocab_))));
        return out;
    }
    /// Final hidden state (after the output norm) of the last evaluated position.
    std::vector<float> embedding() const {
        std::vector<float> out(static_cast<std::size_t>(n_embd_));
        out.resize(static_cast<std::size_t>(detail::check(qwen_context_embedding(get(), out.data(), n_embd_))));
        return out;
    }

    // ---- saving and restoring ----

    std::vector<uint8_t> save_state() const {
        std::vector<uint8_t> out(static_cast<std::size_t>(detail::check(qwen_context_state_size(get()))));
        const int64_t n = detail::check(qwen_context_state_save(get(), out.data(), static_cast<int64_t>(out.size())));
        out.resize(static_cast<std::size_t>(n));
        return out;
    }
    void load_state(const void *data, std::size_t size) {
        detail::check(qwen_context_state_load(get(), data, static_cast<int64_t>(size)));
    }
    void load_state(const std::vector<uint8_t> &state) { load_state(state.data(), state.size()); }
    void save_state_file(std::string_view path) const {
        detail::check(qwen_context_state_save_file(get(), detail::c_string(path, "path").c_str()));
    }
    void load_state_file(std::string_view path) {
        detail::check(qwen_context_state_load_file(get(), detail::c_string(path, "path").c_str()));
    }

    // ---- generation ----

    /// Samples up to max_tokens tokens after what the context holds, calling on_piece with each piece of text
    /// (UTF-8, complete characters). on_piece takes (std::string_view) or (int32_t token, std::string_view) and
    /// returns bool (true = continue, false = stop) or void. Generation stops at an end-of-generation token or
    /// where the text reaches one of the stop strings (not delivered). Returns the generated text.
    template <class F>
    std::string generate(const qwen_sampling_params &sampling, int32_t max_tokens, F &&on_piece,
                         const std::vector<std::string> &stop = {}) {
        std::string text;
        run(sampling, max_tokens, on_piece, stop, &text);
        return text;
    }

    /// As above, without a callback.
    std::string generate(const qwen_sampling_params &sampling = Sampling(), int32_t max_tokens = 256,
                         const std::vector<std::string> &stop = {}) {
        detail::NoCallback none;
        return generate(sampling, max_tokens, none, stop);
    }

    /// Tokens of the last generate/chat call.
    int32_t last_token_count() const noexcept { return last_count_; }

    // ---- chat ----

    /// Applies the chat template to the whole conversation and evaluates what is not cached yet (pass the full
    /// history every turn). enable_thinking = false turns Qwen3's thinking off.
    void eval_chat(const std::vector<Message> &messages, bool add_generation_prompt = true, bool enable_thinking = true) {
        const std::vector<qwen_chat_message> c = detail::c_messages(messages);
        qwen_chat_options opts = qwen_chat_default_options();
        opts.enable_thinking = enable_thinking ? 1 : 0;
        detail::check(qwen_chat_eval_ex(get(), c.data(), detail::to_int32(c.size(), "messages"),
                                        add_generation_prompt ? 1 : 0, &opts));
    }

    /// Evaluates the conversation and generates the assistant's reply, streaming it to on_piece.
    template <class F>
    std::string chat(const std::vector<Message> &messages, const qwen_sampling_params &sampling, int32_t max_tokens,
                     F &&on_piece, const std::vector<std::string> &stop = {}, bool enable_thinking = true) {
        eval_chat(messages, true, enable_thinking);
        return generate(sampling, max_tokens, std::forward<F>(on_piece), stop);
    }

    /// Evaluates the conversation and returns the assistant's reply.
    std::string chat(const std::vector<Message> &messages, const qwen_sampling_params &sampling = Sampling(),
                     int32_t max_tokens = 256) {
        detail::NoCallback none;
        return chat(messages, sampling, max_tokens, none);
    }

#if defined(QWEN_HPP_HAS_MEDIA)
    /// As eval_chat, with the conversation's images and clips: message contents hold "<image>" / "<audio>" markers
    /// (or the model's own syntax); the media are taken in order of appearance over the whole conversation. Pass
    /// the full history with all its media each turn (cached prefixes and embeddings are reused).
    void eval_chat(const std::vector<Message> &messages, const std::vector<Image> &images, const std::vector<Audio> &audios,
                   bool add_generation_prompt = true, bool enable_thinking = true) {
        const std::vector<qwen_chat_message> c = detail::c_messages(messages);
        const std::vector<const qwen_image *> imgs = detail::handles<qwen_image>(images);
        const std::vector<const qwen_audio *> clips = detail::handles<qwen_audio>(audios);
        qwen_chat_options opts = qwen_chat_default_options();
        opts.enable_thinking = enable_thinking ? 1 : 0;
        detail::check(qwen_chat_eval_media(get(), c.data(), detail::to_int32(c.size(), "messages"), imgs.data(),
                                           detail::to_int32(imgs.size(), "images"), clips.data(),
                                           detail::to_int32(clips.size(), "audios"), add_generation_prompt ? 1 : 0, &opts));
    }

    /// Chat with images and clips (see eval_chat), streaming the reply to on_piece.
    template <class F>
    std::string chat(const std::vector<Message> &messages, const std::vector<Image> &images,
                     const std::vector<Audio> &audios, const qwen_sampling_params &sampling, int32_t max_tokens,
                     F &&on_piece, const std::vector<std::string> &stop = {}, bool enable_thinking = true) {
        eval_chat(messages, images, audios, true, enable_thinking);
        return generate(sampling, max_tokens, std::forward<F>(on_piece), stop);
    }

    /// Chat with images and clips, returning the reply.
    std::string chat(const std::vector<Message> &messages, const std::vector<Image> &images,
                     const std::vector<Audio> &audios, const qwen_sampling_params &sampling = Sampling(),
                     int32_t max_tokens = 256) {
        detail::NoCallback none;
        return chat(messages, images, audios, sampling, max_tokens, none);
    }

    /// Evaluates text in the model's prompt syntax with media placeholders (one <|image_pad|> per image, one
    /// <|AUDIO|> per clip, in order); returns the last position's logits.
    std::vector<float> eval_prompt(std::string_view text, const std::vector<Image> &images,
                                   const std::vector<Audio> &audios = {}) {
        const std::vector<const qwen_image *> imgs = detail::handles<qwen_image>(images);
        const std::vector<const qwen_audio *> clips = detail::handles<qwen_audio>(audios);
        std::vector<float> logits(static_cast<std::size_t>(n_vocab_));
        detail::check(qwen_context_eval_prompt(get(), detail::c_string(text, "text").c_str(), imgs.data(),
                                               detail::to_int32(imgs.size(), "images"), clips.data(),
                                               detail::to_int32(clips.size(), "audios"), logits.data()));
        return logits;
    }

    /// The image's embeddings: n_tokens rows of n_embd floats (row-major); *n_tokens gets the row count.
    std::vector<float> embed_image(const Image &image, int32_t *n_tokens = nullptr) {
        return embed(qwen_image_embed, image.get(), n_tokens);
    }

    /// The clip's embeddings: n_tokens rows of n_embd floats (row-major).
    std::vector<float> embed_audio(const Audio &audio, int32_t *n_tokens = nullptr) {
        return embed(qwen_audio_embed, audio.get(), n_tokens);
    }
#endif

private:
#if defined(QWEN_HPP_HAS_MEDIA)
    /// embed_image / embed_audio: asks fn (qwen_image_embed / qwen_audio_embed) for the row count, then the rows.
    template <class Embed, class H> std::vector<float> embed(Embed fn, const H *item, int32_t *n_tokens) {
        int32_t rows = 0;
        const int rc = fn(get(), item, nullptr, 0, &rows);
        if (rc < 0 && rc != QWEN_ERR_BUFFER_TOO_SMALL) detail::check(rc);
        std::vector<float> out(static_cast<std::size_t>(rows) * static_cast<std::size_t>(n_embd_));
        detail::check(fn(get(), item, out.data(), static_cast<int64_t>(out.size()), &rows));
        out.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(n_embd_));
        if (n_tokens) *n_tokens = rows;
        return out;
    }
#endif

    template <class F>
    void run(const qwen_sampling_params &sampling, int32_t max_tokens, F &on_piece, const std::vector<std::string> &stop,
             std::string *text) {
        std::vector<const char *> stops;
        stops.reserve(stop.size());
        for (const std::string &s : stop) {
            if (s.find('\0') != std::string::npos) detail::invalid("stop string contains a NUL byte");
            stops.push_back(s.c_str());
        }
        detail::Trampoline<F> t{on_piece, text};
        const int rc = qwen_generate_ex(get(), &sampling, max_tokens, stops.empty() ? nullptr : stops.data(),
                                        detail::to_int32(stops.size(), "stop"), &detail::Trampoline<F>::call, &t);
        last_count_ = rc >= 0 ? rc : 0;
        if (t.error) std::rethrow_exception(t.error);
        detail::check(rc);
    }

    detail::Handle<qwen_context, qwen_context_free> ctx_;
    int32_t n_vocab_ = 0;
    int32_t n_embd_ = 0;
    int32_t last_count_ = 0;
};

} // namespace qwen

#endif // QWEN_HPP
