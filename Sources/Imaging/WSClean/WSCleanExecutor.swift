import Foundation
import SelfCalSupport

/// What a WSClean call produced.
public struct WSCleanResult: Sendable {
    public var process: ProcessResult
    /// Set when WSClean finished its work but then hung and was stopped: the outputs were
    /// checked and are accepted.
    public var warning: String?
}

/// Runs WSClean: natively or inside a container. One executor lives for a whole selfcal run.
public protocol WSCleanExecutor: Sendable {
    /// A short description for logs and reports ("native /usr/bin/wsclean", "docker container selfcal-...").
    var description: String { get }
    /// Runs one WSClean call with the executor's deadline, stall watchdog and grace; `progress`
    /// receives WSClean's percentage (0...100) as it prints it. Throws `.toolFailed` when WSClean
    /// fails or times out, `.interrupted` when the task is cancelled.
    func run(_ options: WSCleanOptions, measurementSets: [String], logPath: URL,
             progress: (@Sendable (Int) -> Void)?) async throws(PipelineError) -> WSCleanResult
    /// Releases what the executor holds (a container); safe to call more than once.
    func shutdown() async
}

/// Limits every WSClean call runs under.
public struct ExecutorLimits: Sendable {
    public var timeout: Duration
    public var stallTimeout: Duration
    public var grace: Duration

    public init(timeout: Duration = .seconds(3600), stallTimeout: Duration = .seconds(600), grace: Duration = .seconds(10)) {
        self.timeout = timeout
        self.stallTimeout = stallTimeout
        self.grace = grace
    }
}

/// Parses WSClean's progress bar (`0%....10%....20%`) into the last percentage printed.
public func wscleanProgress(in text: String) -> Int? {
    var last: Int?
    var digits = ""
    for ch in text {
        if ch.isNumber { digits.append(ch) } else {
            if ch == "%", let v = Int(digits), v <= 100 { last = v }
            digits = ""
        }
    }
    return last
}

/// The files a successful WSClean call leaves, to verify a call that hung after its work.
public func wscleanExpectedOutputs(_ options: WSCleanOptions) -> [String] {
    options.predict ? [] : [options.name + "-image.fits"]
}

/// Decides what a finished WSClean process means: success, a hang after completed work
/// (accepted with a warning when its outputs exist), or a failure.
public func judge(_ result: ProcessResult, options: WSCleanOptions) throws(PipelineError) -> WSCleanResult {
    switch result.outcome {
    case .exited(0):
        return WSCleanResult(process: result, warning: nil)
    case .stalled where result.stalled(afterPrinting: "Cleaning up temporary files"):
        let missing = wscleanExpectedOutputs(options).filter { !FileManager.default.fileExists(atPath: $0) }
        if missing.isEmpty {
            return WSCleanResult(process: result, warning: "WSClean finished its work but then hung; it was stopped after the stall timeout and its outputs were verified")
        }
        throw PipelineError(.toolFailed, "WSClean hung after cleaning up and its outputs are missing (\(missing.joined(separator: ", ")))", context: result.commandLine)
    case .cancelled:
        throw PipelineError(.interrupted, "WSClean was stopped: selfcal was interrupted", context: result.commandLine)
    default:
        _ = try result.checked()
        throw PipelineError(.toolFailed, result.failureDescription, context: result.commandLine)
    }
}
