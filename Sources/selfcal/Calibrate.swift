import ArgumentParser
import Foundation
import Imaging
import Logging
import SelfCal

extension CalMode: ExpressibleByArgument {}

struct Solve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Solve antenna gains against MODEL_DATA (like CASA gaincal, gaintype G) and write a CASA calibration table.")

    @Argument(help: "The Measurement Set (opened read-only).") var ms: String
    @Option(help: "p (phase only) or ap (amplitude and phase).") var calmode: CalMode = .p
    @Option(help: "Solution interval: int, inf, or a duration such as 60s.") var solint: String = "int"
    @Option(help: "Reference antenna: a name, an index, or auto.") var refant: String = "auto"
    @Option(help: "Solutions with a lower SNR are flagged.") var minsnr: Double = 3
    @Option(name: .customLong("pre-apply"), help: "A table to apply before solving (repeatable).") var preApply: [String] = []
    @Flag(help: "One solution across all spectral windows.") var combineSpw = false
    @Option(help: "The calibration table to write (must not exist).") var table: String

    func run() async throws {
        try await runReportingErrors {
            let log = makeLogger("selfcal.solve")
            var o = SolveOptions()
            o.calMode = calmode
            o.solint = try SolutionInterval(parsing: solint)
            o.refant = refant
            guard minsnr >= 0, minsnr.isFinite else { throw PipelineError(.badConfig, "must be ≥ 0", context: "--minsnr") }
            o.minSNR = minsnr
            o.combineSPW = combineSpw
            if FileManager.default.fileExists(atPath: table) {
                throw PipelineError(.badConfig, "already exists (remove it or choose another --table)", context: table)
            }
            o.preApply = try preApply.map { try GainTable.read(path: $0) }
            let m = try MeasurementSet(path: ms)
            let start = Date()
            let result = try GainSolver(options: o, logger: log).solve(ms: m)
            try result.write(to: table, msPath: ms)
            let flagged = result.solutions.reduce(0) { $0 + $1.flags.filter { $0 }.count }
            say("wrote \(table): \(result.solutions.count) solutions (\(flagged) of \(2 * result.solutions.count) flagged) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        }
    }
}

struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write CORRECTED_DATA = DATA corrected by gain tables (like CASA applycal). DATA is never modified.")

    @Argument(help: "The Measurement Set (opened for writing).") var ms: String
    @Option(name: .customLong("table"), help: "A calibration table (repeatable; applied together).") var tables: [String] = []

    func run() async throws {
        try await runReportingErrors {
            let log = makeLogger("selfcal.apply")
            guard !tables.isEmpty else { throw PipelineError(.badConfig, "give at least one --table", context: "--table") }
            let t = try tables.map { try GainTable.read(path: $0) }
            let m = try MeasurementSet(path: ms, mode: .readWrite)
            let start = Date()
            let s = try GainApplier(tables: t, logger: log).apply(to: m)
            say("applied \(tables.count) table(s) to \(s.rows) rows (\(s.newlyFlagged) samples newly flagged) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        }
    }
}

struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fill MODEL_DATA from a sky model.")

    @Argument(help: "The Measurement Set (opened for writing).") var ms: String
    @Option(name: .customLong("component"), help: "RA_DEG,DEC_DEG,JY[,SPECTRAL_INDEX] (J2000; repeatable).") var components: [String] = []

    func run() async throws {
        try await runReportingErrors {
            let log = makeLogger("selfcal.predict")
            guard !components.isEmpty else {
                throw PipelineError(.badConfig, "give at least one --component RA_DEG,DEC_DEG,JY", context: "--component")
            }
            let comps = try components.enumerated().map { try parseComponent($1, name: "C\($0 + 1)", option: "--component") }
            let m = try MeasurementSet(path: ms, mode: .readWrite)
            let start = Date()
            try ModelPredictor(components: comps, logger: log).predict(into: m)
            say("predicted \(comps.count) component(s) into MODEL_DATA in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        }
    }
}

/// A logger writing to stderr at info level (SELFCAL_LOG_LEVEL overrides).
func makeLogger(_ label: String) -> Logger {
    var l = Logger(label: label)
    if let s = ProcessInfo.processInfo.environment["SELFCAL_LOG_LEVEL"], let lvl = Logger.Level(rawValue: s) { l.logLevel = lvl }
    return l
}
