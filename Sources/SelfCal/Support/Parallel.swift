import Dispatch
import Foundation

/// A raw pointer that hot loops share across threads, each writing a disjoint region.
/// The caller guarantees the regions never overlap and the memory outlives the loop.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// Runs `body(i)` for `0..<count` over the machine's cores (DispatchQueue.concurrentPerform).
func parallelFor(_ count: Int, _ body: @Sendable (Int) -> Void) {
    if count == 1 { body(0); return }
    DispatchQueue.concurrentPerform(iterations: count, execute: body)
}

/// The first error thrown by any of several threads.
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?

    func record(_ body: () throws -> Void) {
        do { try body() } catch {
            lock.lock()
            if stored == nil { stored = error }
            lock.unlock()
        }
    }

    func rethrow() throws {
        lock.lock()
        let e = stored
        lock.unlock()
        if let e { throw e }
    }
}

/// Runs a chunked pass over an MS on two threads: casacore I/O (not thread-safe: every `read` and
/// `write` call runs on one side, in order) overlapped with the arithmetic (`process`, also in
/// order). Step k reads chunk k+1 and writes chunk k−1 while chunk k is processed, so three
/// slots rotate (`slots[k % 3]` holds chunk k). The first error stops the pass after its step.
func pipelinedChunks<Slot: AnyObject & Sendable>(
    count: Int, slots: [Slot],
    read: @escaping @Sendable (Int, Slot) throws -> Void,
    process: @escaping @Sendable (Int, Slot) throws -> Void,
    write: (@Sendable (Int, Slot) throws -> Void)? = nil
) throws {
    precondition(slots.count >= 3)
    guard count > 0 else { return }
    try read(0, slots[0])
    let errors = FirstError()
    for step in 0..<count {
        try checkCancelled()
        parallelFor(2) { side in
            if side == 0 {
                errors.record {
                    if let write, step > 0 { try write(step - 1, slots[(step - 1) % 3]) }
                    if step + 1 < count { try read(step + 1, slots[(step + 1) % 3]) }
                }
            } else {
                errors.record { try process(step, slots[step % 3]) }
            }
        }
        try errors.rethrow()
    }
    if let write { try write(count - 1, slots[(count - 1) % 3]) }
}
