import Foundation

/// One external command for `ProcessRunner`: what to run, where its output goes, and how long
/// it may take.
///
/// The command is an argument array, never a shell string: nothing is split, globbed or
/// expanded. Output (stdout and stderr together) goes to `logPath`, appended, so that nothing
/// in selfcal ever has to drain a pipe.
public struct ProcessSpec: Sendable {
    /// A path (anything with a `/`) or a bare name looked up in `PATH` (the overridden one if
    /// `environment` sets it) before spawning. It is also the child's argv[0].
    public var executable: String
    /// argv[1...].
    public var arguments: [String]
    /// Variables set in the child on top of selfcal's own environment.
    public var environment: [String: String]
    /// The child's working directory; nil keeps selfcal's.
    public var workingDirectory: URL?
    /// stdout and stderr of the child are appended to this file (created if missing; its
    /// directory must exist).
    public var logPath: URL
    /// Wall-clock limit from the spawn; nil for none. On expiry: outcome `.timedOut`.
    public var timeout: Duration?
    /// Longest time without a single new byte in `logPath`; nil for none. On expiry: outcome
    /// `.stalled`. Note that a program writing to a file usually buffers its stdout (4–8 KiB),
    /// so this must be longer than the quietest stretch of the program's *flushed* output.
    public var stallTimeout: Duration?
    /// Time between SIGTERM and SIGKILL when the run is stopped.
    public var grace: Duration

    public init(
        _ executable: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        workingDirectory: URL? = nil,
        logPath: URL,
        timeout: Duration? = nil,
        stallTimeout: Duration? = nil,
        grace: Duration = .seconds(5)
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.logPath = logPath
        self.timeout = timeout
        self.stallTimeout = stallTimeout
        self.grace = grace
    }

    /// The command as a person would type it in a POSIX shell (quoted where needed): for logs
    /// and error messages only; selfcal never runs it through a shell.
    public var commandLine: String {
        ([executable] + arguments).map(shellQuoted).joined(separator: " ")
    }
}

/// `word` if a POSIX shell would read it back unchanged, else `'word'` with `'` escaped.
func shellQuoted(_ word: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
    if !word.isEmpty && word.allSatisfy(safe.contains) { return word }
    return "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}

extension URL {
    /// The path to hand to a system call.
    var fileSystemPath: String {
        withUnsafeFileSystemRepresentation { $0.map { String(cString: $0) } } ?? path
    }
}
