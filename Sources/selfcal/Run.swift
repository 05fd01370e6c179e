import ArgumentParser
import Dispatch
import Foundation
import Imaging
import Logging
import SelfCal

import SelfCalSupport

#if canImport(Glibc)
import Glibc
#endif

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Self-calibrate a Measurement Set: seed, then solve → apply → image rounds judged on their own images.")

    @Argument(help: "The JSON config (see configs/).") var config: String
    @Option(help: "The Measurement Set (overrides \"ms\").") var ms: String?
    @Option(help: "Where outputs go (overrides \"output_dir\").") var outputDir: String?
    @Option(help: "auto | native | container (overrides executor.kind).") var executor: String?
    @Flag(help: "Continue after the last completed round in the output directory.") var resume = false
    @Flag(help: "Print the plan (rounds and commands) and exit without running.") var dryRun = false
    @Flag(help: "Do not write report.html at the end (report.json is always written).") var noReport = false

    func run() async throws {
        var exitCode: Int32 = 0
        try await runReportingErrors {
            var c = try SelfCalConfig.load(path: config)
            if let ms { c.ms = ms }
            if let outputDir { c.outputDir = outputDir }
            if let executor {
                guard ["auto", "native", "container"].contains(executor) else {
                    throw PipelineError(.badConfig, "must be auto, native or container", context: "--executor")
                }
                c.executor.kind = executor
                if executor == "container" && c.executor.engine == nil {
                    throw PipelineError(.badConfig, "executor kind \"container\" needs an engine: set executor.engine to \"docker\" or \"podman\"", context: "executor.engine")
                }
            }
            guard let msPath = c.ms else {
                throw PipelineError(.badConfig, "no Measurement Set: set \"ms\" in the config or pass --ms", context: "ms")
            }
            guard FileManager.default.fileExists(atPath: msPath + "/table.dat") else {
                throw PipelineError(.badInput, FileManager.default.fileExists(atPath: msPath) ? "not a casacore table (no table.dat)" : "no such Measurement Set", context: msPath)
            }
            let out = c.outputDir ?? (msPath as NSString).standardizingPath + ".selfcal"
            if dryRun {
                let call = try ImagingCall(config: c, ms: try MeasurementSet(path: msPath))
                printPlan(c, outputDir: out, call: call)
                return
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let logger = try makeRunLogger(logFile: (out as NSString).appendingPathComponent("selfcal.log"))
            let records = URL(fileURLWithPath: out).appendingPathComponent("processes")
            try FileManager.default.createDirectory(at: records, withIntermediateDirectories: true)
            let swept = await ProcessRunner.sweepLeftovers(in: records, logger: logger)
            if !swept.isEmpty { logger.warning("stopped \(swept.count) process group(s) left by an earlier run that died") }
            let runner = ProcessRunner(recordDirectory: records, logger: logger)
            let exec = try makeExecutor(c, runner: runner, logger: logger, logDirectory: out)
            let loop = try SelfCalLoop(config: c, executor: exec, logger: logger, progress: TerminalProgress(), resume: resume)
            let report: RunReport
            do {
                report = try await withSignalsAsCancellation { try await loop.run() }
            } catch {
                await exec.shutdown()
                writeHTMLReport(out, logger: logger)
                throw error
            }
            await exec.shutdown()
            writeHTMLReport(out, logger: logger)
            printSummary(report)
            exitCode = report.exitCode
        }
        if exitCode != 0 { throw ExitCode(exitCode) }
    }

    /// report.html for the run, whatever its outcome; a failure to write it is a warning only.
    func writeHTMLReport(_ dir: String, logger: Logger) {
        guard !noReport else { return }
        do {
            let path = try HTMLReport.write(outputDir: dir)
            FileHandle.standardError.write(Data("html report: \(path)\n".utf8))
        } catch {
            logger.warning("could not write report.html: \(error)")
        }
    }

    func printPlan(_ c: SelfCalConfig, outputDir: String, call: ImagingCall) {
        say("plan for \(c.ms ?? "?") → \(outputDir)")
        say("  executor: \(c.executor.kind)\(c.executor.engine.map { " (\($0))" } ?? "")")
        let seeding = c.useNvssSeeding ? "catalog \(c.nvssCatalog ?? "(none)") above \(c.nvssMinMjy) mJy, calibrator as fallback" : "calibrator model"
        say("  seed MODEL_DATA: \(seeding)")
        let cell = c.imaging.cellArcsec == nil ? " (from the longest baseline)" : ""
        say("  initial image of DATA: \(call.size)² pixels, cell \(call.cellArcsec)\"\(cell), niter \(c.imaging.niter)")
        for (i, r) in c.plannedRounds.enumerated() {
            say("  round \(i + 1): solve \(r.calMode.rawValue) solint \(r.solint) (refant \(c.refant)), apply, image CORRECTED_DATA, accept if SNR ≥ ×\(c.minSnrImprovement)")
        }
        // The round's WSClean call from the builder the run uses, for this MS and output directory.
        let msPath = URL(fileURLWithPath: c.ms ?? "").standardizedFileURL.path
        let out = URL(fileURLWithPath: outputDir).standardizedFileURL.path
        let mask = c.useNvssSeeding && c.nvssCatalog != nil ? ImagingCall.maskPath(outputDir: out) : nil
        let prefix = (ImagingCall.roundDirectory(1, outputDir: out) as NSString).appendingPathComponent("image")
        let options = call.image(prefix: prefix, column: "CORRECTED_DATA", updateModel: true, mask: mask)
        let words = ["wsclean"] + options.arguments(measurementSets: [msPath])
        say("  WSClean per round\(mask == nil ? "" : " (with the catalog mask when seeding finds sources)"): "
            + ProcessSpec(words[0], arguments: Array(words.dropFirst()), logPath: URL(fileURLWithPath: "/dev/null")).commandLine)
    }

    func printSummary(_ r: RunReport) {
        let f = { (m: ImageMetrics?) in m.map { String(format: "SNR %.1f (peak %.4g Jy, rms %.3g Jy)", $0.snr, $0.peakJy, $0.rmsJy) } ?? "-" }
        say("status: \(r.status.rawValue) — \(r.stopReason)")
        say("initial: \(f(r.initial))")
        say("final:   \(f(r.final))")
        for round in r.rounds {
            say(String(format: "  round %d %@ %@: %@ SNR %.1f (%.1f s)", round.index, round.calmode, round.solint,
                         round.accepted ? "accepted" : "rejected", round.snr, round.wallS))
        }
        if let t = r.finalCaltable { say("final table: \(t)") }
        say("report: \((r.outputDir as NSString).appendingPathComponent("report.json"))")
    }
}

/// Chooses the WSClean executor from the config: native, one long-running container, or auto.
func makeExecutor(_ c: SelfCalConfig, runner: ProcessRunner, logger: Logger, logDirectory: String? = nil) throws -> any WSCleanExecutor {
    let limits = ExecutorLimits(timeout: .seconds(c.executor.timeoutS), stallTimeout: .seconds(c.executor.stallTimeoutS),
                                grace: .seconds(c.executor.graceS))
    var container = ContainerExecutorConfig(
        engine: ContainerEngine(rawValue: c.executor.engine ?? "docker") ?? .docker, image: c.executor.image,
        mounts: c.executor.mounts.map { ContainerMount(host: $0.host, container: $0.container) },
        user: ContainerExecutorConfig.User(configValue: c.executor.user))
    if let logDirectory { container.logDirectory = URL(fileURLWithPath: logDirectory) }
    let kind = WSCleanExecutorKind(rawValue: c.executor.kind) ?? .auto
    return try makeWSCleanExecutor(kind: kind, wscleanPath: c.executor.wscleanPath, container: container, limits: limits,
                                   runner: runner, logger: logger)
}

/// Runs `body` in a task that SIGINT and SIGTERM cancel; a second signal exits at once.
func withSignalsAsCancellation<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let task = Task { try await body() }
    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    let counter = SignalCounter()
    let sources = [SIGINT, SIGTERM].map { sig -> DispatchSourceSignal in
        let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        s.setEventHandler {
            if counter.increment() == 1 {
                FileHandle.standardError.write(Data("\nselfcal: stopping (signal \(sig)); again to exit at once\n".utf8))
                task.cancel()
            } else {
                _exit(130)
            }
        }
        s.resume()
        return s
    }
    defer { sources.forEach { $0.cancel() } }
    return try await task.value
}

final class SignalCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
}

/// Progress for a person: one line per step with the elapsed time; WSClean's percentage
/// updated in place on a terminal.
struct TerminalProgress: ProgressSink {
    let start = Date()
    let tty = isatty(STDERR_FILENO) != 0

    func step(_ text: String) {
        let line = String(format: "[%6.1fs] %@", Date().timeIntervalSince(start), text)
        FileHandle.standardError.write(Data(((tty ? "\r\u{1B}[K" : "") + line + "\n").utf8))
    }

    func percent(_ value: Int) {
        guard tty else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K  WSClean \(value)%".utf8))
    }
}

/// A logger that writes everything to `logFile` and info and above to stderr.
func makeRunLogger(logFile: String) throws -> Logger {
    let file = try FileLogSink(path: logFile)
    return Logger(label: "selfcal") { label in
        var stderrHandler = StreamLogHandler.standardError(label: label)
        stderrHandler.logLevel = .warning
        var fileHandler = FileLogHandler(label: label, sink: file)
        fileHandler.logLevel = .info
        return MultiplexLogHandler([stderrHandler, fileHandler])
    }
}

final class FileLogSink: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw PipelineError(.badConfig, "cannot write the log file", context: path)
        }
        h.seekToEndOfFile()
        handle = h
    }

    func write(_ s: String) {
        lock.lock(); defer { lock.unlock() }
        handle.write(Data(s.utf8))
    }
}

struct FileLogHandler: LogHandler {
    let label: String
    let sink: FileLogSink
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
        let meta = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        sink.write("\(ISO8601DateFormatter().string(from: Date())) \(event.level) \(label):\(meta) \(event.message)\n")
    }
}
