import ArgumentParser
import Foundation
import Imaging
import SelfCal
import SelfCalSupport

extension SimulationOptions.Preset: ExpressibleByArgument {}

struct Simulate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a sample Measurement Set with known gains and sky, the truth beside it, and a matching catalog.")

    @Option(help: "The MS to write (must not exist).") var out: String
    @Option(help: "small | medium | dsa110") var preset: SimulationOptions.Preset = .small
    @Option(help: "Random seed (gains and noise).") var seed: UInt64 = 1
    @Option(help: "Noise per real/imaginary part of a visibility, Jy.") var noiseJy: Double = 0.02
    @Option(name: .customLong("source"), help: "A source as RA_DEG,DEC_DEG,JY (J2000; repeatable). Default: the preset's field.")
    var sources: [String] = []
    @Option(help: "Gain phases drawn uniformly within ±this many degrees.") var gainPhaseDeg: Double = 60
    @Option(help: "Gain amplitude scatter (fraction).") var gainAmplitude: Double = 0.1
    @Flag(help: "Write uncorrupted data (all gains 1).") var noGains = false
    @Option(name: .customLong("flag-antenna"), help: "Flag all data of this antenna index (repeatable).") var flagAntennas: [Int] = []
    @Option(help: "Frame of the phase centre in FIELD: J2000 or B1950.") var frame: String = "J2000"
    @Option(help: "Phase centre RA, degrees J2000.") var raDeg: Double = 202.7845
    @Option(help: "Phase centre Dec, degrees J2000.") var decDeg: Double = 30.5092
    @Option(help: "Number of integrations (overrides the preset).") var integrations: Int?
    @Option(help: "Channels per SPW (overrides the preset).") var channels: Int?
    @Option(help: "Correlations: xx-yy, rr-ll or xx-xy-yx-yy.") var correlations: String = "xx-yy"

    func run() async throws {
        try await runReportingErrors {
            var o = SimulationOptions(preset: preset)
            o.seed = seed
            o.noiseJy = noiseJy
            o.gainPhaseDeg = gainPhaseDeg
            o.gainAmplitude = gainAmplitude
            o.corruptGains = !noGains
            o.flaggedAntennas = flagAntennas
            o.frame = frame
            o.phaseCentre = (raDeg * .pi / 180, decDeg * .pi / 180)
            o.integrations = integrations
            o.channels = channels
            switch correlations.lowercased() {
            case "xx-yy": o.correlations = [.XX, .YY]
            case "rr-ll": o.correlations = [.RR, .LL]
            case "xx-xy-yx-yy": o.correlations = [.XX, .XY, .YX, .YY]
            default: throw PipelineError(.badConfig, "unknown correlations '\(correlations)' (use xx-yy, rr-ll or xx-xy-yx-yy)", context: "--correlations")
            }
            if noiseJy < 0 { throw PipelineError(.badConfig, "must be ≥ 0", context: "--noise-jy") }
            if !sources.isEmpty { o.sources = try sources.enumerated().map { try parseComponent($1, name: "S\($0 + 1)", option: "--source") } }
            let start = Date()
            let r = try Simulator.run(msPath: out, options: o)
            let secs = Date().timeIntervalSince(start)
            say("wrote \(r.msPath): \(r.rows) rows, \(r.visibilities) visibilities, \(r.sources.count) sources in \(String(format: "%.1f", secs)) s")
            say("truth: \(r.truthPath)")
            say("catalog: \(r.catalogPath)")
        }
    }
}

/// Parses RA_DEG,DEC_DEG,JY[,SPECTRAL_INDEX] into a component.
func parseComponent(_ s: String, name: String, option: String) throws -> SkyComponent {
    let parts = s.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
    guard parts.count >= 3, parts.count <= 4, parts.allSatisfy({ $0 != nil && $0!.isFinite }) else {
        throw PipelineError(.badConfig, "expected RA_DEG,DEC_DEG,JY[,SPECTRAL_INDEX], got '\(s)'", context: option)
    }
    let v = parts.map { $0! }
    guard (-90...90).contains(v[1]) else { throw PipelineError(.badConfig, "declination \(v[1]) is outside ±90°", context: option) }
    return SkyComponent(name: name, ra: v[0] * .pi / 180, dec: v[1] * .pi / 180, flux: v[2],
                        spectralIndex: v.count > 3 ? v[3] : 0, referenceFrequency: 1.4e9)
}
