import CQwen
import QwenFormats
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A persistent pool of worker threads shared by every model. `parallelFor` hands out task indices;
/// the calling thread takes tasks too. Idle workers spin briefly, then sleep on a futex.
/// One pool serves one caller at a time (a context owns its pool).
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    /// Pause iterations a worker spins before sleeping (a few tens of microseconds).
    public var spinIterations: Int

    // Shared words: [0] generation (futex), [1] finished tasks (futex), [2] stop flag, [3] workers asleep on [0],
    // [4] callers asleep on [1].
    private let words: UnsafeMutablePointer<UInt32>
    // [0] claim: (generation << 32 | next task index), taken with compare-and-swap so a late worker can
    // never take a task of a newer job; [1] the job (address of the caller's closure); [2] task count.
    // The caller invalidates old claims first and publishes job and count with release stores.
    private let job: UnsafeMutablePointer<Int64>
    private var generation: UInt32 = 0
    private var threads: [pthread_t] = []

    /// Threads usable by this process (affinity mask), at least 1.
    public static var availableCores: Int { Int(cq_usable_cpu_count()) }

    /// The most threads a pool runs; the public APIs refuse larger counts.
    public static let maxThreads = 1024

    public init(threads: Int, spinIterations: Int = 20_000) {
        threadCount = min(max(1, threads), Self.maxThreads)
        self.spinIterations = spinIterations
        words = .allocate(capacity: 5)
        words.initialize(repeating: 0, count: 5)
        job = .allocate(capacity: 3)
        job.initialize(repeating: 0, count: 3)
        for worker in 1 ..< threadCount {
            let start = WorkerStart(pool: Unmanaged.passUnretained(self), index: worker)
            var tid = pthread_t()
            let ctx = Unmanaged.passRetained(start).toOpaque()
            let rc = pthread_create(&tid, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.takeUnretainedValue().workerLoop(index: start.index)
                return nil
            }, ctx)
            if rc == 0 {
                self.threads.append(tid)
            } else {
                Unmanaged<WorkerStart>.fromOpaque(ctx).release()
            }
        }
    }

    deinit {
        cq_store_release_u32(words + 2, 1)
        _ = cq_fetch_add_u32(words, 1)
        cq_futex_wake_all(words)
        for t in threads { pthread_join(t, nil) }
        words.deallocate()
        job.deallocate()
    }

    /// Runs `body(task, worker)` for every task in 0..<count across the pool and returns when all are done.
    /// `worker` is in 0..<threadCount (0 is the caller) and indexes per-thread scratch.
    public func parallelFor(_ count: Int, _ body: (_ task: Int, _ worker: Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threads.isEmpty {
            for i in 0 ..< count { body(i, 0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            var local = escapable
            withUnsafeMutablePointer(to: &local) { pointer in
                generation &+= 1
                let g = generation
                cq_store_release_i64(job, Int64(g) << 32)
                cq_store_release_u32(words + 1, 0)
                cq_store_release_i64(job + 1, Int64(Int(bitPattern: UnsafeRawPointer(pointer))))
                cq_store_release_i64(job + 2, Int64(count))
                cq_store_release_u32(words, g)
                cq_futex_wake_counted(words, words + 3)
                runTasks(generation: g, worker: 0)
                // wait for the tasks other threads took
                var spins = 0
                while true {
                    let done = cq_load_acquire_u32(words + 1)
                    if Int(done) >= count { break }
                    if spins < spinIterations {
                        cq_pause()
                        spins += 1
                    } else {
                        cq_futex_wait_counted(words + 1, done, words + 4)
                    }
                }
            }
        }
    }

    private func runTasks(generation g: UInt32, worker: Int) {
        guard let body = UnsafeRawPointer(bitPattern: Int(cq_load_acquire_i64(job + 1))) else { return }
        let count = Int(cq_load_acquire_i64(job + 2))
        let run = body.assumingMemoryBound(to: ((Int, Int) -> Void).self)
        while true {
            let current = cq_load_acquire_i64(job)
            // a job or count read for a newer generation comes with that generation's claim word
            guard UInt32(truncatingIfNeeded: current >> 32) == g else { return }
            let index = Int(current & 0xFFFF_FFFF)
            if index >= count { return }
            var expected = current
            guard cq_compare_exchange_i64(job, &expected, current + 1) else { continue }
            run.pointee(index, worker)
            if Int(cq_fetch_add_u32(words + 1, 1)) + 1 == count {
                cq_futex_wake_counted(words + 1, words + 4)
            }
        }
    }

    private func workerLoop(index: Int) {
        var seen: UInt32 = 0
        while true {
            var generation = cq_load_acquire_u32(words)
            var spins = 0
            while generation == seen {
                if spins < spinIterations {
                    cq_pause()
                    spins += 1
                } else {
                    cq_futex_wait_counted(words, seen, words + 3)
                }
                generation = cq_load_acquire_u32(words)
            }
            if cq_load_acquire_u32(words + 2) != 0 { return }
            seen = generation
            runTasks(generation: generation, worker: index)
        }
    }
}

// Workers do not own the pool: its deinit stops and joins them.
private final class WorkerStart {
    let pool: Unmanaged<ThreadPool>
    let index: Int
    init(pool: Unmanaged<ThreadPool>, index: Int) {
        self.pool = pool
        self.index = index
    }
}
