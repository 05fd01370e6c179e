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

/// A small, fast, seedable generator (xoshiro256**), so simulations are reproducible.
struct Xoshiro: RandomNumberGenerator, Sendable {
    var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64) {
        var x = seed &+ 0x9E37_79B9_7F4A_7C15
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x = x &+ 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(&x), splitmix(&x), splitmix(&x), splitmix(&x))
    }

    mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// A uniform double in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A pair of independent standard normal deviates (Box–Muller).
    mutating func gaussianPair() -> (Double, Double) {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        let r = (-2 * log(u1)).squareRoot()
        return (r * cos(2 * .pi * u2), r * sin(2 * .pi * u2))
    }
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
