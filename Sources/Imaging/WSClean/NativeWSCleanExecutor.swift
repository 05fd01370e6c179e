import Foundation
import SelfCalSupport

/// WSClean on this machine, found on PATH or at a configured path.
public struct NativeWSCleanExecutor: WSCleanExecutor {
    public let executable: String
    public let limits: ExecutorLimits
    let runner: ProcessRunner

    /// Finds WSClean (`path`, else `wsclean` on PATH); throws `.badConfig` with the fix when absent.
    public init(path: String? = nil, limits: ExecutorLimits = ExecutorLimits(), runner: ProcessRunner) throws(PipelineError) {
        if let path {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw PipelineError(.badConfig, "WSClean is not an executable file at '\(path)' (fix executor.wsclean_path, or install it: apt-get install wsclean)", context: "executor.wsclean_path")
            }
            executable = path
        } else if let found = findExecutable("wsclean") {
            executable = found
        } else {
            throw PipelineError(.badConfig, "WSClean was not found on PATH (install it: apt-get install wsclean; or set executor.wsclean_path, or use executor.kind container)", context: "executor.kind")
        }
        self.limits = limits
        self.runner = runner
    }

    public var description: String { "native \(executable)" }

    public func run(_ options: WSCleanOptions, measurementSets: [String], logPath: URL,
                    progress: (@Sendable (Int) -> Void)?) async throws(PipelineError) -> WSCleanResult {
        try options.validate()
        let spec = ProcessSpec(executable, arguments: options.arguments(measurementSets: measurementSets), logPath: logPath,
                               timeout: limits.timeout, stallTimeout: limits.stallTimeout, grace: limits.grace)
        let result = try await runner.run(spec, onOutput: progress.map { cb in { @Sendable text in
            if let p = wscleanProgress(in: text) { cb(p) }
        } })
        return try judge(result, options: options)
    }

    public func shutdown() async {}
}
