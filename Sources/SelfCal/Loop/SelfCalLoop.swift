import Foundation
import Imaging
import Logging
import SelfCalSupport

/// Throws `.interrupted` when the current task was cancelled (SIGINT/SIGTERM become cancellation).
func checkCancelled() throws {
    if Task.isCancelled { throw PipelineError(.interrupted, "interrupted") }
}

/// Where progress goes: a terminal line, plain log lines, or nowhere.
public protocol ProgressSink: Sendable {
    func step(_ text: String)
    func percent(_ value: Int)
}

/// The self-calibration loop of DESIGN.md: seed, image, then rounds of solve → apply → image →
/// judge, each judged on the image made with its own solutions, rejected rounds rolled back.
public final class SelfCalLoop: @unchecked Sendable {
    public let config: SelfCalConfig
    public let msPath: String
    public let outputDir: String
    public let executor: any WSCleanExecutor
    public let logger: Logger
    public let progress: (any ProgressSink)?
    public let resume: Bool

    private var report: RunReport
    private var state: RunState
    private var ms: MeasurementSet!
    private let started = Date()
    private var calls: ImagingCall!

    public init(config: SelfCalConfig, executor: any WSCleanExecutor, logger: Logger, progress: (any ProgressSink)? = nil,
                resume: Bool = false) throws {
        guard let ms = config.ms else {
            throw PipelineError(.badConfig, "no Measurement Set: set \"ms\" in the config or pass --ms", context: "ms")
        }
        self.config = config
        self.msPath = URL(fileURLWithPath: ms).standardizedFileURL.path
        self.outputDir = URL(fileURLWithPath: config.outputDir ?? (msPath + ".selfcal")).standardizedFileURL.path
        self.executor = executor
        self.logger = logger
        self.progress = progress
        self.resume = resume
        report = RunReport(status: .running, stopReason: "", ms: msPath, outputDir: outputDir,
                           startedAt: ISO8601DateFormatter().string(from: Date()), wallS: 0, seeding: nil,
                           executor: executor.description, initial: nil, final: nil, rounds: [], finalCaltable: nil,
                           acceptedCaltables: [], timings: [:], warnings: [], error: nil, exitCode: 0)
        state = RunState(ms: msPath, seeding: nil, initial: nil, rounds: [], acceptedPhase: nil, acceptedAmplitude: nil,
                         modelImage: nil, best: nil, finished: false)
    }

    /// Runs the whole loop and returns the report (also written to `report.json`). Errors are
    /// recorded in the report with status `failed` or `interrupted` and then rethrown.
    @discardableResult
    public func run() async throws -> RunReport {
        try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
        var lock: MSLock?
        do {
            ms = try MeasurementSet(path: msPath, mode: .readWrite)
            try ms.table.requireColumn("DATA")
            lock = try MSLock(msPath: msPath)
            if lock?.brokeStaleLock == true { warn("took over a stale lock left by a run that died") }
            try await body()
        } catch let e as PipelineError {
            report.status = e.code == .interrupted ? .interrupted : .failed
            report.stopReason = e.code == .interrupted ? "interrupted by a signal" : e.description
            report.error = e.description
            report.exitCode = e.exitCode
            finish()
            lock?.release()
            throw e
        } catch {
            report.status = Task.isCancelled ? .interrupted : .failed
            report.error = "\(error)"
            report.stopReason = report.error!
            report.exitCode = Task.isCancelled ? 130 : 4
            finish()
            lock?.release()
            throw error
        }
        finish()
        lock?.release()
        return report
    }

    private func finish() {
        report.wallS = Date().timeIntervalSince(started)
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 { report.peakRssMb = Double(usage.ru_maxrss) / 1024 }
        report.rounds = state.rounds
        report.seeding = state.seeding
        report.initial = state.initial
        report.final = state.best ?? state.initial
        report.acceptedCaltables = [state.acceptedPhase, state.acceptedAmplitude].compactMap { $0 }
        do { try report.write(to: outputDir) } catch { logger.error("could not write report.json: \(error)") }
    }

    private func warn(_ s: String) {
        logger.warning("\(s)")
        report.warnings.append(s)
    }

    private func timed<T>(_ key: String, _ body: () async throws -> T) async throws -> T {
        let t0 = Date()
        let r = try await body()
        report.timings[key, default: 0] += Date().timeIntervalSince(t0)
        return r
    }

    private func roundDir(_ i: Int) -> String { ImagingCall.roundDirectory(i, outputDir: outputDir) }

    // MARK: The algorithm

    private func body() async throws {
        let frac = try await timed("validate") { try ms.flaggedFraction() }
        if frac > config.maxFlaggedFraction {
            throw PipelineError(.badInput, String(format: "%.0f%% of the data are flagged, more than max_flagged_fraction %.0f%%", frac * 100, config.maxFlaggedFraction * 100), context: msPath)
        }
        calls = try ImagingCall(config: config, ms: ms, logger: logger)

        if resume, let saved = RunState.load(outputDir), saved.ms == msPath, saved.finished,
           let previous = try? RunReport.load(from: outputDir) {
            state = saved
            report.status = previous.status
            report.stopReason = previous.stopReason + " (already finished; nothing to resume)"
            report.finalCaltable = previous.finalCaltable
            return
        }
        if resume, let saved = RunState.load(outputDir), saved.ms == msPath {
            state = saved
            logger.info("resuming after \(saved.rounds.count) completed round(s)")
            progress?.step("resuming after round \(saved.rounds.count): rebuilding MODEL_DATA and CORRECTED_DATA")
            // A killed run may have died mid-write: rebuild the derived columns from DATA, the
            // accepted tables and the accepted model.
            try ms.rebuildDerivedColumns()
            try await restoreAcceptedState()
        } else {
            try? FileManager.default.removeItem(atPath: (outputDir as NSString).appendingPathComponent("state.json"))
            for item in (try? FileManager.default.contentsOfDirectory(atPath: outputDir)) ?? [] where item.hasPrefix("round-") || item == "initial" || item == "final.G" {
                try? FileManager.default.removeItem(atPath: (outputDir as NSString).appendingPathComponent(item))
            }
            progress?.step("seeding MODEL_DATA")
            state.seeding = try await timed("seed") { try await seed() }
            report.seeding = state.seeding
            progress?.step("CORRECTED_DATA = DATA")
            try await timed("apply") { try applyAccepted() }
            progress?.step("initial image")
            let dir = (outputDir as NSString).appendingPathComponent("initial")
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let initial = try await image(column: "DATA", prefix: (dir as NSString).appendingPathComponent("image"), updateModel: false, key: "image_initial")
            state.initial = initial
            state.best = initial
            try state.save(outputDir)
            logger.info("initial image: peak \(initial.peakJy) Jy, rms \(initial.rmsJy) Jy, SNR \(String(format: "%.1f", initial.snr))")
            if initial.snr < config.minInitialSnr {
                report.status = .lowSNR
                report.stopReason = String(format: "initial SNR %.1f is below min_initial_snr %.1f", initial.snr, config.minInitialSnr)
                state.finished = true
                try state.save(outputDir)
                return
            }
        }

        let plan = config.plannedRounds
        var stop: (RunStatus, String)?
        var index = state.rounds.count
        while stop == nil && index < plan.count {
            try checkCancelled()
            let (mode, solint) = plan[index]
            index += 1
            let r = try await round(index, of: plan.count, mode: mode, solint: solint)
            state.rounds.append(r)
            try state.save(outputDir)
            if !r.accepted {
                let best = state.best?.snr ?? 0
                if r.snr < best && config.stopOnDivergence {
                    stop = (.diverged, String(format: "round %d made the image worse (SNR %.1f < %.1f); rolled back", index, r.snr, best))
                } else if r.snr >= best {
                    stop = (.converged, String(format: "round %d improved SNR by less than min_snr_improvement (%.1f → %.1f)", index, best, r.snr))
                }
            }
        }
        if let stop {
            report.status = stop.0
            report.stopReason = stop.1
        } else {
            report.status = .maxIterations
            report.stopReason = "all \(plan.count) planned rounds ran (max_iterations \(config.maxIterations))"
        }
        try writeFinalTable()
        state.finished = true
        try state.save(outputDir)
        progress?.step("done: \(report.status.rawValue)")
    }

    /// One round: solve, apply, image, measure, judge; rolled back when rejected.
    private func round(_ i: Int, of n: Int, mode: CalMode, solint: String) async throws -> RoundReport {
        let dir = roundDir(i)
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let t0 = Date()
        var timings: [String: Double] = [:]
        let label = "round \(i)/\(n) (\(mode.rawValue), \(solint))"

        progress?.step("\(label): solving and applying")
        var o = SolveOptions()
        o.calMode = mode
        o.solint = try SolutionInterval(parsing: solint)
        o.refant = config.refant
        o.minSNR = mode == .p ? config.phaseMinsnr : config.ampMinsnr
        if mode == .ap, let p = state.acceptedPhase { o.preApply = [try GainTable.read(path: p)] }
        // Solve, and apply the accepted phase table (amplitude rounds) and the new one: in the
        // solving pass itself where each row's gain is known once its interval is summed (see
        // `GainSolver.solveAndApply`), else in a second pass.
        var t = Date()
        let result = try GainSolver(options: o, logger: logger).solveAndApply(ms: ms, prior: o.preApply)
        let table = result.table
        let tablePath = (dir as NSString).appendingPathComponent(mode == .p ? "phase.G" : "amp.G")
        try table.write(to: tablePath, msPath: msPath)
        if result.secondPassRows == 0 {
            timings["solve+apply"] = Date().timeIntervalSince(t)
        } else {
            timings["solve"] = Date().timeIntervalSince(t) - result.secondPassSeconds
            timings["apply"] = result.secondPassSeconds
        }
        let flagged = Double(table.solutions.reduce(0) { $0 + $1.flags.filter { $0 }.count }) / Double(max(1, 2 * table.solutions.count))

        progress?.step("\(label): imaging")
        t = Date()
        let prefix = (dir as NSString).appendingPathComponent("image")
        let metrics = try await image(column: "CORRECTED_DATA", prefix: prefix, updateModel: true, key: "image_rounds")
        timings["image"] = Date().timeIntervalSince(t)

        let best = state.best ?? metrics
        let accepted = metrics.snr >= best.snr * config.minSnrImprovement
        var note: String?
        if accepted {
            if mode == .p { state.acceptedPhase = tablePath } else { state.acceptedAmplitude = tablePath }
            state.best = metrics
            state.modelImage = prefix
            logger.info("\(label) accepted: SNR \(String(format: "%.1f", best.snr)) → \(String(format: "%.1f", metrics.snr))")
        } else {
            note = String(format: "rejected: SNR %.1f → %.1f (needs ×%.2f); CORRECTED_DATA and MODEL_DATA rolled back", best.snr, metrics.snr, config.minSnrImprovement)
            logger.info("\(label) \(note!)")
            progress?.step("\(label): rolling back")
            t = Date()
            try await restoreAcceptedState()
            timings["rollback"] = Date().timeIntervalSince(t)
        }
        for (k, v) in timings { report.timings[k, default: 0] += v }
        return RoundReport(index: i, calmode: mode.rawValue, solint: solint, accepted: accepted, peakJy: metrics.peakJy,
                           rmsJy: metrics.rmsJy, snr: metrics.snr, cleanComponents: metrics.cleanComponents,
                           caltable: tablePath, wallS: Date().timeIntervalSince(t0), flaggedSolutions: flagged,
                           timings: timings, note: note)
    }

    /// CORRECTED_DATA from the accepted tables (DATA when none), MODEL_DATA from the accepted
    /// model image (the seed when none).
    private func restoreAcceptedState() async throws {
        try applyAccepted()
        if let prefix = state.modelImage {
            try await predictFromImage(prefix)
        } else {
            _ = try await seed()
        }
    }

    private func applyAccepted() throws {
        let tables = try [state.acceptedPhase, state.acceptedAmplitude].compactMap { $0 }.map { try GainTable.read(path: $0) }
        try GainApplier(tables: tables, logger: logger).apply(to: ms)
    }

    // MARK: Seeding

    /// Seeds MODEL_DATA: the catalog model merged with the calibrator when `use_nvss_seeding`
    /// is on and works, else the calibrator model (the fallback recorded); with a catalog model,
    /// also the clean mask around its sources.
    private func seed() async throws -> SeedingRecord {
        if config.calibFluxJy == nil {
            warn("calib_flux_jy is not set: the calibrator model has 1 Jy, so amplitude rounds set an arbitrary flux scale")
        }
        var o = SeedingOptions()
        o.useCatalog = config.useNvssSeeding
        o.catalogPath = config.nvssCatalog
        o.selection = ConeSelection(radius: nil, minFlux: config.nvssMinMjy / 1e3, maxComponents: 500)
        o.calibrator = CalibratorModel(raDeg: config.calibRaDeg, decDeg: config.calibDecDeg, fluxJy: config.calibFluxJy ?? 1)
        o.method = PredictMethod(rawValue: config.predictMethod) ?? .dft
        o.timeout = .seconds(config.executor.timeoutS)
        let work = URL(fileURLWithPath: outputDir).appendingPathComponent("seed")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        try ms.table.release()
        var record = try await Seeder(options: o, executor: executor, workDirectory: work, logger: logger).seed(msPath: msPath)
        if record.fallback, let reason = record.fallbackReason { warn("seeding fell back to the calibrator model: \(reason)") }
        if record.model != .calibrator, let catalog = config.nvssCatalog, let g = calls {
            let model = try CatalogModel.build(ms: ms, catalog: catalog, selection: o.selection, calibrator: o.calibrator)
            let path = ImagingCall.maskPath(outputDir: outputDir)
            let n = try CleanMask(ms: ms, size: g.size, cellArcsec: g.cellArcsec, radiusArcsec: config.maskRadiusArcsec)
                .write(sources: model.components, to: path)
            record.mask = path
            logger.info("clean mask \(path): \(n) source(s) inside the image")
        }
        try ms.table.release()
        return record
    }

    // MARK: Imaging

    private func image(column: String, prefix: String, updateModel: Bool, key: String) async throws -> ImageMetrics {
        try checkCancelled()
        try ms.table.release()
        let options = calls.image(prefix: prefix, column: column, updateModel: updateModel, mask: state.seeding?.mask)
        let log = URL(fileURLWithPath: prefix + ".wsclean.log")
        let sink = progress
        let onProgress: (@Sendable (Int) -> Void)? = sink.map { p in { @Sendable (v: Int) in p.percent(v) } }
        let result: WSCleanResult = try await timed(key) {
            try await executor.run(options, measurementSets: [msPath], logPath: log, progress: onProgress)
        }
        if let w = result.warning { warn(w) }
        appendToRunLog(result.process)
        return try ImageMetrics.measure(imagePrefix: prefix)
    }

    private func predictFromImage(_ prefix: String) async throws {
        try ms.table.release()
        let options = calls.predict(prefix: prefix)
        let result: WSCleanResult = try await timed("predict") {
            try await executor.run(options, measurementSets: [msPath], logPath: URL(fileURLWithPath: prefix + ".predict.log"), progress: nil)
        }
        appendToRunLog(result.process)
    }

    private func appendToRunLog(_ p: ProcessResult) {
        logger.info("ran \(p.commandLine) → \(p.outcome) in \(String(format: "%.1f", p.duration.seconds)) s")
    }

    // MARK: Final table

    /// `final.G`: the accepted phase and amplitude tables combined into one table at the phase
    /// table's solution times, so CASA users apply one table.
    private func writeFinalTable() throws {
        let accepted = [state.acceptedPhase, state.acceptedAmplitude].compactMap { $0 }
        guard !accepted.isEmpty else { return }
        let path = (outputDir as NSString).appendingPathComponent("final.G")
        try? FileManager.default.removeItem(atPath: path)
        let tables = try accepted.map { try GainTable.read(path: $0) }
        var combined = tables[0]
        if tables.count > 1 {
            let other = GainInterpolator(tables: Array(tables.dropFirst()))
            combined.solutions = combined.solutions.map { s in
                var s = s
                for r in 0..<2 {
                    if let g = other.gain(spw: s.spectralWindow, antenna: s.antenna, receptor: r, time: s.time) {
                        let a = s.gains[r]
                        s.gains[r] = SIMD2(a.x * g.x - a.y * g.y, a.x * g.y + a.y * g.x)
                    } else {
                        s.flags[r] = true
                    }
                }
                return s
            }
        }
        try combined.write(to: path, msPath: msPath)
        report.finalCaltable = path
    }
}
