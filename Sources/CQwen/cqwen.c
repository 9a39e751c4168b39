#define _GNU_SOURCE
#include "cqwen.h"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Thread_local char last_error[1024];

void cq_set_error(const char *message) {
    if (!message) { last_error[0] = 0; return; }
    size_t n = strlen(message);
    if (n >= sizeof last_error) n = sizeof last_error - 1;
    memcpy(last_error, message, n);
    last_error[n] = 0;
}

const char *cq_get_error(void) { return last_error; }

// Swift cannot call the variadic syscall(), hence these two wrappers.
void cq_futex_wait(uint32_t *address, uint32_t expected) {
    syscall(SYS_futex, address, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

void cq_futex_wake_all(uint32_t *address) {
    syscall(SYS_futex, address, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
}

void cq_futex_wait_counted(uint32_t *address, uint32_t expected, uint32_t *sleepers) {
    __atomic_fetch_add(sleepers, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(address, __ATOMIC_SEQ_CST) == expected) cq_futex_wait(address, expected);
    __atomic_fetch_sub(sleepers, 1, __ATOMIC_SEQ_CST);
}

void cq_futex_wake_counted(uint32_t *address, uint32_t *sleepers) {
    // pairs with the sleeper's increment: either it sees the store to *address, or we see it counted
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(sleepers, __ATOMIC_SEQ_CST) != 0) cq_futex_wake_all(address);
}

int cq_usable_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int cq_cpu_has_avx512vnni(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

void cq_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
