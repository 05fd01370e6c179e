import ArgumentParser
import Foundation
import Imaging
import SelfCal
import SelfCalSupport

@main
struct SelfCalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfcal",
        abstract: "Self-calibration of radio-interferometer Measurement Sets: seed, solve, apply, image, judge.",
        subcommands: [Run.self, Batch.self, Simulate.self, Solve.self, Apply.self, Predict.self, Mask.self, Report.self, Doctor.self]
    )

    /// ArgumentParser's own usage errors exit 64; selfcal's contract says 2 for bad arguments.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// Runs a command body, mapping `PipelineError` to its exit code with a one-line message.
func runReportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let e as PipelineError {
        FileHandle.standardError.write(Data("selfcal: error: \(e.description)\n".utf8))
        throw ExitCode(e.exitCode)
    }
}

/// Writes a line to stdout at once (print() buffers when stdout is a file or pipe), so progress
/// reaches logs and pipes as it happens.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
