import Foundation

import SelfCalSupport

#if canImport(Glibc)
import Glibc
#endif

/// The lock that keeps two selfcal runs off one Measurement Set: a file `selfcal.lock` inside the
/// MS directory, held with `flock` for the life of the process. The kernel drops the flock when
/// the holder dies (even by SIGKILL), so a stale lock file is recognised and taken over; the
/// file's text says who holds it.
public final class MSLock: @unchecked Sendable {
    public let path: String
    private var fd: Int32

    /// Takes the lock or throws `.badInput` naming the run that holds it.
    public init(msPath: String) throws {
        path = (msPath as NSString).appendingPathComponent("selfcal.lock")
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw PipelineError(.badInput, "cannot create the lock file (\(String(cString: strerror(errno)))); is the MS writable?", context: path)
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            close(fd)
            fd = -1
            throw PipelineError(.badInput, "the MS is in use by another selfcal run (\(holder)); wait for it to finish, or stop it", context: msPath)
        }
        let stale = (try? String(contentsOfFile: path, encoding: .utf8)).map { !$0.isEmpty } ?? false
        let text = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName) since \(ISO8601DateFormatter().string(from: Date()))\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        brokeStaleLock = stale
    }

    /// True when a lock file from a dead run was found and taken over.
    public private(set) var brokeStaleLock = false

    /// Releases the lock and removes the file; safe to call more than once.
    public func release() {
        guard fd >= 0 else { return }
        unlink(path)
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
