/*
 * qwen-audio: ask a Qwen2-Audio or Qwen-Audio (first generation) model about sound clips, streaming the answer.
 *
 *   qwen-audio -m MODEL [--mmproj FILE] --audio clip.wav [--audio b.flac ...] -p "What does the speaker say?"
 *              [-s SYSTEM] [-n MAX_TOKENS] [--temp T] [--seed S] [-t THREADS] [-c N_CTX] [--max-seconds S]
 *              [--rate HZ] [--channels N]
 *
 * MODEL is a Hugging Face folder (its audio tower loads with it) or a text GGUF, whose audio projector is given
 * with --mmproj (llama.cpp's convert_hf_to_gguf.py --mmproj for Qwen2-Audio, qwen-quantize --mmproj for
 * Qwen-Audio). A clip is any file libsndfile reads (WAV, FLAC, OGG, MP3, ...), or "-": raw signed 16-bit
 * little-endian PCM from stdin, 16 kHz mono unless --rate / --channels say otherwise. The clips go into one user
 * message, before the prompt, as the model's chat format puts them ("Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n";
 * Qwen-Audio: "Audio 1:<audio></audio>\n"). --max-seconds refuses longer clips (default 600).
 * It prints how long encoding the clips took, then the answer, then prompt and generation speed.
 */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CLIPS 32

static const char program[] = "qwen-audio";

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
    return rc == QWEN_OK ? 0 : fail(program, "stdin");
}

int main(int argc, char **argv) {
    chat_args args = chat_args_defaults();
    args.context.n_ctx = 4096;
    const char *clip_paths[MAX_CLIPS];
    int n_clips = 0, n_stdin = 0, rate = 16000, channels = 1;
    qwen_audio_params ap = qwen_audio_default_params();
    option_walk options = {.argc = argc, .argv = argv, .next = 1, .usage = usage};
    while (next_option(&options, &args)) {
        const char *a = options.option, *v = options.value;
        if (!strcmp(a, "--audio")) {
            if (n_clips == MAX_CLIPS) { fprintf(stderr, "qwen-audio: at most %d clips\n", MAX_CLIPS); return 2; }
            if (!strcmp(v, "-") && n_stdin++) { fprintf(stderr, "qwen-audio: stdin (--audio -) can be read once\n"); return 2; }
            clip_paths[n_clips++] = v;
        }
        else if (!strcmp(a, "--max-seconds")) ap.max_seconds = atof(v);
        else if (!strcmp(a, "--rate")) rate = atoi(v);
        else if (!strcmp(a, "--channels")) channels = atoi(v);
        else { usage(); return 2; }
    }
    if (!args.model_path || !args.prompt || n_clips == 0) {
        if (args.model_path && args.prompt) fprintf(stderr, "qwen-audio: no clip: give --audio FILE (or --audio - for PCM on stdin)\n");
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
        else if (qwen_audio_load_ex(clip_paths[i], &ap, &clips[i]) != QWEN_OK) status = fail(program, clip_paths[i]);
    }
    if (status) {
        for (int i = 0; i < n_clips; i++) qwen_audio_free(clips[i]);
        return status;
    }

    qwen_model *model = NULL;
    qwen_context *ctx = NULL;
    qwen_model_details info;
    double t0 = now_seconds();
    status = load_model(program, &args, &model);
    if (!status) {
        int has_audio = qwen_model_has_audio(model);
        if (has_audio == 0) {
            fprintf(stderr, "qwen-audio: %s takes no audio (a Qwen2-Audio GGUF needs --mmproj)\n", args.model_path);
            status = 1;
        } else if (has_audio < 0) status = fail(program, "qwen_model_has_audio");
    }
    if (!status) status = open_context(program, model, &args, t0, &info, &ctx);

    /* encode each clip now, to report the time (the chat below takes them from the context's cache) */
    double encode_seconds = 0, audio_seconds = 0;
    int audio_tokens = 0;
    for (int i = 0; i < n_clips && !status; i++) {
        const char *name = strcmp(clip_paths[i], "-") ? clip_paths[i] : "stdin";
        int32_t tokens = qwen_audio_n_tokens(model, clips[i]);
        if (tokens < 0) { status = fail(program, name); break; }
        /* room for at least one row: a clip too short to give any is refused by qwen_audio_embed with its reason */
        int64_t capacity = (int64_t)(tokens > 0 ? tokens : 1) * info.n_embd;
        float *rows = malloc(sizeof(float) * (size_t)capacity);
        if (!rows) { fprintf(stderr, "qwen-audio: out of memory\n"); status = 1; break; }
        double t = now_seconds();
        int32_t n = 0;
        int rc = qwen_audio_embed(ctx, clips[i], rows, capacity, &n);
        free(rows);
        if (rc < 0) { status = fail(program, name); break; }
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
        status = answer_with_media(program, ctx, &args, "<audio>", NULL, 0, (const qwen_audio *const *)clips, n_clips, NULL);
    }
    for (int i = 0; i < n_clips; i++) qwen_audio_free(clips[i]);
    qwen_context_free(ctx);
    qwen_model_free(model);
    return status;
}
