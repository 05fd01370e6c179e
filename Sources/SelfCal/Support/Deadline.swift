import Dispatch
import Foundation

/// Set when the work should stop; polled by blocking loops (the native predict, between chunks).
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public init() {}
    public var isCancelled: Bool { lock.withLock { cancelled } }
    public func cancel() { lock.withLock { cancelled = true } }
}

/// Thrown by `withDeadline` when the limit passed first.
struct SeedingTimeout: Error { var limit: Duration }

/// Runs `body` and fails with `SeedingTimeout` if it has not finished after `limit`: the body's
/// task is cancelled and `flag` set, and this returns once the body has stopped.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable (CancellationFlag) async throws -> T) async throws -> T {
    let flag = CancellationFlag()
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body(flag) }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        while let next = try await group.next() {
            if let value = next { return value }
            // The timer: stop the work, wait for it to end, report the timeout.
            flag.cancel()
            group.cancelAll()
            while (try? await group.next()) != nil {}
            throw SeedingTimeout(limit: limit)
        }
        throw SeedingTimeout(limit: limit)
    }
}

/// Runs blocking work on a Dispatch thread (not the cooperative pool, so timers keep firing);
/// cancellation of the calling task sets `flag`.
func runBlocking<T: Sendable>(_ flag: CancellationFlag, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
            DispatchQueue.global().async {
                do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
            }
        }
    } onCancel: {
        flag.cancel()
    }
}
