import ArgumentParser
import Foundation
import Imaging
import Logging
import SelfCal
import SelfCalSupport

extension CalMode: ExpressibleByArgument {}

struct Solve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Solve antenna gains against MODEL_DATA (like CASA gaincal, gaintype G) and write a CASA calibration table.")

    @Argument(help: "The Measurement Set (opened read-only; for writing with --apply).") var ms: String
    @Option(help: "p (phase only) or ap (amplitude and phase).") var calmode: CalMode = .p
    @Option(help: "Solution interval: int, inf, or a duration such as 60s.") var solint: String = "int"
    @Option(help: "Reference antenna: a name, an index, or auto.") var refant: String = "auto"
    @Option(help: "Solutions with a lower SNR are flagged.") var minsnr: Double = 3
    @Option(name: .customLong("pre-apply"), help: "A table to apply before solving (repeatable).") var preApply: [String] = []
    @Flag(help: "One solution across all spectral windows.") var combineSpw = false
    @Option(help: "The calibration table to write (must not exist).") var table: String
    @Flag(help: ArgumentHelp("Also write CORRECTED_DATA = DATA corrected by the --pre-apply tables and the new solutions, as `selfcal apply` would.",
                             discussion: "With solint int, DATA is read once: each interval is corrected as soon as it is solved.")) var apply = false

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
            let m = try MeasurementSet(path: ms, mode: apply ? .readWrite : .readOnly)
            let start = Date()
            let solver = GainSolver(options: o, logger: log)
            let applied = apply ? try solver.solveAndApply(ms: m, prior: o.preApply) : nil
            let result = try applied?.table ?? solver.solve(ms: m)
            try result.write(to: table, msPath: ms)
            let flagged = result.solutions.reduce(0) { $0 + $1.flags.filter { $0 }.count }
            say("wrote \(table): \(result.solutions.count) solutions (\(flagged) of \(2 * result.solutions.count) flagged) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
            if let a = applied {
                say("wrote CORRECTED_DATA: \(a.fusedRows) rows in the solving pass, \(a.secondPassRows) in a second pass (\(a.newlyFlagged) samples newly flagged)")
            }
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

extension PredictMethod: ExpressibleByArgument {}
extension ModelPredictor.Method: ExpressibleByArgument {}

struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill MODEL_DATA from a sky model: catalog sources around the phase centre and/or given components.",
        discussion: """
            With --catalog (NVSS FITS table, VizieR text table or WSClean/BBS source list), sources within --radius-deg \
            of the phase centre (default: the first null of the dishes' Airy beam at the lowest frequency) and above \
            --min-mjy are taken, brightest (as seen through the beam) first, at most --max-components; they are \
            attenuated by the Airy primary beam. --component adds points (apparent fluxes: no beam unless --beam airy). \
            Both together make one merged model.
            """)

    @Argument(help: "The Measurement Set (opened for writing).") var ms: String
    @Option(name: .customLong("component"), help: "RA_DEG,DEC_DEG,JY[,SPECTRAL_INDEX] (J2000; repeatable).") var components: [String] = []
    @Option(help: "A catalog: NVSS FITS table, VizieR-style text table, or WSClean/BBS source list.") var catalog: String?
    @Option(help: "dft (native) or wsclean (model image + wsclean -predict).") var method: PredictMethod = .dft
    @Option(name: .customLong("min-mjy"), help: "Catalog flux limit, mJy.") var minMJy: Double = 10
    @Option(name: .customLong("radius-deg"), help: "Cone radius, degrees (default: the primary beam's first null).") var radiusDeg: Double?
    @Option(name: .customLong("max-components"), help: "At most this many catalog components, brightest first.") var maxComponents: Int = 500
    @Option(help: "Primary beam: airy or none (default: airy with --catalog, none for --component alone).") var beam: String?
    @Option(name: .customLong("save-source-list"), help: "Also write the model as a WSClean/BBS source list here.") var saveSourceList: String?
    @Option(help: "Native predict: threads (default: all cores).") var threads: Int?
    @Option(name: .customLong("native-method"), help: "Native predict: perAntenna or perRow.") var nativeMethod: ModelPredictor.Method = .perAntenna
    @Option(name: .customLong("wsclean-path"), help: "WSClean executable for --method wsclean (default: on PATH).") var wscleanPath: String?
    @Option(name: .customLong("timeout-s"), help: "Deadline for the WSClean call, seconds.") var timeoutS: Double = 3600
    @Option(name: .customLong("work-dir"), help: "Where --method wsclean writes its model images (default: beside the MS).") var workDir: String?
    @Option(name: .customLong("wsclean-size"), help: "--method wsclean: image size in pixels (default: to fit the model).") var wscleanSize: Int?
    @Option(name: .customLong("wsclean-scale-arcsec"), help: "--method wsclean: pixel size (default: a third of λ/B_max).") var wscleanScale: Double?
    @Option(name: .customLong("channels-out"), help: "--method wsclean: output channels (default: one per SPW).") var channelsOut: Int?

    func run() async throws {
        try await runReportingErrors {
            let log = makeLogger("selfcal.predict")
            guard !components.isEmpty || catalog != nil else {
                throw PipelineError(.badConfig, "give --catalog CAT or at least one --component RA_DEG,DEC_DEG,JY", context: "--component")
            }
            if let radiusDeg, !(radiusDeg > 0 && radiusDeg <= 180) {
                throw PipelineError(.badConfig, "must be > 0 and ≤ 180 degrees (got \(radiusDeg))", context: "--radius-deg")
            }
            guard minMJy >= 0 else { throw PipelineError(.badConfig, "must be ≥ 0", context: "--min-mjy") }
            guard maxComponents >= 1 else { throw PipelineError(.badConfig, "must be ≥ 1", context: "--max-components") }
            if let threads, threads < 1 { throw PipelineError(.badConfig, "must be ≥ 1", context: "--threads") }
            let useBeam: Bool
            switch beam?.lowercased() {
            case nil: useBeam = catalog != nil
            case "airy": useBeam = true
            case "none": useBeam = false
            default: throw PipelineError(.badConfig, "use airy or none, not '\(beam!)'", context: "--beam")
            }
            var comps = try components.enumerated().map { try parseComponent($1, name: "C\($0 + 1)", option: "--component") }
            let start = Date()
            var selected = 0
            var beamModel: AiryBeam?
            do {
                let m = try MeasurementSet(path: ms)
                beamModel = useBeam ? AiryBeam.of(m) : nil
                if useBeam && beamModel == nil { log.warning("the ANTENNA table has no DISH_DIAMETER: no primary beam is applied") }
                if let catalog {
                    let sel = ConeSelection(radius: radiusDeg.map { $0 * .pi / 180 }, minFlux: minMJy / 1e3, maxComponents: maxComponents)
                    let model = try CatalogModel.build(ms: m, catalog: catalog, selection: sel, applyBeam: useBeam)
                    selected = model.components.count
                    say("selected \(selected) catalog component(s) within \(String(format: "%.3f", model.radius * 180 / .pi))° above \(minMJy) mJy"
                          + String(format: " (catalog index %.3f s, selection %.4f s)", model.loadSeconds, model.selectSeconds))
                    comps = model.components + comps
                }
            }
            guard !comps.isEmpty else {
                throw PipelineError(.badInput, "the catalog has no source above \(minMJy) mJy in the cone, and no --component was given", context: catalog)
            }
            if let saveSourceList { try SourceList.write(comps, to: saveSourceList) }
            switch method {
            case .dft:
                let m = try MeasurementSet(path: ms, mode: .readWrite)
                let stats = try ModelPredictor(components: comps, primaryBeam: beamModel, method: nativeMethod, threads: threads, logger: log).predict(into: m)
                say(String(format: "predicted %d component(s) into MODEL_DATA in %.2f s (predict %.2f s wall, %.2f s CPU; computing %.2f s wall, %.2f s CPU; %d thread(s); %.3g terms, %.3g terms per CPU-second)",
                             comps.count, Date().timeIntervalSince(start), stats.seconds, stats.cpuSeconds, stats.computeSeconds,
                             stats.computeCPUSeconds, stats.threads, Double(stats.terms), Double(stats.terms) / max(stats.computeCPUSeconds, 1e-9)))
            case .wsclean:
                guard timeoutS > 0 else { throw PipelineError(.badConfig, "must be positive", context: "--timeout-s") }
                let runner = ProcessRunner(logger: log)
                let exec = try NativeWSCleanExecutor(path: wscleanPath, limits: ExecutorLimits(timeout: .seconds(timeoutS)), runner: runner)
                let dir = URL(fileURLWithPath: workDir ?? (URL(fileURLWithPath: ms).deletingLastPathComponent().path))
                let w = WSCleanPredictor(components: comps, primaryBeam: beamModel, executor: exec, workDirectory: dir,
                                         geometry: PredictImageGeometry(size: wscleanSize, scaleArcsec: wscleanScale, channelsOut: channelsOut), logger: log)
                let r = try await w.predict(msPath: ms)
                say(String(format: "predicted %d component(s) into MODEL_DATA with WSClean in %.2f s (WSClean %.2f s; %d px at %.3g arcsec, %d channel(s))",
                             comps.count, Date().timeIntervalSince(start), r.wsclean.process.duration.seconds, r.size, r.scaleArcsec, r.channelsOut))
            }
        }
    }
}

extension Duration {
}

/// A logger writing to stderr at info level (SELFCAL_LOG_LEVEL overrides).
func makeLogger(_ label: String) -> Logger {
    var l = Logger(label: label)
    if let s = ProcessInfo.processInfo.environment["SELFCAL_LOG_LEVEL"], let lvl = Logger.Level(rawValue: s) { l.logLevel = lvl }
    return l
}
