import Foundation
import Imaging
import Testing

@testable import SelfCal

/// `selfcal run` with the container executor against a real dockerd: the same result as native,
/// no container left behind, and SIGINT mid-exec removes the container and exits 130.
@Suite("Loop in a container", .serialized)
struct ContainerLoopTests {
    func containers(_ label: String) async -> String {
        let r = await tool("docker", ["ps", "-a", "-q", "--filter", "label=\(label)"], timeout: 30)
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(.timeLimit(.minutes(6)))
    func containerRunMatchesNativeAndLeavesNothing() async throws {
        try await ContainerSupport.require(.docker)
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, ms) = try LoopTests.setUp(dir, extra: ["phase_solints": ["inf"], "do_amplitude": false])
        // The same MS twice: native, then container.
        let ms2 = dir.appendingPathComponent("c.ms").path
        try TestSupport.run("/bin/cp", ["-r", ms, ms2])
        var r = try TestSupport.selfcal(["run", config, "--no-report"], timeout: 200)
        #expect(r.status == 0, "\(r.output.suffix(2000))")
        let native = try RunReport.load(from: dir.appendingPathComponent("out").path)

        var cfg = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as! [String: Any]
        cfg["ms"] = ms2
        cfg["output_dir"] = dir.appendingPathComponent("out-container").path
        cfg["executor"] = ["kind": "container", "engine": "docker", "mounts": [["host": dir.path, "container": dir.path]]]
        let cpath = dir.appendingPathComponent("container.json").path
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: cpath))
        r = try TestSupport.selfcal(["run", cpath, "--no-report"], timeout: 240)
        #expect(r.status == 0, "\(r.output.suffix(2000))")
        let inContainer = try RunReport.load(from: dir.appendingPathComponent("out-container").path)
        #expect(inContainer.executor.contains("docker"), "\(inContainer.executor)")
        #expect(inContainer.status == native.status)
        let a = try #require(native.final), b = try #require(inContainer.final)
        #expect(abs(a.snr - b.snr) <= 0.01 * a.snr, "final SNR native \(a.snr) vs container \(b.snr)")
        #expect(abs(a.peakJy - b.peakJy) <= 0.01 * a.peakJy)
        #expect(await containers("selfcal.run").isEmpty, "containers left")
    }

    @Test(.timeLimit(.minutes(4)))
    func sigintMidExecRemovesTheContainer() async throws {
        try await ContainerSupport.require(.docker)
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (config, ms) = try LoopTests.setUp(dir, extra: [
            "executor": ["kind": "container", "engine": "docker", "mounts": [["host": dir.path, "container": dir.path]]],
            "imaging": ["imsize": 2048, "cell_arcsec": 3, "niter": 50000, "auto_threshold": 0.3]])
        let dataBefore = try LoopTests.column(ms, "DATA")
        let out = dir.appendingPathComponent("run.out")
        let child = try spawnSelfcal(["run", config, "--no-report"], output: out)
        try await pollUntil("the run gets there", within: .seconds(120)) { (try? String(contentsOf: out, encoding: .utf8))?.contains("initial image") == true }
        try await pollUntil("the run gets there", within: .seconds(60)) { (try? self.dockerPsSync()).map { !$0.isEmpty } ?? false }
        try await Task.sleep(for: .seconds(2))
        kill(child.processIdentifier, SIGINT)
        child.waitUntilExit()
        #expect(child.terminationStatus == 130, "\((try? String(contentsOf: out, encoding: .utf8)) ?? "")")
        #expect(await containers("selfcal.run").isEmpty, "container left after SIGINT")
        let report = try RunReport.load(from: dir.appendingPathComponent("out").path)
        #expect(report.status == .interrupted)
        #expect(try LoopTests.column(ms, "DATA") == dataBefore)
        #expect(!FileManager.default.fileExists(atPath: ms + "/selfcal.lock"))
    }

    /// A local batch of two MS, two at a time, each with its own container: both succeed and
    /// improve, each report names the docker executor, and no container or lock is left.
    @Test(.timeLimit(.minutes(6)))
    func localBatchWithTheContainerExecutor() async throws {
        try await ContainerSupport.require(.docker)
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let (_, all) = try BatchTests.inputs(dir, count: 2)
        let ms = Array(all.prefix(2))
        var cfg = try JSONSerialization.jsonObject(with: Data(BatchTests.baseConfig.utf8)) as! [String: Any]
        cfg["executor"] = ["kind": "container", "engine": "docker", "mounts": [["host": dir.path, "container": dir.path]]]
        let config = dir.appendingPathComponent("container-batch.json").path
        try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: config))
        let batchDir = dir.appendingPathComponent("batch").path
        let r = try TestSupport.selfcal(["batch", config] + ms + ["--batch-dir", batchDir, "--local", "--jobs", "2"], timeout: 300)
        #expect(r.status == 0, "\(r.output.suffix(2000))")
        let s = try BatchTests.summary(batchDir)
        #expect(s.entries.count == 2 && s.succeeded == 2 && s.allSucceeded)
        for e in s.entries {
            #expect((e.finalSnr ?? 0) > 2 * (e.initialSnr ?? .infinity), "\(e.ms) did not improve")
            let report = try RunReport.load(from: e.outputDir)
            #expect(report.executor.contains("docker"), "\(e.ms): \(report.executor)")
        }
        #expect(await containers("selfcal.run").isEmpty, "containers left")
        #expect(BatchTests.noLocks(ms))
    }

    func dockerPsSync() throws -> String {
        try TestSupport.run("/bin/sh", ["-c", "docker ps -q --filter label=selfcal.run"], timeout: 20).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
