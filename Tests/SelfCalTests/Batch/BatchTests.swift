import Foundation
import Testing

@testable import SelfCal

/// `selfcal batch` against a real single-node Slurm (started by scripts/start-slurm.sh) and
/// locally.
@Suite("Batch", .serialized)
struct BatchTests {
    static let baseConfig = """
        {"phase_solints": ["inf"], "do_amplitude": false, "calib_flux_jy": 4, "refant": "1",
         "imaging": {"imsize": 256, "cell_arcsec": 12, "niter": 500, "weighting": "natural"}}
        """

    /// Four simulated MS and one broken one, plus the base config.
    static func inputs(_ dir: URL, count: Int = 4) throws -> (config: String, ms: [String]) {
        var ms: [String] = []
        for i in 1...count {
            let p = dir.appendingPathComponent("obs\(i).ms").path
            let r = try TestSupport.selfcal(["simulate", "--out", p, "--seed", String(i), "--integrations", "8"])
            #expect(r.status == 0, "\(r.output)")
            ms.append(p)
        }
        let broken = dir.appendingPathComponent("broken.ms")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try "not a table".write(to: broken.appendingPathComponent("table.dat"), atomically: true, encoding: .utf8)
        ms.append(broken.path)
        let config = dir.appendingPathComponent("base.json").path
        try baseConfig.write(toFile: config, atomically: true, encoding: .utf8)
        return (config, ms)
    }

    /// Starts Slurm, or says why it cannot (a failure on CI, where it must run).
    static func startSlurm() throws -> [String: String]? {
        guard TestSupport.which("slurmctld") != nil || FileManager.default.fileExists(atPath: "/usr/sbin/slurmctld") else {
            let msg = "Slurm is not installed (SELFCAL_WITH_SLURM=1 scripts/install-deps.sh installs slurm-wlm): Slurm batch tests skipped"
            if ProcessInfo.processInfo.environment["CI"] != nil { Issue.record("\(msg); on CI they must run") } else { print(msg) }
            return nil
        }
        let r = try TestSupport.run(TestSupport.packageRoot.appendingPathComponent("scripts/start-slurm.sh").path, [], timeout: 60)
        #expect(r.status == 0, "start-slurm: \(r.output)")
        guard r.status == 0, let line = r.output.split(separator: "\n").last(where: { $0.hasPrefix("export SLURM_CONF=") }) else { return nil }
        return ["SLURM_CONF": String(line.dropFirst("export SLURM_CONF=".count))]
    }

    static func summary(_ dir: String) throws -> BatchSummary {
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        return try dec.decode(BatchSummary.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/batch-summary.json")))
    }

    static func selfcal(_ args: [String], env: [String: String], timeout: Double = 300) throws -> TestSupport.ToolResult {
        try TestSupport.run(TestSupport.selfcalBinary, args, timeout: timeout, environment: env)
    }

    static func noLocks(_ ms: [String]) -> Bool { ms.allSatisfy { !FileManager.default.fileExists(atPath: $0 + "/selfcal.lock") } }

    static func processesUnder(_ dir: URL) throws -> String {
        try TestSupport.run("/bin/sh", ["-c", "pgrep -af '[\(dir.path.prefix(1))]\(dir.path.dropFirst())' || true"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.timeLimit(.minutes(6)))
    func slurmArrayAndLocalGiveTheSameResults() throws {
        guard let env = try Self.startSlurm() else { return }
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, ms) = try Self.inputs(dir)
        let slurmDir = dir.appendingPathComponent("slurm-batch").path
        let r = try Self.selfcal(["batch", config] + ms + ["--batch-dir", slurmDir, "--slurm", "--wait", "--cpus-per-task", "1", "--mem", "2G"], env: env)
        #expect(r.status == 4, "one MS is broken, so not all succeeded: \(r.output)")
        #expect(r.output.contains("submitted Slurm job array"))
        let s = try Self.summary(slurmDir)
        #expect(s.entries.count == 5 && s.succeeded == 4 && s.failed == 1 && !s.allSucceeded)
        for e in s.entries.prefix(4) {
            #expect(BatchSummary.doneStatuses.contains(e.status), "\(e.ms): \(e.status) \(e.error ?? "")")
            #expect((e.finalSnr ?? 0) > 2 * (e.initialSnr ?? .infinity), "\(e.ms) did not improve")
            #expect(FileManager.default.fileExists(atPath: e.outputDir + "/report.json"))
        }
        let broken = try #require(s.entries.last)
        #expect(broken.status == "failed")
        #expect(broken.error?.contains("casacore table") == true, "\(broken.error ?? "no error")")
        let csv = try String(contentsOfFile: slurmDir + "/batch-summary.csv", encoding: .utf8)
        #expect(csv.hasPrefix("ms,status,initial_snr,final_snr,rounds,wall_s,attempts,error\n"))
        #expect(csv.split(separator: "\n").count == 6)
        // Status from Slurm and the reports.
        let st = try Self.selfcal(["batch", "status", slurmDir], env: env)
        #expect(st.status == 0 && st.output.contains("4 succeeded, 1 failed"), "\(st.output)")

        // Local, two at a time, over the same MS: the same outcome, the same numbers.
        let localDir = dir.appendingPathComponent("local-batch").path
        let l = try Self.selfcal(["batch", config] + ms + ["--batch-dir", localDir, "--local", "--jobs", "2"], env: env)
        #expect(l.status == 4, "\(l.output)")
        let ls = try Self.summary(localDir)
        for (a, b) in zip(s.entries, ls.entries) {
            #expect(a.status == b.status)
            // WSClean's threaded gridding differs in the last digits between runs.
            #expect(abs((a.finalSnr ?? 0) - (b.finalSnr ?? 0)) <= 1e-3 * (a.finalSnr ?? 1), "\(a.ms): \(a.finalSnr ?? 0) vs \(b.finalSnr ?? 0)")
        }
        #expect(Self.noLocks(ms))
    }

    /// SIGKILL the local batch midway; running it again sweeps the orphaned child and runs only
    /// what was left, leaving finished MS alone.
    @Test(.timeLimit(.minutes(5)))
    func killedLocalBatchResumesOnlyWhatWasLeft() async throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, all) = try Self.inputs(dir)
        let ms = Array(all.prefix(4))
        let batchDir = dir.appendingPathComponent("b").path
        let out = dir.appendingPathComponent("batch.out")
        let child = try spawnSelfcal(["batch", config] + ms + ["--batch-dir", batchDir, "--local", "--jobs", "1"], output: out)
        try await pollUntil("the run gets there", within: .seconds(150)) { (try? String(contentsOf: out, encoding: .utf8))?.contains("[2/4]") == true }
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        let plan = try BatchPlan.load(batchDir)
        let done = plan.entries.filter { (try? RunReport.load(from: $0.outputDir)).map { BatchSummary.doneStatuses.contains($0.status.rawValue) } ?? false }
        // Killed after the second finished; under load a third may have finished meanwhile.
        #expect((2...3).contains(done.count), "\(done.count) finished before the kill")
        let stamps = try done.map { try FileManager.default.attributesOfItem(atPath: $0.outputDir + "/report.json")[.modificationDate] as! Date }

        let r = try TestSupport.selfcal(["batch", config] + ms + ["--batch-dir", batchDir, "--local", "--jobs", "2"], timeout: 240)
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("4 MS, \(4 - done.count) to run"), "\(r.output)")
        let s = try Self.summary(batchDir)
        #expect(s.allSucceeded && s.succeeded == 4)
        for (e, stamp) in zip(done, stamps) {
            let now = try FileManager.default.attributesOfItem(atPath: e.outputDir + "/report.json")[.modificationDate] as! Date
            #expect(now == stamp, "\(e.ms) was run again")
            #expect(s.entries.first { $0.ms == e.ms }?.attempts == 1)
        }
        #expect(Self.noLocks(ms))
        #expect(try Self.processesUnder(dir).isEmpty)
    }

    /// `selfcal batch cancel` on a running Slurm array: no task left, no lock, reports say interrupted.
    @Test(.timeLimit(.minutes(4)))
    func cancellingASlurmBatchLeavesNothingBehind() async throws {
        guard let env = try Self.startSlurm() else { return }
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (_, all) = try Self.inputs(dir, count: 2)
        let ms = Array(all.prefix(2))
        // Slow imaging, so the tasks are surely mid-run when cancelled.
        let config = dir.appendingPathComponent("slow.json").path
        try #"{"phase_solints": ["inf", "60s", "int"], "calib_flux_jy": 4, "imaging": {"imsize": 1024, "cell_arcsec": 4, "niter": 20000, "auto_threshold": 0.5}}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        let batchDir = dir.appendingPathComponent("b").path
        let r = try Self.selfcal(["batch", config] + ms + ["--batch-dir", batchDir, "--slurm", "--cpus-per-task", "1", "--mem", "2G"], env: env)
        #expect(r.status == 0, "\(r.output)")
        try await pollUntil("the run gets there", within: .seconds(60)) { ms.allSatisfy { FileManager.default.fileExists(atPath: $0 + "/selfcal.lock") } }
        let c = try Self.selfcal(["batch", "cancel", batchDir], env: env, timeout: 120)
        #expect(c.status == 0, "\(c.output)")
        #expect(c.output.contains("cancelled Slurm job"))
        let plan = try BatchPlan.load(batchDir)
        let q = try TestSupport.run("squeue", ["-h", "-j", try #require(plan.slurmJobIDs.last)], environment: env)
        #expect(q.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "still queued: \(q.output)")
        try await pollUntil("the run gets there", within: .seconds(20)) { Self.noLocks(ms) }
        #expect(try Self.processesUnder(dir).isEmpty)
        let s = try Self.summary(batchDir)
        #expect(s.entries.allSatisfy { $0.status == "interrupted" }, "\(s.entries.map(\.status))")
    }

    @Test func badBatchArgumentsExitTwo() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let config = dir.appendingPathComponent("c.json").path
        try Self.baseConfig.write(toFile: config, atomically: true, encoding: .utf8)
        var r = try TestSupport.selfcal(["batch", config, "x.ms", "--batch-dir", dir.path + "/b"])
        #expect(r.status == 2 && r.output.contains("--local or --slurm"), "\(r.output)")
        r = try TestSupport.selfcal(["batch", config, "--batch-dir", dir.path + "/b", "--local"])
        #expect(r.status == 2 && r.output.contains("no Measurement Sets"), "\(r.output)")
        r = try TestSupport.selfcal(["batch", "status", dir.path])
        #expect(r.status == 3 && r.output.contains("batch.json"), "\(r.output)")
    }
}
