import Foundation
import SelfCalSupport

/// What became of one run of an external command.
///
/// A non-zero exit is a normal result, not a thrown error: look at `outcome`, or call `checked()`.
public struct ProcessResult: Sendable {
    /// Why the run ended.
    public enum Outcome: Sendable, Hashable, CustomStringConvertible {
        /// The command exited by itself with this code (-1: it ended, but something else in
        /// selfcal reaped it first, so its status is lost).
        case exited(Int32)
        /// The command was ended by this signal, not sent by the runner (a crash, an outside kill).
        case signalled(Int32)
        /// The runner stopped it at `ProcessSpec.timeout`.
        case timedOut
        /// The runner stopped it after `ProcessSpec.stallTimeout` without new output.
        case stalled
        /// The runner stopped it because the calling task was cancelled.
        case cancelled

        public var description: String {
            switch self {
            case .exited(let code): "exited \(code)"
            case .signalled(let signal): "killed by signal \(signal) (\(signalName(signal)))"
            case .timedOut: "timed out"
            case .stalled: "stalled (no new output)"
            case .cancelled: "cancelled"
            }
        }
    }

    /// The raw end of the child as `waitpid` reported it.
    public enum TerminationStatus: Sendable, Hashable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)

        public var description: String {
            switch self {
            case .exited(let code): "exit status \(code)"
            case .signalled(let signal): "signal \(signal) (\(signalName(signal)))"
            }
        }
    }

    /// argv as spawned, argv[0] being `ProcessSpec.executable` as given.
    public var arguments: [String]
    /// The resolved path that was executed.
    public var executablePath: String
    /// The child's pid, which is also its process group id.
    public var processGroup: Int32
    public var outcome: Outcome
    /// nil when the child could not be reaped even after SIGKILL (stuck in the kernel, e.g. on a
    /// dead NFS mount; it is then listed in `survivors`), or when its status was lost.
    public var status: TerminationStatus?
    /// From the spawn to the end of the child (teardown included, final sweep not).
    public var duration: Duration
    /// The last bytes (at most `ProcessRunner.tailBytes`) this run appended to `logPath`, read
    /// after the end; a cut first line is dropped.
    public var outputTail: String
    public var logPath: URL
    /// pids of the group still alive after the final sweep; normally empty.
    public var survivors: [Int32]

    /// True for `.exited(0)` only.
    public var succeeded: Bool { outcome == .exited(0) }

    /// Whether the command stalled right after printing `marker` on its last non-empty line:
    /// it finished its work and then hung on the way out, as WSClean in a one-shot container does
    /// after "Cleaning up temporary files..." while a volume unmounts. The caller may then check
    /// that the command's outputs exist and accept the run with a warning.
    public func stalled(afterPrinting marker: String) -> Bool {
        guard outcome == .stalled else { return false }
        let lastLine = outputTail.split(whereSeparator: \.isNewline)
            .last { !$0.allSatisfy(\.isWhitespace) }
        return lastLine?.contains(marker) ?? false
    }

    /// The command as a shell would show it, for messages.
    public var commandLine: String { arguments.map(shellQuoted).joined(separator: " ") }

    /// Returns `self` when the command exited 0.
    ///
    /// Otherwise throws `PipelineError(.toolFailed)` whose message holds the outcome, the raw
    /// status and the output tail, and whose context is the command line; a cancelled run
    /// throws `PipelineError(.interrupted)` instead.
    @discardableResult
    public func checked() throws(PipelineError) -> ProcessResult {
        if succeeded { return self }
        let code: PipelineError.Code = outcome == .cancelled ? .interrupted : .toolFailed
        throw PipelineError(code, failureDescription, context: commandLine)
    }

    /// A paragraph for a person: what happened, the status, where the log is, the tail.
    public var failureDescription: String {
        var text = "\(URL(fileURLWithPath: executablePath).lastPathComponent) \(outcome)"
        if let status { text += " (\(status))" }
        text += String(format: " after %.1f s; full output in %@", duration.seconds, logPath.fileSystemPath)
        if !survivors.isEmpty {
            text += "; processes \(survivors.map(String.init).joined(separator: ", ")) survived SIGKILL"
        }
        let tail = outputTail.trimmingCharacters(in: .whitespacesAndNewlines)
        text += tail.isEmpty ? "; it printed nothing" : "; last output:\n\(tail)"
        return text
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}

/// "SIGTERM" for 15, and so on for the signals a tool is likely to die of.
func signalName(_ signal: Int32) -> String {
    switch signal {
    case 1: "SIGHUP"
    case 2: "SIGINT"
    case 3: "SIGQUIT"
    case 4: "SIGILL"
    case 6: "SIGABRT"
    case 7: "SIGBUS"
    case 8: "SIGFPE"
    case 9: "SIGKILL"
    case 11: "SIGSEGV"
    case 13: "SIGPIPE"
    case 14: "SIGALRM"
    case 15: "SIGTERM"
    default: "SIG\(signal)"
    }
}
