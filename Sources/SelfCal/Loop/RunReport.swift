import Foundation
import SelfCalSupport

/// How a run ended (`report.json`'s `status`).
public enum RunStatus: String, Sendable, Codable {
    case running, converged, diverged, maxIterations = "max_iterations", lowSNR = "low_snr", failed, interrupted
}

/// One round in `report.json`.
public struct RoundReport: Sendable, Codable, Equatable {
    public var index: Int
    public var calmode: String
    public var solint: String
    public var accepted: Bool
    public var peakJy: Double
    public var rmsJy: Double
    public var snr: Double
    public var cleanComponents: Int
    public var caltable: String
    public var wallS: Double
    public var flaggedSolutions: Double
    public var timings: [String: Double]
    public var note: String?
}

/// `report.json`: everything a person or a batch system needs to know about a run.
public struct RunReport: Sendable, Codable {
    public var status: RunStatus
    public var stopReason: String
    public var ms: String
    public var outputDir: String
    public var startedAt: String
    public var wallS: Double
    public var seeding: SeedingRecord?
    public var executor: String
    public var initial: ImageMetrics?
    public var final: ImageMetrics?
    public var rounds: [RoundReport]
    public var finalCaltable: String?
    public var acceptedCaltables: [String]
    public var timings: [String: Double]
    public var warnings: [String]
    public var error: String?
    public var exitCode: Int32
    /// selfcal's own peak resident memory (WSClean's is not included), MiB.
    public var peakRssMb: Double?

    /// Writes `report.json` in `dir` atomically.
    public func write(to dir: String) throws {
        try JSONCoding.write(self, to: (dir as NSString).appendingPathComponent("report.json"))
    }

    public static func load(from dir: String) throws -> RunReport {
        let path = (dir as NSString).appendingPathComponent("report.json")
        guard let report = try JSONCoding.read(RunReport.self, from: path) else {
            throw PipelineError(.badInput, "no report.json (has a run written here?)", context: path)
        }
        return report
    }
}

/// What `--resume` needs: written after every completed round.
struct RunState: Codable {
    var ms: String
    var seeding: SeedingRecord?
    var initial: ImageMetrics?
    var rounds: [RoundReport]
    /// The accepted phase and amplitude tables (paths), in application order.
    var acceptedPhase: String?
    var acceptedAmplitude: String?
    /// Image prefix whose model is the current MODEL_DATA (nil: the seed).
    var modelImage: String?
    var best: ImageMetrics?
    var finished: Bool

    static func load(_ dir: String) -> RunState? {
        try? JSONCoding.read(RunState.self, from: (dir as NSString).appendingPathComponent("state.json"))
    }

    /// Writes `state.json` atomically, in the same key style as `report.json`.
    func save(_ dir: String) throws {
        try JSONCoding.write(self, to: (dir as NSString).appendingPathComponent("state.json"))
    }
}
