/*
 * qwen-audio: ask a Qwen2-Audio model about sound clips, streaming the answer.
 *
 *   qwen-audio -m MODEL [--mmproj FILE] --audio clip.wav [--audio b.flac ...] -p "What does the speaker say?"
 *              [-s SYSTEM] [-n MAX_TOKENS] [--temp T] [--seed S] [-t THREADS] [-c N_CTX] [--max-seconds S]
 *              [--rate HZ] [--channels N]
 *
 * MODEL is a Hugging Face folder (its audio tower loads with it) or llama.cpp's text GGUF, whose audio projector
 * (convert_hf_to_gguf.py --mmproj) is given with --mmproj. A clip is any file libsndfile reads (WAV, FLAC, OGG,
 * MP3, ...), or "-": raw signed 16-bit little-endian PCM from stdin, 16 kHz mono unless --rate / --channels say
 * otherwise. The clips go into one user message, before the prompt, as Qwen2-Audio-Instruct's template puts
 * them ("Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n"). --max-seconds refuses longer clips (default 600).
 * It prints how long encoding the clips took, then the answer, then prompt and generation speed.
 */
#define _POSIX_C_SOURCE 200809L
#include <qwen.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CLIPS 32

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what) {
    fprintf(stderr, "qwen-audio: %s: %s\n", what, qwen_last_error());
    return 1;
}

static int on_token(int32_t token, const char *piece, void *user_data) {
    (void)token;
    (void)user_data;
    fputs(piece, stdout);
    fflush(stdout);
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: qwen-audio -m MODEL [--mmproj FILE] --audio FILE|- [--audio FILE ...] -p PROMPT [-s SYSTEM] [-n MAX_TOKENS]\n"
            "                  [--temp T] [--seed S] [-t THREADS] [-c N_CTX] [--max-seconds S] [--rate HZ] [--channels N]\n"
            "       --audio - reads raw s16le PCM from stdin (16000 Hz mono unless --rate / --channels say otherwise)\n");
}

/* A clip from raw signed 16-bit little-endian PCM on stdin. Reads at most max_seconds of audio (plus one frame, to
 * tell a longer stream from one of exactly that length). Returns 0, or 1 after printing why not. */
static int read_stdin_pcm(int32_t rate, int32_t channels, const qwen_audio_params *ap, qwen_audio **out) {
    size_t frame_bytes = 2 * (size_t)channels;
    size_t limit = ((size_t)(ap->max_seconds * rate) + 1) * frame_bytes;
    size_t size = 0, capacity = 0;
    unsigned char *bytes = NULL;
    while (size < limit) {
        if (size == capacity) {
            size_t grown_capacity = capacity ? capacity * 2 : 1 << 16;
            if (grown_capacity > limit) grown_capacity = limit;
            unsigned char *grown = realloc(bytes, grown_capacity);
            if (!grown) { free(bytes); fprintf(stderr, "qwen-audio: out of memory\n"); return 1; }
            bytes = grown;
            capacity = grown_capacity;
        }
        size_t n = fread(bytes + size, 1, capacity - size, stdin);
        if (n == 0) break;
        size += n;
    }
    if (ferror(stdin)) { free(bytes); fprintf(stderr, "qwen-audio: stdin: read error\n"); return 1; }
    if (size >= limit) {
        free(bytes);
        fprintf(stderr, "qwen-audio: stdin: more than %g s of audio (--max-seconds)\n", ap->max_seconds);
        return 1;
    }
    if (size % frame_bytes) {
        free(bytes);
        fprintf(stderr, "qwen-audio: stdin: %zu bytes are not a whole number of %zu-byte frames\n", size, frame_bytes);
        return 1;
    }
    size_t n_samples = size / 2;
    if (n_samples == 0) { free(bytes); fprintf(stderr, "qwen-audio: stdin: no samples\n"); return 1; }
    float *samples = malloc(sizeof(float) * n_samples);
    if (!samples) { free(bytes); fprintf(stderr, "qwen-audio: out of memory\n"); return 1; }
    for (size_t i = 0; i < n_samples; i++) {
        long s = (long)bytes[2 * i] | (long)bytes[2 * i + 1] << 8;
        samples[i] = (float)(s >= 32768 ? s - 65536 : s) / 32768.0f;
    }
    free(bytes);
    int rc = qwen_audio_from_pcm_f32_ex(samples, (int64_t)(n_samples / (size_t)channels), channels, rate, ap, out);
    free(samples);
    return rc == QWEN_OK ? 0 : fail("stdin");
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *mmproj = NULL, *prompt = NULL, *system = NULL;
    const char *clip_paths[MAX_CLIPS];
    int n_clips = 0, n_stdin = 0, max_tokens = 256, threads = 0, n_ctx = 4096, rate = 16000, channels = 1;
    qwen_audio_params ap = qwen_audio_default_params();
    qwen_sampling_params sp = qwen_sampling_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        if (i + 1 >= argc) { usage(); return 2; }
        const char *v = argv[++i]; /* every other option takes a value */
        if (!strcmp(a, "-m")) model_path = v;
        else if (!strcmp(a, "--mmproj")) mmproj = v;
        else if (!strcmp(a, "--audio")) {
            if (n_clips == MAX_CLIPS) { fprintf(stderr, "qwen-audio: at most %d clips\n", MAX_CLIPS); return 2; }
            if (!strcmp(v, "-") && n_stdin++) { fprintf(stderr, "qwen-audio: stdin (--audio -) can be read once\n"); return 2; }
            clip_paths[n_clips++] = v;
        }
        else if (!strcmp(a, "-p")) prompt = v;
        else if (!strcmp(a, "-s") || !strcmp(a, "--system")) system = v;
        else if (!strcmp(a, "-n")) max_tokens = atoi(v);
        else if (!strcmp(a, "--temp")) sp.temperature = (float)atof(v);
        else if (!strcmp(a, "--seed")) sp.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "-t")) threads = atoi(v);
        else if (!strcmp(a, "-c")) n_ctx = atoi(v);
        else if (!strcmp(a, "--max-seconds")) ap.max_seconds = atof(v);
        else if (!strcmp(a, "--rate")) rate = atoi(v);
        else if (!strcmp(a, "--channels")) channels = atoi(v);
        else { usage(); return 2; }
    }
    if (!model_path || !prompt || n_clips == 0) {
        if (model_path && prompt) fprintf(stderr, "qwen-audio: no clip: give --audio FILE (or --audio - for PCM on stdin)\n");
        usage();
        return 2;
    }
    if (n_stdin && (rate < 1000 || channels < 1 || channels > 256 || !(ap.max_seconds > 0 && ap.max_seconds <= 86400))) {
        fprintf(stderr, "qwen-audio: stdin PCM needs --rate >= 1000, --channels in 1...256 and --max-seconds in (0, 86400]\n");
        return 2;
    }

    /* the clips first: a missing or broken file fails before the model is loaded */
    qwen_audio *clips[MAX_CLIPS] = {0};
    int status = 0;
    for (int i = 0; i < n_clips && !status; i++) {
        if (!strcmp(clip_paths[i], "-")) status = read_stdin_pcm(rate, channels, &ap, &clips[i]);
        else if (qwen_audio_load_ex(clip_paths[i], &ap, &clips[i]) != QWEN_OK) status = fail(clip_paths[i]);
    }
    if (status) {
        for (int i = 0; i < n_clips; i++) qwen_audio_free(clips[i]);
        return status;
    }

    qwen_model_params mp = qwen_model_default_params();
    mp.n_threads = threads;
    qwen_model *model = NULL;
    qwen_context *ctx = NULL;
    double t0 = now_seconds();
    if (qwen_model_load(model_path, &mp, &model) != QWEN_OK) status = fail(model_path);
    else if (mmproj && qwen_model_load_projector(model, mmproj) != QWEN_OK) status = fail(mmproj);
    else {
        /* the header has no qwen_model_has_audio: a model without an audio tower refuses to count a clip's tokens */
        int tokens = qwen_audio_n_tokens(model, clips[0]);
        if (tokens == QWEN_ERR_UNSUPPORTED) {
            fprintf(stderr, "qwen-audio: %s takes no audio (a Qwen2-Audio GGUF needs --mmproj)\n", model_path);
            status = 1;
        } else if (tokens < 0) status = fail("qwen_audio_n_tokens");
    }
    qwen_model_details info;
    memset(&info, 0, sizeof info);
    if (!status && qwen_model_info(model, &info) != QWEN_OK) status = fail("qwen_model_info");
    if (!status) {
        fprintf(stderr, "model: %s, %s, %.1fM parameters, loaded in %.2f s\n", info.architecture, info.weight_type,
                (double)info.n_params / 1e6, now_seconds() - t0);
        qwen_context_params cp = qwen_context_default_params();
        cp.n_ctx = n_ctx;
        cp.n_threads = threads;
        if (qwen_context_new(model, &cp, &ctx) != QWEN_OK) status = fail("context");
    }

    /* encode each clip now, to report the time (the chat below takes them from the context's cache) */
    double encode_seconds = 0, audio_seconds = 0;
    int audio_tokens = 0;
    for (int i = 0; i < n_clips && !status; i++) {
        const char *name = strcmp(clip_paths[i], "-") ? clip_paths[i] : "stdin";
        int32_t tokens = qwen_audio_n_tokens(model, clips[i]);
        if (tokens < 0) { status = fail(name); break; }
        /* room for at least one row: a clip too short to give any is refused by qwen_audio_embed with its reason */
        int64_t capacity = (int64_t)(tokens > 0 ? tokens : 1) * info.n_embd;
        float *rows = malloc(sizeof(float) * (size_t)capacity);
        if (!rows) { fprintf(stderr, "qwen-audio: out of memory\n"); status = 1; break; }
        double t = now_seconds();
        int32_t n = 0;
        int rc = qwen_audio_embed(ctx, clips[i], rows, capacity, &n);
        free(rows);
        if (rc < 0) { status = fail(name); break; }
        encode_seconds += now_seconds() - t;
        audio_tokens += n;
        double duration = qwen_audio_duration(clips[i]);
        audio_seconds += duration;
        fprintf(stderr, "audio %s: %.2f s, %d tokens\n", name, duration, n);
    }
    if (!status) {
        fprintf(stderr, "encoded %d clip%s (%.2f s, %d tokens) in %.1f ms\n", n_clips, n_clips == 1 ? "" : "s", audio_seconds,
                audio_tokens, encode_seconds * 1e3);
        /* "<audio>" becomes the template's "Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>\n" (numbered over the chat) */
        size_t content_size = strlen(prompt) + 1 + (size_t)n_clips * strlen("<audio>");
        char *content = malloc(content_size);
        if (!content) { fprintf(stderr, "qwen-audio: out of memory\n"); status = 1; }
        else {
            content[0] = 0;
            for (int i = 0; i < n_clips; i++) strcat(content, "<audio>");
            strcat(content, prompt);
            qwen_chat_message chat[2];
            int n = 0;
            if (system) chat[n++] = (qwen_chat_message){"system", system};
            chat[n++] = (qwen_chat_message){"user", content};
            int past0 = qwen_context_n_past(ctx);
            double t = now_seconds();
            if (qwen_chat_eval_media(ctx, chat, n, NULL, 0, (const qwen_audio *const *)clips, n_clips, 1, NULL) != QWEN_OK) {
                status = fail("prompt");
            } else {
                double prompt_seconds = now_seconds() - t;
                int prompt_tokens = qwen_context_n_past(ctx) - past0;
                t = now_seconds();
                int generated = qwen_generate(ctx, &sp, max_tokens, on_token, NULL);
                double gen_seconds = now_seconds() - t;
                printf("\n");
                fflush(stdout); /* before the statistics on stderr */
                if (generated < 0) status = fail("generate");
                else {
                    fprintf(stderr, "prompt: %d tokens in %.2f s (%.1f tokens/s); generation: %d tokens in %.2f s (%.1f tokens/s)\n",
                            prompt_tokens, prompt_seconds, prompt_tokens / (prompt_seconds > 0 ? prompt_seconds : 1e-9), generated,
                            gen_seconds, generated / (gen_seconds > 0 ? gen_seconds : 1e-9));
                }
            }
            free(content);
        }
    }
    for (int i = 0; i < n_clips; i++) qwen_audio_free(clips[i]);
    qwen_context_free(ctx);
    qwen_model_free(model);
    return status;
}
