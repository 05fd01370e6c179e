import Foundation
import Imaging
import Testing

@testable import SelfCal

/// `selfcal run` end to end, as users run it: real casacore, real WSClean, the real binary.
@Suite("Self-calibration loop", .serialized)
struct LoopTests {
    static var smallImaging: [String: Any] { ["imsize": 384, "cell_arcsec": 10, "niter": 1500, "weighting": "natural"] }

    /// Writes a config next to a fresh simulated MS.
    static func setUp(_ dir: URL, seed: UInt64 = 3, noise: Double = 0.05, extra: [String: Any] = [:]) throws -> (config: String, ms: String) {
        let ms = dir.appendingPathComponent("s.ms").path
        let r = try TestSupport.selfcal(["simulate", "--out", ms, "--seed", String(seed), "--noise-jy", String(noise)])
        #expect(r.status == 0, "\(r.output)")
        var cfg: [String: Any] = ["ms": ms, "output_dir": dir.appendingPathComponent("out").path,
                                  "phase_solints": ["inf", "60s"], "do_amplitude": true, "amp_solint": "inf",
                                  "calib_flux_jy": 4, "refant": "1", "imaging": smallImaging]
        for (k, v) in extra { cfg[k] = v }
        let path = dir.appendingPathComponent("config.json").path
        try JSONSerialization.data(withJSONObject: cfg, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: path))
        return (path, ms)
    }

    static func column(_ ms: String, _ name: String) throws -> [[Float]] {
        let m = try MeasurementSet(path: ms)
        return try m.rowChunks().map { try m.read($0, dataColumn: name).data }
    }

    @Test(.timeLimit(.minutes(4)))
    func endToEndRecoversGainsAndWritesEverything() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, ms) = try Self.setUp(dir)
        let dataBefore = try Self.column(ms, "DATA")
        let plan = try TestSupport.selfcal(["run", config, "--dry-run"], timeout: 60)
        #expect(plan.status == 0, "\(plan.output)")
        let r = try TestSupport.selfcal(["run", config], timeout: 220)
        #expect(r.status == 0, "\(r.output.suffix(3000))")
        let out = dir.appendingPathComponent("out").path
        let report = try RunReport.load(from: out)
        #expect([.converged, .maxIterations].contains(report.status), "status \(report.status): \(report.stopReason)")
        let initial = try #require(report.initial), final = try #require(report.final)
        #expect(final.snr >= 5 * initial.snr, "SNR \(initial.snr) → \(final.snr)")
        #expect(report.rounds.count >= 2)
        #expect(report.rounds[0].accepted)
        #expect(report.seeding?.model == .calibrator)
        #expect(report.executor.hasPrefix("native"))
        for round in report.rounds {
            let rd = (out as NSString).appendingPathComponent(String(format: "round-%02d", round.index))
            for f in ["image-image.fits", "image-residual.fits", "image-model.fits"] {
                #expect(FileManager.default.fileExists(atPath: (rd as NSString).appendingPathComponent(f)), "\(rd)/\(f)")
            }
            #expect(FileManager.default.fileExists(atPath: round.caltable))
            #expect(round.peakJy > 0 && round.rmsJy > 0 && round.snr > 0)
        }
        // selfcal.log holds every WSClean command line with its outcome.
        let log = try String(contentsOfFile: (out as NSString).appendingPathComponent("selfcal.log"), encoding: .utf8)
        #expect(log.components(separatedBy: "wsclean").count - 1 >= report.rounds.count + 1)
        #expect(log.contains("-data-column CORRECTED_DATA"))
        // --dry-run printed exactly the WSClean call round 1 executed (the program path aside).
        func afterProgram(_ line: Substring) -> String {
            String(line.drop { $0 != " " }.dropFirst())
        }
        let planned = try #require(plan.output.split(separator: "\n").first { $0.contains("WSClean per round") })
        let plannedCall = afterProgram(planned[planned.range(of: ": ")!.upperBound...])
        let ran = try #require(log.split(separator: "\n").first { $0.contains(" ran ") && $0.contains("round-01/image ") })
        let ranCall = afterProgram(ran[ran.range(of: " ran ")!.upperBound...].prefix { $0 != "→" }.dropLast())
        #expect(plannedCall == ranCall, "dry run:\n\(plannedCall)\nrun:\n\(ranCall)")

        // The final table's phases match the truth (referenced to antenna "1" = index 0).
        let finalTable = try GainTable.read(path: try #require(report.finalCaltable))
        let truth = try SimulationTruth.load(ms + ".truth.json")
        var errs: [Double] = []
        for s in finalTable.solutions {
            for rcp in 0..<2 where !s.flags[rcp] {
                let t = CalibrationTests.truthGain(truth, antenna: s.antenna, ref: 0, receptor: rcp,
                                                   times: (s.time - max(1, s.interval / 2))...(s.time + max(1, s.interval / 2)))
                errs.append(abs(remainder(atan2(s.gains[rcp].y, s.gains[rcp].x) - atan2(t.y, t.x), 2 * .pi)) * 180 / .pi)
            }
        }
        let rms = (errs.map { $0 * $0 }.reduce(0, +) / Double(errs.count)).squareRoot()
        #expect(errs.count > 0 && rms < 5, "final gain phases differ from the truth by \(rms)° rms")

        // DATA untouched; CORRECTED_DATA is the accepted calibration; no lock left.
        #expect(try Self.column(ms, "DATA") == dataBefore)
        #expect(!FileManager.default.fileExists(atPath: ms + "/selfcal.lock"))
        #expect(r.output.contains("status: "))
    }

    /// use_nvss_seeding with the simulator's catalog: MODEL_DATA from the catalog, the mask used,
    /// and at least as good a result as calibrator-only; with a wrong catalog path, the fallback
    /// is recorded and the run still succeeds.
    @Test(.timeLimit(.minutes(6)))
    func catalogSeedingAndItsFallback() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, ms) = try Self.setUp(dir, extra: ["phase_solints": ["inf"], "do_amplitude": false])
        let pristine = dir.appendingPathComponent("pristine.ms").path
        try TestSupport.run("/bin/cp", ["-r", ms, pristine])
        var r = try TestSupport.selfcal(["run", config, "--no-report"], timeout: 200)
        #expect(r.status == 0, "\(r.output.suffix(2000))")
        let calibratorOnly = try RunReport.load(from: dir.appendingPathComponent("out").path)

        func run(_ name: String, catalog: String) throws -> RunReport {
            let copy = dir.appendingPathComponent("\(name).ms").path
            try TestSupport.run("/bin/cp", ["-r", pristine, copy])
            var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as! [String: Any]
            cfg["ms"] = copy
            cfg["output_dir"] = dir.appendingPathComponent("out-\(name)").path
            cfg["use_nvss_seeding"] = true
            cfg["nvss_catalog"] = catalog
            cfg["nvss_min_mjy"] = 100
            let path = dir.appendingPathComponent("\(name).json").path
            try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: path))
            let r = try TestSupport.selfcal(["run", path, "--no-report"], timeout: 200)
            #expect(r.status == 0, "\(r.output.suffix(2000))")
            return try RunReport.load(from: dir.appendingPathComponent("out-\(name)").path)
        }
        let seeded = try run("catalog", catalog: ms + ".catalog.fits")
        let s = try #require(seeded.seeding)
        #expect(s.model != .calibrator && !s.fallback, "\(s)")
        #expect(s.catalogComponents == 4, "the 4 simulated sources are above 100 mJy")
        let mask = try #require(s.mask)
        #expect(FileManager.default.fileExists(atPath: mask))
        let log = try String(contentsOfFile: dir.appendingPathComponent("out-catalog/selfcal.log").path, encoding: .utf8)
        #expect(log.contains("-fits-mask \(mask)"))
        let a = try #require(seeded.final?.snr), b = try #require(calibratorOnly.final?.snr)
        #expect(a >= 0.9 * b, "catalog-seeded final SNR \(a) vs calibrator-only \(b)")

        let fallback = try run("fallback", catalog: dir.appendingPathComponent("no-such-catalog.fits").path)
        let f = try #require(fallback.seeding)
        #expect(f.model == .calibrator && f.fallback)
        #expect(f.fallbackReason?.isEmpty == false)
        #expect(fallback.warnings.contains { $0.contains("fell back") })
        #expect([.converged, .maxIterations].contains(fallback.status), "\(fallback.status)")
        r = try TestSupport.selfcal(["report", dir.appendingPathComponent("out-fallback").path])
        #expect(r.status == 0)
        let html = try String(contentsOfFile: dir.appendingPathComponent("out-fallback/report.html").path, encoding: .utf8)
        #expect(html.contains("Fell back to the calibrator model"))
    }

    /// The real VLA calibrator with a calibrator-only config: dynamic range from ≈ 9 to ≥ 500.
    @Test(.timeLimit(.minutes(4)))
    func realVLACalibratorOnly() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let ms = try TestSupport.vlaMS(in: dir)
        let cfg: [String: Any] = ["ms": ms, "output_dir": dir.appendingPathComponent("out").path, "phase_solints": ["int"],
                                  "do_amplitude": false, "refant": "15", "calib_flux_jy": 1, "min_initial_snr": 3,
                                  "imaging": ["imsize": 512, "cell_arcsec": 4, "niter": 500, "auto_threshold": 3]]
        let path = dir.appendingPathComponent("vla.json").path
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: path))
        let r = try TestSupport.selfcal(["run", path], timeout: 200)
        #expect(r.status == 0, "\(r.output.suffix(2000))")
        let report = try RunReport.load(from: dir.appendingPathComponent("out").path)
        let initial = try #require(report.initial), final = try #require(report.final)
        #expect(initial.snr < 30, "initial dynamic range \(initial.snr)")
        #expect(final.snr >= 500, "final dynamic range \(final.snr) (CASA reaches ≈ 980)")
    }

    /// A wrong model makes round 1 worse: it is rejected, CORRECTED_DATA returns to DATA (nothing
    /// was accepted) and MODEL_DATA to the seed.
    @Test(.timeLimit(.minutes(3)))
    func divergingRoundIsRolledBack() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        // The calibrator model 0.3° away from every real source: solving against it scrambles phases.
        let (config, ms) = try Self.setUp(dir, noise: 0.05, extra: ["calib_ra_deg": 202.4, "calib_dec_deg": 30.2, "phase_solints": ["int"],
                                                                     "do_amplitude": false, "min_initial_snr": 1])
        let r = try TestSupport.selfcal(["run", config], timeout: 150)
        #expect(r.status == 0, "\(r.output.suffix(2000))")
        let report = try RunReport.load(from: dir.appendingPathComponent("out").path)
        #expect(report.rounds.count == 1)
        #expect(report.rounds.first?.accepted == false)
        #expect(report.status == .diverged, "\(report.status): \(report.stopReason)")
        #expect(report.finalCaltable == nil)
        #expect(try Self.column(ms, "CORRECTED_DATA") == Self.column(ms, "DATA"))
        // MODEL_DATA is the seed again: a 4 Jy point at (202.4, 30.2) under the Airy beam, as seeding writes it.
        let scratch = dir.appendingPathComponent("seed.ms").path
        try TestSupport.run("/bin/cp", ["-r", ms, scratch])
        let m = try MeasurementSet(path: scratch, mode: .readWrite)
        try ModelPredictor(components: [SkyComponent(ra: 202.4 * .pi / 180, dec: 30.2 * .pi / 180, flux: 4)], primaryBeam: AiryBeam.of(m)).predict(into: m)
        #expect(try Self.column(ms, "MODEL_DATA") == Self.column(scratch, "MODEL_DATA"))
    }

    /// SIGINT mid-round: exit 130, report `interrupted`, DATA byte-identical, no lock, no WSClean left.
    /// Then `--resume` completes the run. A second concurrent run is refused.
    @Test(.timeLimit(.minutes(5)))
    func interruptLockAndResume() async throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, ms) = try Self.setUp(dir)
        let dataBefore = try Self.column(ms, "DATA")

        // A concurrent run is refused while the lock is held.
        do {
            let lock = try MSLock(msPath: ms)
            let r = try TestSupport.selfcal(["run", config], timeout: 60)
            #expect(r.status == 3, "\(r.output)")
            #expect(r.output.contains("in use by another selfcal run"))
            lock.release()
        }

        let log = dir.appendingPathComponent("run.out")
        let child = try spawnSelfcal(["run", config], output: log)
        // Wait until round 1 is imaging, then interrupt.
        try await pollUntil("the run gets there", within: .seconds(120)) { (try? String(contentsOf: log, encoding: .utf8))?.contains("round 1/3 (p, inf): imaging") == true }
        try await Task.sleep(for: .milliseconds(500))
        kill(child.processIdentifier, SIGINT)
        let t0 = Date()
        child.waitUntilExit()
        #expect(Date().timeIntervalSince(t0) < 15, "took \(Date().timeIntervalSince(t0)) s to stop")
        #expect(child.terminationStatus == 130)
        let report = try RunReport.load(from: dir.appendingPathComponent("out").path)
        #expect(report.status == .interrupted)
        #expect(try Self.column(ms, "DATA") == dataBefore)
        #expect(!FileManager.default.fileExists(atPath: ms + "/selfcal.lock"))
        // "[/]tmp/..." matches the path but not this pgrep's own command line.
        let ps = try TestSupport.run("/bin/sh", ["-c", "pgrep -f '[\(dir.path.prefix(1))]\(dir.path.dropFirst())' || true"])
        #expect(ps.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "processes left: \(ps.output)")

        // Kill hard in round 2, then resume to the end.
        let log2 = dir.appendingPathComponent("run2.out")
        let child2 = try spawnSelfcal(["run", config, "--resume"], output: log2)
        try await pollUntil("the run gets there", within: .seconds(150)) { (try? String(contentsOf: log2, encoding: .utf8))?.contains("round 2/3 (p, 60s): imaging") == true }
        kill(child2.processIdentifier, SIGKILL)
        child2.waitUntilExit()
        // A SIGKILLed selfcal leaves its WSClean running: the resumed run sweeps it (process records).
        let r = try TestSupport.selfcal(["run", config, "--resume"], timeout: 200)
        #expect(r.status == 0, "\(r.output.suffix(2000))")
        let final = try RunReport.load(from: dir.appendingPathComponent("out").path)
        #expect([.converged, .maxIterations, .diverged].contains(final.status), "\(final.status): \(final.stopReason)")
        #expect(final.rounds.first?.index == 1 && final.rounds.count >= 2)
        #expect(try #require(final.final).snr >= 5 * (try #require(final.initial)).snr)
        #expect(try Self.column(ms, "DATA") == dataBefore)
        #expect(!FileManager.default.fileExists(atPath: ms + "/selfcal.lock"))
        let left = try TestSupport.run("/bin/sh", ["-c", "pgrep -f '[\(dir.path.prefix(1))]\(dir.path.dropFirst())' || true"])
        #expect(left.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "processes left after resume: \(left.output)")
    }

    @Test(.timeLimit(.minutes(2)))
    func badConfigsFailBeforeAnyWork() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let ms = dir.appendingPathComponent("s.ms").path
        _ = try TestSupport.selfcal(["simulate", "--out", ms, "--integrations", "2"])
        let out = dir.appendingPathComponent("out").path
        let cases: [(json: String, code: Int32, mentions: String)] = [
            (#"{"ms": "\#(ms)", "output_dir": "\#(out)", "phase_solint": ["inf"]}"#, 2, "did you mean \"phase_solints\""),
            (#"{"ms": "\#(ms)", "output_dir": "\#(out)", "max_iterations": "three"}"#, 2, "max_iterations"),
            (#"{"ms": "\#(dir.path)/missing.ms", "output_dir": "\#(out)"}"#, 3, "missing.ms"),
            (#"{"ms": "\#(ms)", "output_dir": "\#(out)", "imaging": {"niter": -5}}"#, 2, "imaging.niter"),
            (#"{"ms": "\#(ms)", "output_dir": "\#(out)", "executor": {"kind": "container"}}"#, 2, "executor.engine"),
            (#"{"ms": "\#(ms)", "output_dir": "\#(out)", "imaging": {"nitre": 5}}"#, 2, "did you mean \"imaging.niter\""),
            (#"{"ms": "\#(ms)", "output_dir": "\#(out)", "use_nvss_seeding": "yes"}"#, 2, "use_nvss_seeding"),
            (#"{"ms": "\#(ms)", "output_dir": "\#(out)",,}"#, 2, "not valid JSON"),
        ]
        for (i, c) in cases.enumerated() {
            let path = dir.appendingPathComponent("bad\(i).json").path
            try c.json.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try TestSupport.selfcal(["run", path], timeout: 60)
            #expect(r.status == c.code, "case \(i): exit \(r.status): \(r.output)")
            #expect(r.output.contains(c.mentions), "case \(i) should mention \(c.mentions): \(r.output)")
            #expect(!FileManager.default.fileExists(atPath: out), "case \(i) wrote \(out)")
        }
        // --dry-run prints the plan and touches nothing.
        let good = dir.appendingPathComponent("good.json").path
        try #"{"ms": "\#(ms)", "output_dir": "\#(out)", "phase_solints": ["inf", "30s"]}"#.write(toFile: good, atomically: true, encoding: .utf8)
        let r = try TestSupport.selfcal(["run", good, "--dry-run"])
        #expect(r.status == 0)
        #expect(r.output.contains("round 1: solve p solint inf") && r.output.contains("round 3: solve ap solint inf"))
        #expect(r.output.contains("wsclean -name"))
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// The example configs in configs/ parse, and the schema lists exactly the keys the validator knows.
    @Test func exampleConfigsAndSchemaAgree() throws {
        let configs = TestSupport.packageRoot.appendingPathComponent("configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: configs.path).filter { $0.hasSuffix(".json") && !$0.contains("schema") }
        #expect(files.count >= 3)
        for f in files { _ = try SelfCalConfig.load(path: configs.appendingPathComponent(f).path) }
        let schema = try JSONSerialization.jsonObject(with: Data(contentsOf: configs.appendingPathComponent("selfcal.schema.json"))) as! [String: Any]
        let props = schema["properties"] as! [String: Any]
        #expect(Set(props.keys) == Set(SelfCalConfig.topLevelKeys))
        #expect(Set(((props["imaging"] as! [String: Any])["properties"] as! [String: Any]).keys) == Set(SelfCalConfig.imagingKeys))
        #expect(Set(((props["executor"] as! [String: Any])["properties"] as! [String: Any]).keys) == Set(SelfCalConfig.executorKeys))
    }
}

/// Starts the selfcal binary in the background with output to a file.
func spawnSelfcal(_ args: [String], output: URL) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: TestSupport.selfcalBinary)
    p.arguments = args
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    let fh = try FileHandle(forWritingTo: output)
    p.standardOutput = fh
    p.standardError = fh
    p.standardInput = FileHandle.nullDevice
    try p.run()
    return p
}
